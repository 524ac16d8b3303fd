"""The architecture as tests: who may import the heavy libraries, and no import runs up the layers.

Every ``import`` in the package is read from its source (module level and inside functions,
where the lazy imports are), so a shortcut taken in a hurry fails here, not in review.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bastion"

LIBRARY_IMPORTERS = {
    "asyncssh": {
        "transport/asyncssh_transport.py",
        "transport/asyncssh_sftp.py",
        "transport/shell_files.py",
    },
    "paramiko": {"transport/paramiko_transport.py"},
    "pyte": {"transport/mosh_screen.py"},
    "typer": {"cli/"},
    "rich": {"cli/", "render/"},
    "jinja2": {"playbook/"},
}
"""Each library, and the modules (or folders, ending in /) allowed to import it (DESIGN.md)."""

LAYERS = {
    "cli": set(),
    "render": {"cli"},
}
"""A package, and the only packages that may import it (besides itself)."""

CORE = (
    "errors.py",
    "models.py",
    "hostset.py",
    "selector.py",
    "adhoc.py",
    "yaml_core.py",
    "document_file.py",
    "durations.py",
    "result_record.py",
)
"""Pure modules: they import nothing of bastion's but each other."""


@cache
def modules() -> tuple[tuple[str, ast.Module], ...]:
    """Every module of the package, parsed once for all the tests."""
    return tuple(
        (path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(), str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    )


def imported(tree: ast.Module) -> Iterator[str]:
    """Every module name the source imports, anywhere in it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def allowed(relative: str, places: set[str]) -> bool:
    return any(
        relative == place or (place.endswith("/") and relative.startswith(place))
        for place in places
    )


@pytest.mark.parametrize("library", sorted(LIBRARY_IMPORTERS))
def test_only_the_named_modules_import_each_library(library: str) -> None:
    offenders = [
        relative
        for relative, tree in modules()
        if any(name.split(".")[0] == library for name in imported(tree))
        and not allowed(relative, LIBRARY_IMPORTERS[library])
    ]
    assert offenders == []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_no_import_runs_up_the_layers(package: str) -> None:
    offenders = []
    for relative, tree in modules():
        top = relative.split("/")[0].removesuffix(".py")
        if top in (package, "__main__") or top in LAYERS[package]:
            continue
        if any(name.startswith(f"bastion.{package}") for name in imported(tree)):
            offenders.append(relative)
    assert offenders == []


def test_core_modules_import_only_the_core() -> None:
    core = {f"bastion.{name.removesuffix('.py')}" for name in CORE}
    offenders = {
        relative: sorted(
            name for name in imported(tree) if name.startswith("bastion") and name not in core
        )
        for relative, tree in modules()
        if relative in CORE
    }
    assert {relative: names for relative, names in offenders.items() if names} == {}
