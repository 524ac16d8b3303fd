"""``~/.config/bastion/config.toml``: defaults for options, below environment and flags.

The file gives option defaults per command, as clush.conf and ansible.cfg do; precedence is
flag > ``BASTION_*`` environment variable > config file > built-in default (docs/
configuration.md). A ``[defaults]`` table applies to every command that has the option; a
table named after a command (``[run]``, ``[lab.up]``) to that command only and wins over
``[defaults]``. Keys are long option names (``connect-timeout`` or ``connect_timeout``).
Only the invoked command's tables are checked, so a typo is reported when that command runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from bastion.errors import UsageError

CONFIG_ENV = "BASTION_CONFIG"
"""A config file to read instead of the default one; empty or ``none``: read none."""
MAX_CONFIG_BYTES = 1024 * 1024
DEFAULTS_TABLE = "defaults"


def config_path() -> Path | None:
    """The config file that applies, or None when there is none."""
    chosen = os.environ.get(CONFIG_ENV)
    if chosen is not None:
        if chosen.strip().lower() in ("", "none"):
            return None
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise UsageError(f"config file {path} not found", source=f"${CONFIG_ENV}")
        return path
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    path = Path(base) / "bastion" / "config.toml"
    return path if path.is_file() else None


def load_config(path: Path) -> dict[str, Any]:
    """The file's tables; a syntax error is one line naming the file, line and column."""
    import tomllib

    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise UsageError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}") from None


def default_map(
    config: Mapping[str, Any], group: Any, argv: list[str], path: Path
) -> dict[str, Any]:
    """click's ``default_map`` for the command ``argv`` invokes, from the config's tables.

    ``group`` is the root click group; unknown options of that command are an error.
    """
    defaults = config.get(DEFAULTS_TABLE, {})
    if not isinstance(defaults, dict):
        raise UsageError(f"{path}: [{DEFAULTS_TABLE}] must be a table")
    words = [arg for arg in argv if not arg.startswith("-")]
    result: dict[str, Any] = {}
    command, target, table, name = group, result, config, ""
    for word in words:
        commands = getattr(command, "commands", None)
        if not commands or word not in commands:
            break
        command = commands[word]
        name = f"{name}.{word}" if name else word
        section = table.get(word, {}) if isinstance(table, dict) else {}
        if not isinstance(section, dict):
            raise UsageError(f"{path}: [{name}] must be a table")
        target = target.setdefault(word, {})
        table = section
        if not hasattr(command, "commands"):
            target.update(_options(command, defaults, path, DEFAULTS_TABLE, strict=False))
            target.update(_options(command, section, path, name, strict=True))
    return result


def _options(
    command: Any, values: Mapping[str, Any], path: Path, table: str, *, strict: bool
) -> dict[str, Any]:
    """The values of ``values`` that are options of ``command``, by parameter name."""
    names: dict[str, str] = {}
    for param in command.params:
        if not param.name or getattr(param, "param_type_name", "") != "option":
            continue
        for spelling in [param.name, *(opt[2:] for opt in param.opts if opt.startswith("--"))]:
            names[spelling.replace("-", "_")] = param.name
    found: dict[str, Any] = {}
    for key, value in values.items():
        name = names.get(key.replace("-", "_"))
        if name is not None:
            found[name] = value
        elif strict and not isinstance(value, dict):
            spellings = [spelling for spelling in names if spelling in _long_names(command)]
            near = get_close_matches(key.replace("-", "_"), spellings, n=1)
            hint = f"; did you mean {near[0].replace('_', '-')!r}?" if near else ""
            raise UsageError(f"{path}: unknown option {key!r} in [{table}]{hint}")
    return found


def _long_names(command: Any) -> set[str]:
    """The command's long option names as a user writes them (``connect_timeout``)."""
    return {
        opt[2:].replace("-", "_")
        for param in command.params
        for opt in getattr(param, "opts", ())
        if opt.startswith("--")
    }
