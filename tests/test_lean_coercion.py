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
    (float, {"min": 0.001}, ["0", "0.001", "2.5", "1e-4", "nan?", " 3 ", "1.", "inf", "\u0661"]),
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
    annotation: Any, option: dict[str, Any], values: list[Any]
) -> None:
    descriptor = _coercion.resolve_type_descriptor(annotation, typer.Option(**option))
    original = _coercion.build_runtime_param(descriptor)
    lean = lean_coercion.coercer_for(annotation, descriptor.parameter_info)
    assert lean is not None, annotation
    assert lean_coercion.install()
    from typer import core

    leaner = core.build_runtime_param(descriptor)  # type: ignore[attr-defined]
    assert type(leaner).__name__ == "LeanRuntimeParam"
    for value in values:
        assert _outcome(leaner, value) == _outcome(original, value), (annotation, value)


def test_anything_else_keeps_typers_own_coercer() -> None:
    assert lean_coercion.coercer_for(tuple[int, str], typer.Option()) is None
    assert lean_coercion.coercer_for(int, typer.Option(parser=int)) is None
