"""Start-up: what `bastion` imports, and that importing asyncssh starts no process."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

from bastion.transport.library_probe import find_library_in_dirs, quick_find_library
from tests.conftest import REPO

COUNT_SPAWNS = """
import subprocess, sys
spawned = []
original = subprocess.Popen.__init__
def counting(self, args, *rest, **kwargs):
    spawned.append(args)
    original(self, args, *rest, **kwargs)
subprocess.Popen.__init__ = counting
import bastion.transport.asyncssh_transport
print(len(spawned))
"""


def test_importing_the_transport_starts_no_process() -> None:
    # ctypes.util.find_library runs ldconfig, gcc and ld when asked for a missing library.
    done = subprocess.run(
        [sys.executable, "-c", COUNT_SPAWNS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "0"


def test_find_library_in_dirs_finds_versioned_shared_objects(tmp_path: Path) -> None:
    (tmp_path / "libdemo.so.5").write_bytes(b"")
    (tmp_path / "libdemo-extra.so").write_bytes(b"")
    assert find_library_in_dirs("demo", (str(tmp_path / "missing"), str(tmp_path))) == str(
        tmp_path / "libdemo.so.5"
    )
    assert find_library_in_dirs("absent", (str(tmp_path),)) is None


def test_quick_find_library_puts_the_original_back() -> None:
    original = ctypes.util.find_library
    with quick_find_library():
        assert ctypes.util.find_library is find_library_in_dirs
    assert ctypes.util.find_library is original


LOADED_AFTER = """
import sys
sys.argv = ["bastion", *sys.argv[1:]]
from bastion.cli.main import main
try:
    main()
except SystemExit:
    pass
heavy = ("asyncssh", "asyncio", "yaml", "bastion.inventory", "bastion.executor", "pydantic",
         "rich")
print(",".join(name for name in heavy if name in sys.modules), file=sys.stderr)
"""


def _modules_loaded_by(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    return set(last.split(",")) - {""}


HEAVY = {"asyncssh", "asyncio", "yaml", "bastion.inventory", "bastion.executor", "pydantic"}


def test_version_and_help_pages_load_nothing_heavy() -> None:
    assert _modules_loaded_by("--version") == set()
    for args in (("--help",), ("run", "--help"), ("copy", "--help"), ("audit", "--help")):
        assert _modules_loaded_by(*args) & HEAVY == set(), args


def test_parsing_run_options_loads_neither_pydantic_nor_rich(tmp_path: Path) -> None:
    # The inventory is missing, so the run stops right after its options were coerced.
    loaded = _modules_loaded_by(
        "run", "-i", str(tmp_path / "missing.yaml"), "-H", "x", "-f", "5", "-t", "2.5",
        "-o", "json", "--out-dir", str(tmp_path), "true",
    )  # fmt: skip
    # Past the options (the inventory was looked for), yet neither was needed.
    assert "bastion.inventory" in loaded
    assert "pydantic" not in loaded
    assert "rich" not in loaded


def test_only_the_asyncssh_transport_imports_asyncssh() -> None:
    """docs/architecture.md: the agent's pool builds on the transport's public names."""
    import ast

    package = Path(__file__).resolve().parent.parent / "bastion"
    importers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name == "asyncssh" or name.startswith("asyncssh.") for name in names):
                importers.add(path.relative_to(package).as_posix())
    assert importers == {"transport/asyncssh_transport.py", "transport/asyncssh_sftp.py"}
