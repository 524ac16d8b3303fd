"""The lean option coercer gives what typer's pydantic coercer gives, value for value."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
import typer
from typer import _coercion
from typer._click.exceptions import BadParameter

from bastion.cli import lean_coercion


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


CASES: list[tuple[Any, dict[str, Any], list[Any]]] = [
    (
        int,
        {},
        ["5", " 7 ", "-3", "+4", "2.0", "2.5", "2.", "abc", "", "1e3", "1_000", "0x10", "\u0661"],
    ),
    (int, {"min": 1}, ["0", "1", "64", "x"]),
    (float, {"min": 0.001}, ["0", "0.001", "2.5", "1e-4", "nan?", " 3 ", "1.", "\u0661"]),
    (float, {"min": 0, "max": 10}, ["-1", "11", "5"]),
    (bool, {}, ["true", "False", "yes", "off", "1", "0", "", "maybe"]),
    (str, {}, ["", "a b", "--x"]),
    (Colour, {}, ["red", "blue", "RED", "green"]),
    (Path, {}, ["a/b", "/tmp", "-"]),
    (list[str], {}, [["a", "b"], []]),
    (list[int], {}, [["1", "2"], ["1", "x"]]),
]


def _outcome(runtime: Any, value: Any) -> tuple[str, Any]:
    try:
        return ("ok", runtime._coerce_value(value, param=None, ctx=None))
    except BadParameter as exc:
        return ("error", exc.message)


@pytest.mark.parametrize(("annotation", "option", "values"), CASES)
def test_lean_and_pydantic_coercers_agree(
    annotation: Any, option: dict[str, Any], values: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    descriptor = _coercion.resolve_type_descriptor(annotation, typer.Option(**option))
    original = _coercion.build_runtime_param(descriptor)
    lean = lean_coercion.coercer_for(annotation, descriptor.parameter_info)
    assert lean is not None, annotation
    leaner = _installed(monkeypatch)(descriptor)
    assert type(leaner).__name__ == "LeanRuntimeParam"
    for value in values:
        assert _outcome(leaner, value) == _outcome(original, value), (annotation, value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "NaN", " Infinity "])
def test_non_finite_numbers_are_refused_where_pydantic_took_them(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 17: `--timeout nan` meant no timeout, or "timed out after nans".
    descriptor = _coercion.resolve_type_descriptor(float, typer.Option(min=0.001))
    accepted = _outcome(_coercion.build_runtime_param(descriptor), value)
    assert accepted[0] == "ok" or "greater than" in accepted[1]  # what typer alone did
    assert _outcome(_installed(monkeypatch)(descriptor), value) == (
        "error",
        "Input should be a finite number",
    )


def test_an_options_own_parser_is_called_without_pydantic_then_its_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bastion.cli.options import duration_value

    descriptor = _coercion.resolve_type_descriptor(
        float, typer.Option(parser=duration_value, min=0.001)
    )
    leaner = _installed(monkeypatch)(descriptor)
    assert type(leaner).__name__ == "LeanRuntimeParam"
    assert _outcome(leaner, "5m") == ("ok", 300.0)
    assert _outcome(leaner, "0") == ("error", "Input should be greater than or equal to 0.001")
    assert _outcome(leaner, "nan")[0] == "error"


def test_anything_else_keeps_typers_own_coercer() -> None:
    assert lean_coercion.coercer_for(tuple[int, str], typer.Option()) is None


def _installed(monkeypatch: pytest.MonkeyPatch) -> Any:
    """typer.core's hook with the lean coercer in front, restored after the test."""
    from typer import core

    monkeypatch.setattr(core, lean_coercion.HOOK, _coercion.build_runtime_param)
    assert lean_coercion.install()
    return getattr(core, lean_coercion.HOOK)


def test_changed_private_helpers_fall_back_to_typers_coercer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another typer release renames a keyword of the private helper the lean path calls:
    # the value is coerced by typer's own path, not a TypeError traceback.
    from typer import _param_types

    def renamed(value: Any, *, options: Any, case_sensitive: bool, ctx: Any) -> Any:
        raise AssertionError("not reached: called with the old keyword")

    build = _installed(monkeypatch)
    monkeypatch.setattr(_param_types, "coerce_cli_choice", renamed)
    descriptor = _coercion.resolve_type_descriptor(Colour, typer.Option())
    runtime = build(descriptor)
    assert type(runtime).__name__ == "LeanRuntimeParam"
    assert runtime._coerce_value("red", param=None, ctx=None) is Colour.RED


def test_a_runtime_param_of_another_shape_keeps_typers_coercer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another typer release gives RuntimeParam a new required field: no lean coercer for it.
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class NewRuntimeParam(_coercion.RuntimeParam):  # type: ignore[misc]
        required_in_next_release: int

    monkeypatch.setattr(_coercion, "RuntimeParam", NewRuntimeParam)
    build = _installed(monkeypatch)
    descriptor = _coercion.resolve_type_descriptor(int, typer.Option(min=1))
    runtime = build(descriptor)
    assert type(runtime).__name__ != "LeanRuntimeParam"
    assert runtime._coerce_value("5", param=None, ctx=None) == 5
