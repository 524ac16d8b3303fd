"""The safe document loader: YAML 1.2 core types, limits, file kinds, and properties."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.document_file import MAX_DOCUMENT_BYTES
from bastion.errors import InputError
from bastion.located_yaml import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_VALUES,
    Scalar,
    YamlMap,
    compose,
    load_document,
    load_yaml_nodes,
    plain,
)
from bastion.yaml_core import MAX_INTEGER_DIGITS

DOC = Path("doc.yaml")


def value_of(text: str) -> object:
    return plain(compose(DOC, text.encode(), InputError))


def error_of(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(InputError) as caught:
        compose(DOC, data, InputError)
    return str(caught.value)


# --- YAML 1.2 core scalars ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("2024-01-01", "2024-01-01"),  # YAML 1.1 (PyYAML): a date
        ("2024-13-01", "2024-13-01"),  # PyYAML: ValueError traceback
        ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
        ("yes", "yes"),  # YAML 1.1: True (the Norway problem)
        ("no", "no"),
        ("off", "off"),
        ("1:20", "1:20"),  # YAML 1.1: the sexagesimal integer 80
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("010", 10),  # YAML 1.1: octal 8
        ("0o17", 15),
        ("0x1f", 31),
        ("-12", -12),
        ("+12", 12),
        ("1.5", 1.5),
        ("1e3", 1000.0),  # YAML 1.1: a string (no dot)
        (".5", 0.5),
        ("-.inf", -math.inf),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("~", None),
        ("null", None),
        ("", None),
        ("'12'", "12"),
        ('"true"', "true"),
        ("!!str 12", "12"),
        ("!!int '12'", 12),
        ("!!float 1", 1.0),
        ("!!bool 'true'", True),
        ("!!null ''", None),
        ("! 12", "12"),
        ("9" * MAX_INTEGER_DIGITS, int("9" * MAX_INTEGER_DIGITS)),
        ("'" + "9" * 5000 + "'", "9" * 5000),
    ],
)
def test_scalars_are_yaml_1_2_core(written: str, value: object) -> None:
    assert value_of(f"k: {written}\n") == {"k": value}


def test_nan_is_a_float() -> None:
    found = value_of("k: .nan\n")
    assert isinstance(found, dict) and math.isnan(found["k"])


def test_text_is_kept_as_written() -> None:
    root = compose(DOC, b"k: 0644\n", InputError)
    assert isinstance(root, YamlMap)
    scalar = root.entries["k"].value
    assert isinstance(scalar, Scalar) and (scalar.value, scalar.text) == (644, "0644")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\nk: !!bool maybe\n", "doc.yaml:2: !!bool needs true or false, not 'maybe'"),
        ("k: !!int 1.5\n", "doc.yaml:1: !!int needs an integer, not '1.5'"),
        ("k: !!float x\n", "doc.yaml:1: !!float needs a number, not 'x'"),
        ("k: !!null x\n", "doc.yaml:1: !!null needs null, ~ or nothing, not 'x'"),
        ("\n\nk: !!timestamp 2024-01-01\n", "doc.yaml:3: unknown tag '!!timestamp'"),
        ("k: !!binary aGVsbG8=\n", "doc.yaml:1: unknown tag '!!binary'"),
        ("k: !!python/object:os.system x\n", "doc.yaml:1: unknown tag '!!python/object:os.system'"),
        ("k: !vault x\n", "doc.yaml:1: unknown tag '!vault'"),
        ("k: !!set {a, b}\n", "doc.yaml:1: unknown tag '!!set'"),
        ("k: !!omap [a: 1]\n", "doc.yaml:1: unknown tag '!!omap'"),
        ("k: !!seq {a: 1}\n", "doc.yaml:1: unknown tag '!!seq'"),
        ("k: !!int [1]\n", "doc.yaml:1: tag !!int cannot be given to a mapping or list"),
        (
            "k: " + "9" * (MAX_INTEGER_DIGITS + 1) + "\n",
            f"doc.yaml:1: integer of {MAX_INTEGER_DIGITS + 1} digits is too long "
            f"(at most {MAX_INTEGER_DIGITS}); quote it to keep it as text",
        ),
        ("k: 0x" + "f" * 5000 + "\n", "doc.yaml:1: integer of 5000 digits is too long"),
    ],
)
def test_typing_errors_name_the_line(text: str, message: str) -> None:
    assert error_of(text).startswith(message)


# --- structure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\na: 2\n", "doc.yaml:2: duplicate key 'a' (first at line 1)"),
        ("' ': 1\n", "doc.yaml:1: a key must be a non-empty name"),
        ("'': 1\n", "doc.yaml:1: a key must be a non-empty name"),
        ("~: 1\n", "doc.yaml:1: a key must be a non-empty name"),
        ("? [a]\n: 1\n", "doc.yaml:1: a key must be a non-empty name"),
        ("a: &x [*x]\n", "doc.yaml:1: a YAML alias refers to itself"),
        ("a: *nope\n", "doc.yaml:1: invalid YAML: found undefined alias 'nope'"),
        ("a: &x 1\nb: &x 2\n", "doc.yaml:2: anchor &x is defined twice (first at line 1)"),
        ("a: 1\n---\nb: 2\n", "doc.yaml:2: invalid YAML: expected a single document"),
        ("a: [1\n", "doc.yaml:2: invalid YAML: while parsing a flow sequence"),
        ("a: <<\n<<: [1]\n", "doc.yaml:2: '<<' needs a mapping or a list of mappings to merge"),
    ],
)
def test_structure_errors(text: str, message: str) -> None:
    assert error_of(text).startswith(message)


def test_merge_keys_merge() -> None:
    text = "base: &b {a: 1, b: 2}\nmore: &m {b: 3, c: 4}\nx:\n  <<: [*b, *m]\n  c: 5\n"
    assert value_of(text)["x"] == {"a": 1, "b": 2, "c": 5}  # type: ignore[index]


def test_depth_limit() -> None:
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"  # the document's own list counts
    assert value_of(ok) is not None
    too_deep = "[" * MAX_DEPTH + "[]" + "]" * MAX_DEPTH + "\n"
    assert error_of(too_deep) == f"doc.yaml:1: nested more than {MAX_DEPTH} levels deep"


def test_deep_nesting_is_refused_quickly() -> None:
    started = time.process_time()
    message = error_of("k: " + "[" * 1_000_000 + "]" * 1_000_000 + "\n")
    # libyaml has a flow-nesting limit of its own; block nesting reaches ours.
    assert "exceeded maximum nesting depth" in message or "nested more than" in message
    block = "".join(f"{' ' * level}k{level}:\n" for level in range(5000))
    assert error_of(block) == f"doc.yaml:{MAX_DEPTH + 1}: nested more than {MAX_DEPTH} levels deep"
    assert time.process_time() - started < 5


def _laughs(levels: int) -> str:
    text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in range(1, levels + 1):
        text += f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 10) + "]\n"
    return text


def test_alias_bomb_is_refused_before_expanding() -> None:
    started = time.process_time()
    message = error_of(_laughs(9))
    assert f"more than {MAX_VALUES:,} values with aliases expanded" in message
    assert time.process_time() - started < 5


def test_aliases_within_budget_expand_to_copies() -> None:
    found = value_of(_laughs(2))
    assert isinstance(found, dict) and len(found["a2"]) == 10 and found["a2"][0][0] == ["lol"] * 10


def test_alias_count_limit() -> None:
    text = "a: &a 1\nb: [" + ",".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    assert f"more than {MAX_ALIASES:,} aliases" in error_of(text)


def test_alias_text_budget() -> None:
    text = "a: &a '" + "x" * (1024 * 1024) + "'\nb: [" + ",".join(["*a"] * 17) + "]\n"
    assert "MiB of text with aliases expanded" in error_of(text)


def test_control_character_names_line_and_column() -> None:
    assert error_of(b"a: 1\nb: x\x1by\n") == (
        "doc.yaml:2: invalid YAML: control character U+001B at column 5 is not allowed "
        '(inside double quotes, write it as "\\x1b")'
    )


def test_surrogate_escapes() -> None:
    assert value_of('k: "\\ud83d\\ude00"\n') == {"k": "\U0001f600"}
    assert error_of('\nk: "\\ud83d"\n').startswith("doc.yaml:2: invalid escape: a lone UTF-16")


def test_not_utf8_names_the_byte_offset() -> None:
    assert error_of(b"a: 1\nb: caf\xe9\n") == "doc.yaml: not UTF-8 text (bad byte at offset 11)"


def test_long_values_are_cut_in_messages() -> None:
    message = error_of("k: !!bool " + "y" * 100_000 + "\n")
    assert len(message) < 200 and "(100000 characters)" in message


# --- files -------------------------------------------------------------------------------


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="cannot read inventory: a FIFO, not a regular file"):
        load_document(fifo, InputError, what="inventory")


@pytest.mark.parametrize(
    ("path", "kind"), [("/dev/zero", "a character device"), ("/", "a directory")]
)
def test_non_regular_files_are_refused(path: str, kind: str) -> None:
    with pytest.raises(InputError, match=f"cannot read vars file: {kind}, not a regular file"):
        load_document(Path(path), InputError, what="vars file")


def test_size_cap(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(MAX_DOCUMENT_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(InputError, match="playbook is larger than the 16 MiB limit"):
        load_document(big, InputError, what="playbook")


def test_missing_file_message(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such vars file"):
        load_document(tmp_path / "x", InputError, what="vars file", missing="no such vars file")


def test_yaml_nodes_keep_lines_and_text(tmp_path: Path) -> None:
    path = tmp_path / "access.yaml"
    path.write_text("base: &b {k: 1}\nlist:\n  - <<: *b\n    j: yes\n")
    root = load_yaml_nodes(path, InputError, what="the access list")
    assert isinstance(root, yaml.MappingNode)
    (_, base), (_, items) = root.value
    assert base.start_mark.line == 0
    assert isinstance(items, yaml.SequenceNode)
    pairs = {
        key.value: (value.value, value.start_mark.line + 1) for key, value in items.value[0].value
    }
    assert pairs == {"k": ("1", 1), "j": ("yes", 4)}


# --- properties (fixed, small budget) ----------------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_keys = st.text(min_size=1, max_size=10).filter(lambda key: key.strip() != "")
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=20,
)
_BUDGET = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_BUDGET
@given(_json_values)
def test_json_documents_load_as_json_loads_them(value: object) -> None:
    """JSON is YAML 1.2: what json.loads reads, the loader reads identically."""
    text = json.dumps({"k": value})
    if any(ord(char) < 0x20 and char not in "\t\n\r" for char in text):
        return  # json.dumps escapes them; kept here only to be explicit about the property
    assert value_of(text) == json.loads(text)


@_BUDGET
@given(st.binary(max_size=300))
def test_any_bytes_load_or_give_one_input_error(data: bytes) -> None:
    try:
        compose(DOC, data, InputError)
    except InputError as exc:
        assert "\n" not in str(exc)


_yamlish = st.lists(
    st.sampled_from(
        [
            "a",
            ":",
            " ",
            "\n",
            "-",
            "[",
            "]",
            "{",
            "}",
            ",",
            "&x",
            "*x",
            "!!",
            "<<",
            "'",
            '"',
            "?",
            "|",
            ">",
            "#",
            "~",
            "1",
            "0x",
            "!t",
            "---",
            "...",
            "\t",
            "  ",
            "\\",
            "%YAML 1.1",
        ]
    ),
    max_size=40,
).map("".join)


@_BUDGET
@given(_yamlish)
def test_yaml_like_text_loads_or_gives_one_input_error(text: str) -> None:
    try:
        compose(DOC, text.encode(), InputError)
    except InputError as exc:
        assert "\n" not in str(exc)
