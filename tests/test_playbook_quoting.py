"""Playbook values are never code, in any quoting context (issue 11 item 4).

The oracle is a real shell: every rendered command is run by dash and by bash (the nodes' sh
and the usual login shell), which must print the value exactly and never create the marker
file a value asks for. Contexts where no quoting is safe are refused with ``file:line``.
The same contexts run against the real lab in tests/test_play_lab.py
(``test_values_are_never_code_on_the_lab``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.playbook import PlaybookError
from bastion.playbook.model import Text
from bastion.playbook.template import render

HERE = Path("book.yaml")
SHELLS = [s for s in ("dash", "bash") if shutil.which(s)]

CONTEXTS = {
    "bare": "printf '%s' {{ x }}",
    "single quotes": "printf '%s' 'before {{ x }} after'",
    "double quotes": "printf '%s' \"before {{ x }} after\"",
    "command substitution": "printf '%s' \"$(printf '%s' {{ x }})\"",
    "quotes in a command substitution": "printf '%s' \"$(printf '%s' \"in {{ x }}\")\"",
    "single quotes in a command substitution": "v=$(printf '%s' 'in {{ x }}'); printf '%s' \"$v\"",
    "subshell": "(printf '%s' {{ x }})",
    "here-document": "cat <<EOF\nbefore {{ x }} after\nEOF",
    "quoted here-document": "cat <<'EOF'\nbefore {{ x }} after\nEOF",
    "tab-stripped here-document": "cat <<-END\n\tbefore {{ x }} after\n\tEND",
    "assignment": "v={{ x }}; printf '%s' \"$v\"",
    "option value": "printf '%s' --name={{ x }}",
    "command substitution in ${...}": "v=${unset_v:-$(printf '%s' {{ x }})}; printf '%s' \"$v\"",
    "arithmetic around a command": (
        "n=$(( $(printf '%s' {{ x }} | wc -c) + 0 )); test $n -ge 0 && printf '%s' {{ x }}"
    ),
    "after bash arithmetic": "(( 1 << 2 )) 2>/dev/null; printf '%s' {{ x }}",
    "after a here-document": "cat <<EOF >/dev/null\nbody\nEOF\nprintf '%s' {{ x }}",
}
EXPECTED = {
    "single quotes": "before {} after",
    "double quotes": "before {} after",
    "quotes in a command substitution": "in {}",
    "single quotes in a command substitution": "in {}",
    "here-document": "before {} after\n",
    "quoted here-document": "before {} after\n",
    "tab-stripped here-document": "before {} after\n",
    "option value": "--name={}",
}

HOSTILE = [
    "it's",
    'say "hi"',
    "$(touch MARKER)",
    "`touch MARKER`",
    "; touch MARKER",
    "a\ntouch MARKER\nb",
    "'; touch MARKER; '",
    '"; touch MARKER; "',
    "\\",
    "end\\",
    '\\"; touch MARKER; \\"',
    "$HOME ${HOME} $((1+1))",
    "*",
    "~",
    "",
    " leading and trailing ",
    ")); touch MARKER; ((",
    "EOF2",
    "\tEND2",
    "!!",
]


def shell_text(source: str, line: int = 1, **context: object) -> str:
    return render(Text(source, line), context, HERE, quoted=True)


def expected(name: str, value: str) -> str:
    text = EXPECTED.get(name, "{}").replace("{}", value)
    if "substitution" in name:
        text = text.rstrip("\n")  # $(...) takes trailing newlines off
    return text


def run_in(shell: str, command: str, where: Path) -> str:
    done = subprocess.run(
        [shell, "-c", command],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, (command, done.stderr)
    return done.stdout


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_a_hostile_value_is_printed_as_is_and_runs_nothing(
    shell: str, name: str, tmp_path: Path
) -> None:
    for value in HOSTILE:
        if "tab-stripped" in name and "\n" in value:
            continue  # <<- strips the tabs of every line, the value's too: data, not code
        command = shell_text(CONTEXTS[name], x=value)
        assert run_in(shell, command, tmp_path) == expected(name, value), (name, value, command)
        assert not (tmp_path / "MARKER").exists(), (name, value, command)


@settings(max_examples=150, deadline=None)
@given(value=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")))
def test_any_value_in_any_context_is_data_for_dash(
    value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    where = tmp_path_factory.mktemp("q")
    for name, source in CONTEXTS.items():
        if "here-document" in name and any(
            line.strip("\t") in ("EOF", "END") for line in value.split("\n")
        ):
            continue  # refused: see test_a_value_that_would_end_a_here_document_is_refused
        if "tab-stripped" in name and "\n" in value:
            continue
        command = shell_text(source, x=value)
        done = subprocess.run(
            ["dash", "-c", command], cwd=where, capture_output=True, timeout=20, check=False
        )
        assert done.returncode == 0, (name, value, command, done.stderr)
        assert done.stdout.decode() == expected(name, value), (name, value, command)
        assert not any(where.iterdir()), (name, value, command)


REFUSED = {
    "echo `echo {{ x }}`": "a value inside backquotes (use $(...) instead) cannot be quoted safely",
    "echo ok # {{ x }}": "a value inside a shell comment cannot be quoted safely",
    "echo ${v:-{{ x }}}": "a value inside ${...} cannot be quoted safely",
    "echo $(( {{ x }} + 1 ))": "a value inside $((...)) cannot be quoted safely",
    "echo ${{ x }}": "a value right after $ cannot be quoted safely",
    "echo \\{{ x }}": "a value right after a backslash cannot be quoted safely",
    'echo "\\{{ x }}"': "a value right after a backslash cannot be quoted safely",
    "echo $'{{ x }}'": "a value inside $'...' cannot be quoted safely",
    "cat <<{{ x }}\nbody\n": "a value as a here-document's delimiter cannot be quoted safely",
    "v=$(case a in a) echo {{ x }};; esac)": "a value after 'case' inside parentheses",
    "(( n = {{ x }} ))": "a value inside ((...)) cannot be quoted safely",
}


@pytest.mark.parametrize("source", sorted(REFUSED))
def test_a_value_where_no_quoting_is_safe_is_refused_with_file_and_line(source: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        shell_text("true\n" + source, line=7, x="$(touch MARKER)")
    message = str(caught.value)
    assert message.startswith("book.yaml:8: " + REFUSED[source]), message


def test_a_value_that_would_end_a_here_document_is_refused() -> None:
    for source in ("cat <<EOF\n{{ x }}\nEOF", "cat <<'EOF'\nE{{ x }}\nEOF"):
        with pytest.raises(PlaybookError) as caught:
            shell_text(source, line=3, x="x\nEOF\ntouch MARKER" if "\n{{" in source else "OF")
        assert str(caught.value) == (
            "book.yaml:4: a value would end the here-document early (a line 'EOF')"
        )
    # Not the delimiter alone on its line: fine.
    assert shell_text("cat <<EOF\n{{ x }}\nEOF", x="EOF ") == "cat <<EOF\nEOF \nEOF"


def test_raw_values_are_code_and_change_the_context_of_later_values(tmp_path: Path) -> None:
    # `| raw` opens a quote the next value then lands in: it is quoted for that context.
    command = shell_text("printf '%s' {{ q | raw }}{{ x }}'", q="'in ", x="it's")
    assert command == "printf '%s' 'in it'\\''s'"
    assert run_in("dash", command, tmp_path) == "in it's"
    # Branches decide the context after rendering, so each host's text is read as it is.
    source = "printf '%s' {% if quote %}'{% endif %}{{ x }}{% if quote %}'{% endif %}"
    assert run_in("dash", shell_text(source, quote=True, x="a'b"), tmp_path) == "a'b"
    assert run_in("dash", shell_text(source, quote=False, x="a'b"), tmp_path) == "a'b"


def test_a_misplaced_value_is_refused_at_load_with_its_file_and_line(tmp_path: Path) -> None:
    from bastion.playbook import load_playbook

    book = tmp_path / "book.yaml"
    for key, text in (
        ("run", "|\n      echo fine\n      echo `echo {{ x }}`"),
        ("unless", "'echo ok # {{ x }}'\n    run: 'true'"),
        ("wait_for", "{command: 'test ${v:-{{ x }}}'}"),
    ):
        book.write_text(f"name: b\nhosts: --all\nsteps:\n  - name: s\n    {key}: {text}\n")
        with pytest.raises(PlaybookError) as caught:
            load_playbook(book)
        line = 7 if key == "run" else 5
        assert str(caught.value).startswith(f"{book}:{line}: a value "), str(caught.value)
        assert "cannot be quoted safely" in str(caught.value)
