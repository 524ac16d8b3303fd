"""``bastion run`` with no command on a terminal: a ``bastion>`` prompt, as ``clush`` without one.

Each line runs on the current host set exactly as ``bastion run`` would run it (same options,
output, summary, history record and exit code per line). Lines that start with one of
clush's single-character commands change the session instead:

====================  ==================================================================
``?``                 show the current host set
``@SET``              set it (``@node[1-2]``, ``@@workers``, any ``-H`` host set)
``+SET`` / ``-SET``   add hosts to it, remove hosts from it
``!COMMAND``          run COMMAND on the bastion itself
``=``                 toggle the output: gathered (``-o grouped``) or streamed (inline)
``quit``, Ctrl-D      leave
====================  ==================================================================

Lines are edited with readline when Python has it; the session history is kept, private
(0600), in the state directory, without the output of any command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from bastion.errors import BastionError

HISTORY_LINES = 1000
PROMPT = "bastion> "


class Session:
    """The state of one interactive session: the host set and the output mode."""

    def __init__(
        self,
        arguments: dict[str, Any],
        run: Callable[..., None],
        resolve: Callable[[list[str]], list[str]],
        gathered_mode: Any,
        streamed_mode: Any,
    ) -> None:
        self._arguments = arguments
        self._run = run
        self._resolve = resolve
        self._modes = (streamed_mode, gathered_mode)
        self.hosts = resolve([])
        self.gathered = arguments.get("output") == gathered_mode

    def handle(self, line: str) -> bool:
        """Act on one line; False when the session is over."""
        text = line.strip()
        if not text:
            return True
        if text in ("quit", "exit"):
            return False
        match text[0]:
            case "?":
                self._say(f"{self._folded()} ({len(self.hosts)} hosts)")
            case "=":
                self.gathered = not self.gathered
                self._say("output: " + ("gathered" if self.gathered else "streamed"))
            case "!":
                subprocess.run(text[1:], shell=True, check=False)  # noqa: S602 (the operator's own shell line)
            case "@" | "+" | "-":
                self._change(text[0], text[1:].strip())
            case _:
                self._command(text)
        return True

    def _change(self, how: str, pattern: str) -> None:
        if not pattern:
            self._say(f"{how} needs a host set, e.g. {how}node[1-2]")
            return
        try:
            named = self._resolve([pattern])
        except BastionError as exc:
            self._say(f"error: {exc}")
            return
        if how == "@":
            chosen = named
        elif how == "+":
            chosen = self.hosts + [name for name in named if name not in self.hosts]
        else:
            chosen = [name for name in self.hosts if name not in named]
        if not chosen:
            self._say("that leaves no host; the host set is unchanged")
            return
        self.hosts = chosen
        self._say(f"{self._folded()} ({len(self.hosts)} hosts)")

    def _command(self, text: str) -> None:
        arguments = {
            **self._arguments,
            "command": [text],
            "all_hosts": False,
            "group": None,
            "hosts": [self._folded()],
            "host_files": None,
            "selector": None,
            "exclude": None,
            "pick": None,
            "retry_failed": None,
            "output": self._modes[self.gathered],
        }
        try:
            self._run(**arguments)
        except typer.Exit:
            pass
        except BastionError as exc:
            self._say(f"error: {exc}")
        except KeyboardInterrupt:
            self._say("interrupted")

    def _folded(self) -> str:
        from bastion.hostset import fold

        return fold(self.hosts)

    @staticmethod
    def _say(text: str) -> None:
        from bastion.render.visible import visible

        sys.stderr.write(f"bastion: {visible(text)}\n")


def interactive_session(session: Session, history: Path) -> None:
    """Read lines until ``quit`` or end of input, keeping readline's history in ``history``."""
    editing = _readline(history)
    session.handle("?")
    try:
        while True:
            try:
                line = input(PROMPT)
            except EOFError:
                sys.stderr.write("\n")
                break
            except KeyboardInterrupt:
                sys.stderr.write("\n")
                continue
            if not session.handle(line):
                break
    finally:
        if editing is not None:
            _save_history(editing, history)


def _readline(history: Path) -> Any:
    try:
        import readline
    except ImportError:  # a Python built without it: plain lines still work
        return None
    readline.set_history_length(HISTORY_LINES)
    try:
        if history.is_file() and not history.is_symlink():
            readline.read_history_file(str(history))
    except OSError:
        pass
    return readline


def _save_history(readline: Any, history: Path) -> None:
    """Write the history through bastion's private-file writer (0600, no symlink followed)."""
    from bastion.private_files import private_dir, write_private

    count = readline.get_current_history_length()
    lines = [readline.get_history_item(index) for index in range(1, count + 1)]
    try:
        private_dir(history.parent)
        write_private(history, "".join(f"{line}\n" for line in lines[-HISTORY_LINES:] if line))
    except OSError as exc:
        sys.stderr.write(f"bastion: warning: cannot keep the session history: {exc}\n")


def history_file() -> Path:
    """Where the interactive history lives: beside the run history."""
    from bastion.lab.paths import state_home

    return Path(os.environ.get("BASTION_SESSION_HISTORY") or state_home() / "session_history")
