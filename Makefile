# The README's two commands: `make demo` (set up, start the lab, run on it) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
BASTION := $(BIN)/bastion

.PHONY: setup demo test lint bench bench-setup clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup-system
	scripts/setup-system
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: setup
	$(BASTION) lab up
	$(BASTION) run -i lab --all "hostname; uptime"

lint: setup
	$(BIN)/ruff check bastion tests bench
	$(BIN)/ruff format --check bastion tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench-setup: setup
	$(BIN)/pip install --quiet -e '.[test,bench]'

bench: bench-setup
	$(BIN)/python bench/fanout.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
