"""Option values coerced without pydantic: typer's own rules for the types bastion declares.

typer 0.2x coerces every command-line value through a pydantic ``TypeAdapter``; importing
pydantic and building one adapter per option costs about 100 ms of CPU on every ``bastion
run``, a fifth of a one-host run and more than bastion spends on 20 hosts. The options bastion
declares are plain (str, int, float, bool, Path, an Enum, lists of those, with min/max), so
`install` puts a coercer for exactly those in front of typer's: the same parsing and the same
messages as pydantic's for them, typer's own choice and path checks, and typer's pydantic
path for anything else. When typer has no such hook (another major version), nothing changes;
when the hook is there but typer's private helpers behind it changed (a TypeError or an
AttributeError from them), that parameter falls back to typer's own coercer, never a traceback.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

if TYPE_CHECKING:
    from collections.abc import Callable

_INT = re.compile(r"([+-]?[0-9]+(?:_[0-9]+)*)(?:\.0+)?", re.ASCII)
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class LeanValueError(ValueError):
    """A value the lean coercer refuses, with pydantic's wording for the same refusal."""


def parse_int(value: object) -> int:
    """A command-line integer, as pydantic's lax mode reads one ("7", " +7 ", "1_000", "7.0")."""
    if isinstance(value, int):
        return int(value)
    match = _INT.fullmatch(str(value).strip())
    if match is None:
        raise LeanValueError(
            "Input should be a valid integer, unable to parse string as an integer"
        )
    return int(match.group(1))


def parse_float(value: object) -> float:
    """A command-line number, as pydantic's lax mode reads one (ASCII only), and finite:
    ``nan``, ``inf`` and ``1e400`` are refused (pydantic's ``allow_inf_nan=False`` wording)."""
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            if not text.isascii():
                raise ValueError(text)
            number = float(text)
        except ValueError:
            raise LeanValueError(
                "Input should be a valid number, unable to parse string as a number"
            ) from None
    if not math.isfinite(number):
        raise LeanValueError("Input should be a finite number")
    return number


def parse_bool(value: object) -> bool:
    """A command-line boolean: typer's empty-is-false, then pydantic's words."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "" or text in _FALSE:
        return False
    if text in _TRUE:
        return True
    raise LeanValueError("Input should be a valid boolean, unable to interpret input")


def check_range(number: float, low: float | None, high: float | None, clamp: bool) -> float:
    """``number`` within [low, high]: clamped when asked, else pydantic's refusal."""
    if low is not None and number < low:
        if clamp:
            return low
        raise LeanValueError(f"Input should be greater than or equal to {low}")
    if high is not None and number > high:
        if clamp:
            return high
        raise LeanValueError(f"Input should be less than or equal to {high}")
    return number


def _choice_coercer(annotation: type[Enum], info: Any) -> Callable[[Any, Any, Any], Any]:
    from typer import _param_types

    choices, sensitive = tuple(annotation), info.case_sensitive
    return lambda value, param, ctx: _param_types.coerce_cli_choice(
        value, choices=choices, case_sensitive=sensitive, ctx=ctx
    )


def _number_coercer(annotation: type[float], info: Any) -> Callable[[Any, Any, Any], Any]:
    parse = parse_int if annotation is int else parse_float
    low, high, clamp = info.min, info.max, bool(info.clamp)
    if low is None and high is None:
        return lambda value, param, ctx: parse(value)
    return lambda value, param, ctx: annotation(check_range(parse(value), low, high, clamp))


def _path_coercer(annotation: type[Path], info: Any) -> Callable[[Any, Any, Any], Any]:
    from typer import _param_types

    path_type = info.path_type or annotation

    def coerce_path(value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and isinstance(path_type, type):
            value = path_type(value)  # what typer asks pydantic to do
        return _param_types.coerce_cli_path(value, info, path_type=path_type, param=param, ctx=ctx)

    return coerce_path


_PLAIN: dict[type, Callable[[Any, Any, Any], Any]] = {
    bool: lambda value, param, ctx: parse_bool(value),
    str: lambda value, param, ctx: value if isinstance(value, str) else str(value),
}


def _parser_coercer(parser: Callable[[Any], Any], info: Any) -> Callable[[Any, Any, Any], Any]:
    """An option's own ``parser=`` (durations), then its min/max when it gives a number."""
    low, high, clamp = info.min, info.max, bool(info.clamp)

    def coerce(value: Any, param: Any, ctx: Any) -> Any:
        parsed = parser(value)
        if isinstance(parsed, int | float) and (low is not None or high is not None):
            return type(parsed)(check_range(parsed, low, high, clamp))
        return parsed

    return coerce


def leaf_coercer(annotation: Any, info: Any) -> Callable[[Any, Any, Any], Any] | None:
    """A coercer ``(value, param, ctx) -> value`` for one plain annotation, else None."""
    parser = getattr(info, "parser", None)
    if parser is not None:
        return _parser_coercer(parser, info)
    return _typed_coercer(annotation, info)


def _typed_coercer(annotation: Any, info: Any) -> Callable[[Any, Any, Any], Any] | None:
    if not isinstance(annotation, type):
        return None
    if annotation in _PLAIN:
        return _PLAIN[annotation]
    if annotation is int or annotation is float:
        return _number_coercer(annotation, info)
    if issubclass(annotation, Enum):
        return _choice_coercer(annotation, info)
    if issubclass(annotation, Path):
        return _path_coercer(annotation, info)
    return None


def coercer_for(annotation: Any, info: Any) -> Callable[[Any, Any, Any], Any] | None:
    """A coercer for a plain annotation or a list of one, else None (typer's path)."""
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        leaf = leaf_coercer(item, info)
        if leaf is None:
            return None
        return lambda value, param, ctx: [
            leaf(one, param, ctx) for one in (value if isinstance(value, list | tuple) else [value])
        ]
    if get_origin(annotation) is not None:
        return None
    return leaf_coercer(annotation, info)


HOOK = "build_runtime_param"
"""What typer 0.2x's parameters call (in ``typer.core``) to get their coercer."""


def install() -> bool:
    """Put the lean coercer in front of typer's; False when this typer has no such hook."""
    try:
        from typer import _coercion, core
        from typer._click.exceptions import BadParameter
    except ImportError:
        return False
    original = getattr(core, HOOK, None)
    base = getattr(_coercion, "RuntimeParam", None)
    if original is None or base is None or getattr(original, "lean", False):
        return original is not None and getattr(original, "lean", False)
    typers_own: Callable[[Any], Any] = original

    class LeanRuntimeParam(base):  # type: ignore[misc, valid-type]
        """typer's runtime-parameter contract, coercing with a plain function."""

        def __init__(self, descriptor: Any, coerce: Callable[[Any, Any, Any], Any]) -> None:
            super().__init__(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )
            object.__setattr__(self, "lean_coerce", coerce)
            object.__setattr__(self, "descriptor", descriptor)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return self.lean_coerce(value, param, ctx)
            except ValueError as exc:
                message = str(exc)
                if not isinstance(exc, LeanValueError):
                    message = f"Value error, {message}"
                raise BadParameter(message, ctx=ctx, param=param) from exc
            except (TypeError, AttributeError, ImportError):
                # typer's private helpers are not what this module was written for.
                fallback = typers_own(self.descriptor)
                return fallback._coerce_value(value, param=param, ctx=ctx)

    def build_runtime_param(descriptor: Any) -> Any:
        try:
            if descriptor.file_annotation is None:
                coerce = coercer_for(descriptor.annotation, descriptor.parameter_info)
                if coerce is not None:
                    return LeanRuntimeParam(descriptor, coerce)
        except (TypeError, AttributeError, ValueError):
            pass  # a descriptor or a RuntimeParam of another shape: typer's own coercer
        return typers_own(descriptor)

    build_runtime_param.lean = True  # type: ignore[attr-defined]
    setattr(core, HOOK, build_runtime_param)
    return True
