"""Jinja for playbooks: strict undefined, shell quoting unless ``| raw``, and secret masking.

Strings run by a shell (run, unless, only_if, wait_for commands) are rendered with every
``{{ value }}`` quoted for the shell context it lands in (`shell_slots`: bare, '...', "...",
$(...), here-documents); ``{{ value | raw }}`` goes in verbatim. Template files,
``copy.content`` and variables are rendered without quoting.
"""

from __future__ import annotations

import re
import shlex
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

import jinja2

from bastion.playbook.errors import PlaybookError
from bastion.playbook.model import Text
from bastion.playbook.shell_slots import (
    SLOT,
    SlotError,
    fill,
    quote_double,
    quote_heredoc,
    quote_single,
    slot,
)

MASK = "********"
_TEMPLATE_NAME = "<template>"


class Raw(str):
    """A value the shell renderer interpolates verbatim (``{{ x | raw }}``)."""

    __slots__ = ()


def _raw(value: object) -> Raw:
    return Raw("" if value is None else str(value))


_SLOT_VALUES: ContextVar[list[str] | None] = ContextVar("bastion_slot_values", default=None)
"""The values of the shell template being rendered, each standing in the text as a slot."""


def _shell_slot(value: object) -> str:
    """A ``{{ value }}`` of a shell template: verbatim if ``| raw``, else a slot to fill."""
    if isinstance(value, Raw):
        return str(value)
    values = _SLOT_VALUES.get()
    if values is None:  # rendered outside `render` (a nested template): quote as one word
        return shlex.quote("" if value is None else str(value))
    values.append("PENDING" if isinstance(value, Pending) else "" if value is None else str(value))
    return slot(len(values) - 1)


def _environment(*, quoted: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 (shell and config files, not HTML)
        keep_trailing_newline=True,
        finalize=_shell_slot if quoted else None,
    )
    env.filters["raw"] = _raw
    for name, function in list(env.filters.items()):
        env.filters[name] = _pending_aware(function)
    return env


def _pending_aware(function: Callable[..., object]) -> Callable[..., object]:
    """The filter, except that a `Pending` argument makes it yield that `Pending` (dry render)."""
    pass_arg = getattr(function, "jinja_pass_arg", None)

    def filtered(*args: object, **kwargs: object) -> object:
        for value in (*args, *kwargs.values()):
            if isinstance(value, Pending):
                value.note()
                return value
        return function(*args, **kwargs)

    if pass_arg is not None:
        filtered.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    filtered.__name__ = getattr(function, "__name__", "filter")
    filtered.__doc__ = function.__doc__
    return filtered


SHELL_ENV = _environment(quoted=True)
PLAIN_ENV = _environment(quoted=False)


_USES: ContextVar[list[str] | None] = ContextVar("bastion_pending_uses", default=None)


def collect_uses() -> list[str]:
    """A fresh list that collects, from now on in this context, every use of a `Pending`."""
    uses: list[str] = []
    _USES.set(uses)
    return uses


def current_uses() -> list[str]:
    """The current context's collector (a new one if `collect_uses` was not called)."""
    uses = _USES.get()
    return collect_uses() if uses is None else uses


class Pending:
    """A registered value not known yet: any use of it works and yields a `Pending` again.

    Attribute and item access, calls (``stdout.split()``), arithmetic and filters all give a
    `Pending`; comparisons are false, ``in`` is false, ``len`` is 0, ``str`` is ``PENDING``.
    Every use is noted (by ``origin``: the register and the step that makes it) in the list
    `collect_uses` gave the current context (a `ContextVar`: each host's asyncio task has its
    own, so concurrent hosts never see each other's uses), so a caller can tell a ``when``
    that is false whatever the registered values are from one that only looks false because
    of them, and say which value it depends on.
    """

    __slots__ = ("_origin",)

    def __init__(self, origin: str = "a registered value") -> None:
        self._origin = origin

    def note(self) -> None:
        """Record a use of this value in the current collector (`collect_uses`), if any."""
        uses = _USES.get()
        if uses is not None:
            uses.append(self._origin)

    _use = note

    def __getattr__(self, name: str) -> Pending:
        if name.startswith("__"):
            raise AttributeError(name)
        self._use()
        return self

    def __getitem__(self, key: object) -> Pending:
        self._use()
        return self

    def __call__(self, *args: object, **kwargs: object) -> Pending:
        self._use()
        return self

    def _same(self, *other: object) -> Pending:
        self._use()
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _same
    __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = _same

    def __contains__(self, item: object) -> bool:
        self._use()
        return False

    def __iter__(self) -> Iterator[object]:
        self._use()
        return iter(())

    def __len__(self) -> int:
        self._use()
        return 0

    def __str__(self) -> str:
        self._use()
        return "PENDING"

    def __repr__(self) -> str:
        return f"Pending({self._origin!r})"

    def __eq__(self, other: object) -> bool:
        self._use()
        return False

    def __hash__(self) -> int:
        return 0

    def __lt__(self, other: object) -> bool:
        self._use()
        return False

    __gt__ = __le__ = __ge__ = __lt__

    def __int__(self) -> int:
        self._use()
        return 0

    def __float__(self) -> float:
        self._use()
        return 0.0


_UNCOMPILABLE = (SyntaxError, RecursionError)
"""What Jinja's compiler (or Python's, on the code Jinja generates) raises for a template
nested too deeply: 101 nested ``{% if %}`` is an IndentationError, 101 parentheses a
RecursionError. Both are the template's fault, so both are a ``file:line`` error."""


def _too_nested(exc: BaseException, text: Text, path: Path, key: str = "template") -> PlaybookError:
    kind = "too many levels of indentation" if isinstance(exc, SyntaxError) else "too deep"
    return PlaybookError(
        f"{key} cannot be compiled: nested too deeply ({kind})", source=path, line=text.line
    )


def check_template(text: Text, path: Path) -> None:
    """Refuse a Jinja syntax error, or a template too nested to compile, naming its line."""
    try:
        _compiled(text.value, quoted=False)
    except jinja2.TemplateSyntaxError as exc:
        raise PlaybookError(
            f"template syntax: {exc.message}", source=path, line=text.line + (exc.lineno or 1) - 1
        ) from None
    except _UNCOMPILABLE as exc:
        raise _too_nested(exc, text, path) from None


_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.S)


def check_shell_placement(text: Text, path: Path) -> None:
    """Refuse at load a ``{{ value }}`` placed where no quoting is safe (`shell_slots`).

    Only for texts whose shape is known before rendering: with ``{% ... %}`` blocks or a
    ``| raw`` value (which may open a quote), the dry render checks each host's text instead.
    """
    source = text.value
    if "{%" in source or "{#" in source or "raw" in source or SLOT in source:
        return
    count = 0

    def placeholder(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return slot(count - 1)

    skeleton = _EXPRESSION.sub(placeholder, source)
    try:
        fill(skeleton, ["x"] * count)
    except SlotError as exc:
        line = text.line + skeleton[: exc.offset].count("\n")
        raise PlaybookError(exc.message, source=path, line=line) from None


def check_expression(text: Text, path: Path, key: str) -> None:
    """Refuse an expression (``when``, ``until``...) that does not parse."""
    try:
        _expression(text.value)
    except jinja2.TemplateSyntaxError as exc:
        raise PlaybookError(
            f"{key}: bad expression: {exc.message}", source=path, line=text.line
        ) from None
    except _UNCOMPILABLE as exc:
        raise _too_nested(exc, text, path, f"{key}: expression") from None


def render(text: Text, context: Mapping[str, object], path: Path, *, quoted: bool) -> str:
    """Render ``text``; an undefined variable or a failing filter is a `PlaybookError`.

    ``quoted``: ``text`` is shell code, and each value is quoted for the context it lands in
    (`shell_slots`); a value placed where it cannot be quoted safely is a `PlaybookError`.
    """
    values: list[str] = []
    token = _SLOT_VALUES.set(values if quoted else None)
    try:
        rendered = _compiled(text.value, quoted=quoted).render(context)
    except jinja2.TemplateError as exc:
        raise _error(exc, text, path) from None
    except _UNCOMPILABLE as exc:
        raise _too_nested(exc, text, path) from None
    except (TypeError, ValueError, ArithmeticError, AttributeError, LookupError) as exc:
        raise _error(exc, text, path) from None
    finally:
        _SLOT_VALUES.reset(token)
    if not quoted:
        return rendered
    if SLOT in text.value:
        raise PlaybookError("a NUL character in a command", source=path, line=text.line)
    try:
        return fill(rendered, _unslotted(values))
    except SlotError as exc:
        line = text.line + rendered[: exc.offset].count("\n")
        raise PlaybookError(exc.message, source=path, line=line) from None


def _unslotted(values: list[str]) -> list[str]:
    """Values with slots of earlier values inside (``{% set %}`` blocks) resolved to text."""
    resolved: list[str] = []
    for value in values:
        parts = value.split(SLOT)
        resolved.append(
            "".join(
                resolved[int(part)] if n % 2 and part.isdigit() else part
                for n, part in enumerate(parts)
            )
        )
    return resolved


def evaluate(text: Text, context: Mapping[str, object], path: Path) -> object:
    """The value of an expression such as ``when`` or ``until``."""
    try:
        value: object = _expression(text.value)(**context)
    except jinja2.TemplateError as exc:
        raise _error(exc, text, path, expression=True) from None
    except _UNCOMPILABLE as exc:
        raise _too_nested(exc, text, path, "expression") from None
    except (TypeError, ValueError, ArithmeticError, AttributeError, LookupError) as exc:
        raise _error(exc, text, path, expression=True) from None
    if isinstance(value, jinja2.Undefined):
        raise PlaybookError(f"undefined: {text.value}", source=path, line=text.line)
    return value


def render_value(value: object, context: Mapping[str, object], path: Path) -> object:
    """A variable's value with every `Text` inside rendered (no quoting)."""
    if isinstance(value, Text):
        return render(value, context, path, quoted=False)
    if isinstance(value, dict):
        return {k: render_value(v, context, path) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context, path) for v in value]
    return value


def _error(exc: Exception, text: Text, path: Path, *, expression: bool = False) -> PlaybookError:
    # An expression is one line; Jinja wraps it in a template of its own, whose lines mean nothing.
    line = text.line if expression else text.line + _template_line(exc) - 1
    if isinstance(exc, jinja2.UndefinedError):
        return PlaybookError(f"undefined variable: {exc.message}", source=path, line=line)
    message = exc.message if isinstance(exc, jinja2.TemplateError) else str(exc)
    return PlaybookError(f"template error: {message}", source=path, line=line)


def _template_line(exc: Exception) -> int:
    """The line inside the template where rendering failed (1 when unknown)."""
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.lineno:
        return exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == _TEMPLATE_NAME]
    return frames[-1].lineno or 1 if frames else 1


@lru_cache(maxsize=4096)
def _compiled(source: str, *, quoted: bool) -> jinja2.Template:
    env = SHELL_ENV if quoted else PLAIN_ENV
    return env.from_string(source)


@lru_cache(maxsize=1024)
def _expression(source: str) -> jinja2.environment.TemplateExpression:
    return PLAIN_ENV.compile_expression(source, undefined_to_none=False)


class Masker:
    """Replaces every secret value by ``********`` in text bound for output, files or logs."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._secrets: set[str] = set()
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        for value in values:
            for piece in (value.strip(), *value.splitlines()):
                if len(piece.strip()) >= 3:
                    self._secrets.add(piece.strip())
            # Not the value with its final newline: masking that would eat the line break.
            for form in (value.rstrip("\r\n"), value.strip(), shlex.quote(value.strip())):
                if len(form) >= 3:  # masking every "a" would hide everything and protect nothing
                    self._values.add(form)
            for line in value.splitlines():
                if len(line.strip()) >= 3:
                    self._values.add(line.strip())

    def mask(self, text: str) -> str:
        if not self._values or not text:
            return text
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text

    def reveals(self, text: str) -> bool:
        """Whether ``text`` (a command) holds a secret, as is or quoted for any shell context.

        Each quoting is character by character, so a secret inside a larger value (``"Bearer
        " ~ token``) still shows in the quoted whole.
        """
        for secret in self._secrets:
            forms = (
                secret,
                secret.replace("'", "'\"'\"'"),
                quote_single(secret),
                quote_double(secret),
                quote_heredoc(secret),
            )
            if any(form in text for form in forms):
                return True
        return False

    def __bool__(self) -> bool:
        return bool(self._values)
