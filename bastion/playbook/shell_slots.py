"""Values placed into shell text, quoted for the context each one lands in.

A command template is rendered with every ``{{ value }}`` replaced by a slot (a NUL-delimited
index: NUL cannot occur in a command). The rendered text, with ``{% if %}`` branches and
``| raw`` values already resolved, is then read the way a POSIX shell reads it, and each slot
is filled with its value quoted for where it stands:

- a bare word, or a command inside ``$(...)``/``(...)``: ``shlex.quote`` (one word);
- inside ``'...'``: each ``'`` becomes ``'\\''`` (close, escaped quote, reopen);
- inside ``"..."``: ``\\``, ``$``, `````, ``"`` get a backslash;
- inside an unquoted here-document body: ``\\``, ``$``, ````` get a backslash; in a quoted one
  (``<<'EOF'``) the value goes in as is. A value that would put the delimiter alone on a line
  (ending the document early) is refused.

Where a value cannot be quoted safely (a comment, backquotes, ``${...}``, ``$((...))``,
``$'...'``, right after ``$`` or a backslash, a here-document's delimiter word, after ``case``
inside parentheses) the text is refused with `SlotError`; the dry render turns that into an
exit-2 error naming the file and line before any host is contacted.

Not handled, and documented: a value handed to a program that runs its argument as shell code
again (``eval``, ``sh -c``, ``ssh HOST``, ``su -c``) is code for that program.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SLOT = "\x00"

_BLANK = " \t"
_WORD_BREAK = " \t\n;&|()<>"


class SlotError(ValueError):
    """A value placed where no quoting keeps it from being code."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def slot(index: int) -> str:
    """The placeholder of value number ``index``."""
    return f"{SLOT}{index}{SLOT}"


def quote_bare(value: str) -> str:
    """One word in command position or as an argument."""
    return shlex.quote(value)


def quote_single(value: str) -> str:
    """Inside ``'...'``: nothing is special but the quote itself."""
    return value.replace("'", "'\\''")


def quote_double(value: str) -> str:
    """Inside ``"..."``: a backslash before the four characters that are special there."""
    return "".join("\\" + c if c in '\\$`"' else c for c in value)


def quote_heredoc(value: str) -> str:
    """Inside an unquoted here-document: as in double quotes, but ``"`` is not special."""
    return "".join("\\" + c if c in "\\$`" else c for c in value)


def _as_is(value: str) -> str:
    """Inside a quoted here-document (``<<'EOF'``): nothing is special."""
    return value


@dataclass(slots=True)
class _Heredoc:
    delimiter: str
    quoted: bool
    strip_tabs: bool


Quoter = Callable[[str], str]


def fill(text: str, values: Sequence[str]) -> str:
    """``text`` with every slot replaced by its value quoted for its context."""
    if SLOT not in text:
        return text
    return _Filler(text, values).run()


class _Filler:
    """A small POSIX sh lexer that knows, at each slot, which quoting applies."""

    def __init__(self, text: str, values: Sequence[str]) -> None:
        self.s = text
        self.values = values
        self.out: list[str] = []
        self.heredocs: list[_Heredoc] = []
        self.unsure_from: int | None = None

    def run(self) -> str:
        end = self.command(0, closer=None)
        self.out.append(self.s[end:])
        return "".join(self.out)

    # -- slots -------------------------------------------------------------------------------

    def _slot_end(self, i: int) -> tuple[int, str]:
        close = self.s.index(SLOT, i + 1)
        value = self.values[int(self.s[i + 1 : close])]
        if SLOT in value:
            raise SlotError("a value contains a NUL character", i)
        return close + 1, value

    def put(self, i: int, quoter: Quoter) -> int:
        if self.unsure_from is not None:
            raise SlotError(
                "a value after 'case' inside parentheses: its quoting cannot be told; "
                "set a shell variable outside the parentheses and use that",
                i,
            )
        end, value = self._slot_end(i)
        self.out.append(quoter(value))
        return end

    def refuse(self, i: int, where: str) -> None:
        raise SlotError(f"a value {where} cannot be quoted safely", i)

    def copy(self, i: int, j: int) -> int:
        self.out.append(self.s[i:j])
        return j

    # -- contexts ----------------------------------------------------------------------------

    def command(self, i: int, closer: str | None) -> int:  # noqa: PLR0912, PLR0915
        """Command text up to ``closer`` (``)`` of ``$(``/``(``, or None: the end)."""
        s = self.s
        depth = 0
        word_start = True
        while i < len(s):
            c = s[i]
            if c == SLOT:
                i = self.put(i, quote_bare)
                word_start = False
                continue
            if c == "\\":
                if s[i + 1 : i + 2] == SLOT:
                    self.refuse(i, "right after a backslash")
                i = self.copy(i, i + 2)
                word_start = False
                continue
            if c == "'":
                i = self.single(i)
            elif c == '"':
                i = self.double(i)
            elif c == "`":
                i = self.opaque(i, "`", "inside backquotes (use $(...) instead)")
            elif c == "$":
                i = self.dollar(i)
            elif c == "#" and word_start:
                end = s.find("\n", i)
                end = len(s) if end < 0 else end
                if SLOT in s[i:end]:
                    self.refuse(s.index(SLOT, i), "inside a shell comment")
                i = self.copy(i, end)
                word_start = True
                continue
            elif c == "<" and s.startswith("<<", i) and not s.startswith("<<<", i):
                i = self.heredoc_operator(i)
            elif c == "<" and s.startswith("<<<", i):
                i = self.copy(i, i + 3)
            elif c == "(" and s.startswith("((", i) and word_start:
                # bash's arithmetic command `(( x << 2 ))`: no here-document, no value inside.
                i = self.balanced(i, "((", "(", ")", "inside ((...))")
            elif c == "(":
                depth += 1
                i = self.copy(i, i + 1)
            elif c == ")":
                if depth == 0 and closer == ")":
                    return self.copy(i, i + 1)
                depth = max(0, depth - 1)
                i = self.copy(i, i + 1)
            elif c == "\n":
                i = self.copy(i, i + 1)
                if self.heredocs:
                    i = self.heredoc_bodies(i)
            else:
                if (
                    word_start
                    and (closer is not None or depth > 0)
                    and s.startswith("case", i)
                    and s[i + 4 : i + 5] in (*_WORD_BREAK, "")
                    and self.unsure_from is None
                ):
                    # `case x in a) ...` has a `)` that closes nothing: past here, parentheses
                    # (and so the context of a value) cannot be counted without a full parser.
                    self.unsure_from = i
                i = self.copy(i, i + 1)
            word_start = c in _WORD_BREAK
        return i

    def single(self, i: int) -> int:
        """``'...'`` starting at ``i``."""
        s = self.s
        i = self.copy(i, i + 1)
        while i < len(s):
            if s[i] == SLOT:
                i = self.put(i, quote_single)
            elif s[i] == "'":
                return self.copy(i, i + 1)
            else:
                i = self.copy(i, i + 1)
        return i

    def double(self, i: int) -> int:
        """``"..."`` starting at ``i``."""
        self.copy(i, i + 1)
        return self.expanding(i + 1, quote_double, end=None)

    def expanding(self, i: int, quoter: Quoter, end: int | None) -> int:
        """Double-quoted text (``end`` None: up to ``"``), or a here-document body up to ``end``."""
        s = self.s
        limit = len(s) if end is None else end
        specials = '$`\\"\n' if end is None else "$`\\\n"
        while i < limit:
            c = s[i]
            if c == SLOT:
                i = self.put(i, quoter)
            elif c == "\\":
                if s[i + 1 : i + 2] == SLOT:
                    self.refuse(i, "right after a backslash")
                i = self.copy(i, i + 2 if s[i + 1 : i + 2] in specials else i + 1)
            elif c == '"' and end is None:
                return self.copy(i, i + 1)
            elif c == "`":
                i = self.opaque(i, "`", "inside backquotes (use $(...) instead)")
            elif c == "$":
                i = self.dollar(i)
            else:
                i = self.copy(i, i + 1)
        return i

    def dollar(self, i: int) -> int:
        """``$`` at ``i``: a command substitution, an expansion, or a plain character."""
        s = self.s
        after = s[i + 1 : i + 2]
        if after == SLOT:
            self.refuse(i, "right after $")
        if s.startswith("$((", i):
            return self.balanced(i, "$((", "(", ")", "inside $((...))")
        if after == "(":
            i = self.copy(i, i + 2)
            return self.command(i, closer=")")
        if after == "{":
            return self.balanced(i, "${", "{", "}", "inside ${...}")
        if after == "'":
            return self.opaque(i + 1, "'", "inside $'...'", start=i)
        return self.copy(i, i + 1)

    def balanced(self, i: int, opener: str, left: str, right: str, where: str) -> int:
        """An expansion where no value may go directly (a ``$(...)`` inside it is a command,
        where one may): copied up to its matching ``right``."""
        s = self.s
        i = self.copy(i, i + len(opener))
        depth = opener.count(left)
        while i < len(s) and depth > 0:
            c = s[i]
            if c == SLOT:
                self.refuse(i, where)
            if c == "\\":
                i = self.copy(i, i + 2)
                continue
            if c == "$" and s[i + 1 : i + 2] == "(" and not s.startswith("$((", i):
                i = self.command(self.copy(i, i + 2), closer=")")
                continue
            if c == left:
                depth += 1
            elif c == right:
                depth -= 1
            i = self.copy(i, i + 1)
        return i

    def opaque(self, i: int, quote: str, where: str, start: int | None = None) -> int:
        """Backquotes or ``$'...'`` at ``i``: copied to the closing ``quote``; no value inside."""
        s = self.s
        j = i + 1
        while j < len(s) and s[j] != quote:
            if s[j] == SLOT:
                self.refuse(j, where)
            j += 2 if s[j] == "\\" else 1
        return self.copy(i if start is None else start, min(j + 1, len(s)))

    # -- here-documents ----------------------------------------------------------------------

    def heredoc_operator(self, i: int) -> int:
        """``<<WORD`` or ``<<-WORD``: remember the document, whose body starts after the line."""
        s = self.s
        j = i + 2
        strip = s[j : j + 1] == "-"
        j += 1 if strip else 0
        while j < len(s) and s[j] in _BLANK:
            j += 1
        k = j
        quoted = False
        word: list[str] = []
        while k < len(s) and s[k] not in _WORD_BREAK:
            c = s[k]
            if c == SLOT:
                self.refuse(k, "as a here-document's delimiter")
            if c in "'\"":
                quoted = True
                close = s.find(c, k + 1)
                close = len(s) if close < 0 else close
                if SLOT in s[k:close]:
                    self.refuse(s.index(SLOT, k), "as a here-document's delimiter")
                word.append(s[k + 1 : close])
                k = close + 1
                continue
            if c == "\\":
                quoted = True
                word.append(s[k + 1 : k + 2])
                k += 2
                continue
            word.append(c)
            k += 1
        self.heredocs.append(_Heredoc("".join(word), quoted, strip))
        return self.copy(i, k)

    def heredoc_bodies(self, i: int) -> int:
        """The bodies of the here-documents opened on the line that just ended."""
        pending, self.heredocs = self.heredocs, []
        for doc in pending:
            i = self.heredoc_body(i, doc)
        return i

    def heredoc_body(self, i: int, doc: _Heredoc) -> int:
        s = self.s
        start = i
        while i < len(s):
            eol = s.find("\n", i)
            eol = len(s) if eol < 0 else eol
            line = s[i:eol]
            if SLOT in line:
                self._check_delimiter(line, i, doc)
            elif (line.lstrip("\t") if doc.strip_tabs else line) == doc.delimiter:
                break
            i = eol + 1
        body_end = min(i, len(s))
        if doc.quoted:
            j = start
            while j < body_end:
                j = self.put(j, _as_is) if s[j] == SLOT else self.copy(j, j + 1)
        else:
            self.expanding(start, quote_heredoc, end=body_end)
        if body_end >= len(s):
            return body_end
        eol = s.find("\n", body_end)
        return self.copy(body_end, len(s) if eol < 0 else eol + 1)

    def _check_delimiter(self, line: str, offset: int, doc: _Heredoc) -> None:
        """Refuse a value that would make a line of the body its delimiter."""
        parts = line.split(SLOT)
        text = "".join(self.values[int(part)] if n % 2 else part for n, part in enumerate(parts))
        for piece in text.split("\n"):
            if (piece.lstrip("\t") if doc.strip_tabs else piece) == doc.delimiter:
                raise SlotError(
                    f"a value would end the here-document early (a line {doc.delimiter!r})",
                    offset,
                )
