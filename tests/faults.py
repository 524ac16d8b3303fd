"""Test helper: a lab fault that is always cleared, even when the test fails."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import Cli


@contextmanager
def lab_fault(cli: Cli, node: str, *fault: str) -> Iterator[None]:
    """Give ``node`` a fault with ``bastion lab fault`` for the block, then clear it."""
    done = cli("lab", "fault", node, *fault)
    assert done.returncode == 0, done.stderr
    try:
        yield
    finally:
        clear_fault(cli, node)


def clear_fault(cli: Cli, node: str) -> None:
    """Remove ``node``'s fault (nothing happens when it has none)."""
    done = cli("lab", "fault", node, "--clear")
    assert done.returncode == 0, done.stderr
