"""Options shared by several commands; each global option also reads ``BASTION_<OPTION>``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli.completion import complete_groups, complete_hosts
from bastion.errors import UsageError

if TYPE_CHECKING:  # imported where used: a help page needs none of them
    from collections.abc import Sequence

    from bastion.batches import BatchPlan
    from bastion.inventory import Inventory
    from bastion.models import Host
    from bastion.select import Selection
    from bastion.transport.base import ConnectOptions

REMOTE_COMMAND_SETTINGS: dict[str, object] = {"allow_interspersed_args": False}
"""The click context settings of every command that takes a remote command (``run``).

Option parsing ends at the first word of the command, as in pdsh, clush, pssh and ssh:
``bastion run -H node1 uname -a`` runs ``uname -a`` on node1, where interspersed parsing
read ``-a`` as ``--all``. ``--`` still ends the options explicitly (docs/command-line.md).
"""

InventoryOption = Annotated[
    str | None,
    typer.Option(
        "--inventory",
        "-i",
        envvar="BASTION_INVENTORY",
        help="Inventory file, or a name: 'lab', or NAME for inventories/NAME.yaml. "
        "Default: ./inventory.yaml.",
        show_default=False,
    ),
]
AllOption = Annotated[bool, typer.Option("--all", "-a", help="Select every host.")]
GroupOption = Annotated[
    list[str] | None,
    typer.Option(
        "--group",
        "-g",
        help="Select a group (repeatable; a&b, a!b as in clush).",
        show_default=False,
        autocompletion=complete_groups,
    ),
]
HostsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--hosts",
        "-H",
        "-w",
        help="Select hosts: names, globs, ranges like node[1-3], commas; hosts outside the "
        "inventory as [user@]host[:port]; ^FILE or - for a host list (repeatable).",
        show_default=False,
        autocompletion=complete_hosts,
    ),
]
PickOption = Annotated[
    int | None,
    typer.Option(
        "--pick",
        min=1,
        metavar="N",
        help="Keep N of the selected hosts, chosen at random (as clush --pick).",
        show_default=False,
    ),
]
ListHostsOption = Annotated[
    bool,
    typer.Option(
        "--list-hosts",
        help="Print the hosts it would run on, one per line, and stop (as ansible --list-hosts).",
    ),
]
HostFileOption = Annotated[
    list[str] | None,
    typer.Option(
        "--hostfile",
        "-h",
        metavar="FILE",
        help="Read hosts from FILE, one [user@]host[:port] per line, # comments; - for "
        "stdin (as pssh -h; repeatable).",
        show_default=False,
    ),
]
SelectorOption = Annotated[
    str | None,
    typer.Option(
        "--selector",
        "-l",
        help="Filter by labels, kubectl grammar: k=v,k!=v,k,!k,'k in (a,b)'.",
        show_default=False,
    ),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        "-x",
        help="Remove hosts (same patterns as -H; repeatable).",
        show_default=False,
        autocompletion=complete_hosts,
    ),
]


def selection_from(
    all_hosts: bool,
    groups: list[str] | None,
    hosts: list[str] | None,
    selector: str | None,
    exclude: list[str] | None,
    host_files: list[str] | None = None,
    pick: int | None = None,
) -> Selection:
    """The selection the options describe; host lists (``-h FILE``, ``-H ^FILE``, ``-H -``)
    are read here, one ``-H`` item per line."""
    from bastion.select import Selection

    items: list[str] = []
    for text in hosts or ():
        if text == "-" or text.startswith("^"):
            items += _host_list(text.removeprefix("^"))
        else:
            items.append(text)
    for name in host_files or ():
        items += _host_list(name)
    return Selection(
        all=all_hosts,
        groups=tuple(groups or ()),
        hosts=tuple(items),
        selector=selector,
        exclude=tuple(exclude or ()),
        pick=pick,
    )


def list_hosts_and_stop(hosts: Sequence[Host], what: str) -> None:
    """``--list-hosts``: the names on stdout, one per line; what would run, on stderr."""
    import sys

    from bastion.hostset import fold

    sys.stdout.write("".join(f"{host.name}\n" for host in hosts))
    sys.stderr.write(
        f"bastion: would run {what} on {len(hosts)} hosts: {fold(h.name for h in hosts)}\n"
    )


def _host_list(name: str) -> list[str]:
    """The hosts of a host-list file, or of standard input for ``-``."""
    import sys

    from bastion.adhoc import MAX_HOST_LIST_BYTES, host_list_items, read_host_list

    if name != "-":
        return read_host_list(Path(name).expanduser())
    text = sys.stdin.read(MAX_HOST_LIST_BYTES + 1)
    if len(text) > MAX_HOST_LIST_BYTES:
        raise UsageError(f"the host list on stdin is larger than {MAX_HOST_LIST_BYTES} bytes")
    return host_list_items(text, source="stdin")


def inventory_of(name_or_path: str | None) -> Inventory:
    """Load the inventory an ``-i`` option names (an empty one when none is given or found,
    so that ad-hoc ``-H user@host`` hosts work without any inventory file)."""
    from bastion.inventory import open_inventory

    return open_inventory(name_or_path)


class OutputMode(StrEnum):
    """``-o/--output`` of run, copy and fetch (docs/output.md)."""

    TEXT = "text"
    """Each line as it arrives, prefixed with its host: the human default of every command."""
    GROUPED = "grouped"
    JSON = "json"
    QUIET = "quiet"
    DIFF = "diff"
    LINES = "lines"
    INLINE = "inline"
    """The old name of ``text``; kept for one release (`check_output_mode`)."""


class TextOrJson(StrEnum):
    """``-o/--output`` of the commands that print one document: text (default) or json."""

    TEXT = "text"
    JSON = "json"


OutputOption = Annotated[
    OutputMode,
    typer.Option(
        "--output",
        "-o",
        envvar="BASTION_OUTPUT",
        metavar="FORMAT",
        help="text (lines as they come), grouped, lines (grouped, each line prefixed: -L), "
        "json, quiet, or diff (against the majority, or --ref).",
    ),
]


def warn_deprecated(old: str, new: str) -> None:
    """One line on stderr for a spelling that still works for one release."""
    import sys

    sys.stderr.write(f"bastion: warning: {old} is deprecated (kept for one release); use {new}\n")


def check_output_mode(output: OutputMode) -> OutputMode:
    """``-o inline`` still works, with its deprecation line; ``text`` is its name now."""
    if output is OutputMode.INLINE:
        warn_deprecated("-o inline", "-o text")
        return OutputMode.TEXT
    return output


RefOption = Annotated[
    str | None,
    typer.Option(
        "--ref",
        help="With -o diff: the host every other host's output is compared with "
        "(default: the output most hosts printed).",
        show_default=False,
    ),
]


def duration_value(value: object) -> float:
    """The parser of every duration option: seconds from ``30``, ``30s``, ``500ms``, ``5m``,
    ``1h`` (bastion.durations); ``nan``, ``inf`` and ``1e400`` are refused."""
    from bastion.cli.lean_coercion import LeanValueError
    from bastion.durations import parse_duration
    from bastion.errors import cut

    seconds = parse_duration(value)
    if seconds is None:
        raise LeanValueError(
            f"{cut(str(value), 40)!r} is not a duration: give seconds (30) or 30s, 500ms, 5m, 1h"
        )
    return seconds


ForksOption = Annotated[
    int, typer.Option("--forks", "-f", envvar="BASTION_FORKS", min=1, help="Hosts at once.")
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        "-t",
        envvar="BASTION_TIMEOUT",
        parser=duration_value,
        metavar="DURATION",
        min=0.001,
        help="Time each host may take, like 30, 30s, 5m, 1h (run: then its remote process "
        "group is stopped).",
        show_default=False,
    ),
]
ConnectTimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--connect-timeout",
        envvar="BASTION_CONNECT_TIMEOUT",
        parser=duration_value,
        metavar="DURATION",
        min=0.001,
        help="Time to connect and authenticate, like 10 or 10s (default: the inventory's, "
        "else 10s).",
        show_default=False,
    ),
]
RetriesOption = Annotated[
    int,
    typer.Option(
        "--retries",
        envvar="BASTION_RETRIES",
        min=0,
        help="Extra connection attempts after a dropped handshake (jittered backoff); "
        "refused connections and timeouts are not retried.",
    ),
]
AcceptNewOption = Annotated[
    bool,
    typer.Option(
        "--accept-new",
        envvar="BASTION_ACCEPT_NEW",
        help="Trust unknown host keys on first use and record them; changed keys still fail.",
    ),
]
OutDirOption = Annotated[
    Path | None,
    typer.Option(
        "--out-dir",
        envvar="BASTION_OUT_DIR",
        help="Write HOST.out/HOST.err, hosts.ok, hosts.failed and run.json here (0600).",
        show_default=False,
    ),
]
RetryFailedOption = Annotated[
    Path | None,
    typer.Option(
        "--retry-failed",
        help="Run again on the hosts that did not succeed in this --out-dir record.",
        show_default=False,
    ),
]
RecursiveOption = Annotated[
    bool, typer.Option("--recursive", "-r", help="Copy directories and what is in them.")
]
BatchOption = Annotated[
    str | None,
    typer.Option(
        "--batch",
        help="Roll through the hosts in batches: N, N% or sizes like 1,5,25% (last repeats).",
        show_default=False,
    ),
]
MaxFailOption = Annotated[
    str | None,
    typer.Option(
        "--max-fail",
        help="Start no further batch once more than N (or N% of the) hosts are not ok.",
        show_default=False,
    ),
]
PauseOption = Annotated[
    float,
    typer.Option(
        "--pause",
        parser=duration_value,
        metavar="DURATION",
        min=0,
        help="Time to wait between batches, like 30 or 2m.",
    ),
]
CanaryOption = Annotated[
    bool,
    typer.Option("--canary", help="Run one host first, alone; stop there if it does not succeed."),
]


def connect_options(
    inventory: Inventory,
    connect_timeout: float | None = None,
    retries: int | None = None,
    accept_new: bool = False,
) -> ConnectOptions:
    """The connection options the command-line flags describe (``retries`` None: the default)."""
    from bastion.hostkeys import HostKeyPolicy
    from bastion.transport.base import DEFAULT_RETRIES, ConnectOptions

    return ConnectOptions(
        connect_timeout=connect_timeout,
        retries=DEFAULT_RETRIES if retries is None else retries,
        host_keys=HostKeyPolicy(accept_new=accept_new),
        jump_hosts=inventory.hosts,
    )


def batch_plan(
    batch: str | None, max_fail: str | None, pause: float, canary: bool
) -> BatchPlan | None:
    """The rolling plan of ``--batch``, ``--max-fail``, ``--pause`` and ``--canary``, if any."""
    if batch is None and not canary:
        for name, given in (("--max-fail", max_fail is not None), ("--pause", pause > 0)):
            if given:
                raise UsageError(f"{name} needs --batch or --canary", source=name)
        return None
    from bastion.batches import BatchPlan, parse_amount, parse_batch

    return BatchPlan(
        sizes=parse_batch(batch) if batch is not None else BatchPlan().sizes,
        max_fail=None
        if max_fail is None
        else parse_amount(max_fail, source="--max-fail", allow_zero=True),
        pause_s=pause,
        canary=canary,
    )


def retry_selection(selection: Selection, record: Path) -> Selection | None:
    """``--retry-failed``: the hosts to retry, narrowed by -l/-x; None when every host succeeded."""
    from bastion.hostset import fold
    from bastion.runrecord import hosts_to_retry
    from bastion.select import Selection

    if selection.all or selection.groups or selection.hosts:
        raise UsageError("--retry-failed chooses the hosts; drop --all, -g and -H", source=record)
    names = hosts_to_retry(record)
    if not names:
        return None
    return Selection(hosts=(fold(names),), selector=selection.selector, exclude=selection.exclude)


LinesOption = Annotated[
    bool,
    typer.Option(
        "--lines", "-L", help="Gathered line mode (like clush -bL): the same as -o lines."
    ),
]
NoPrefixOption = Annotated[
    bool,
    typer.Option(
        "--no-prefix", "-N", help="Output without host prefixes or group headers (pdsh -N)."
    ),
]
RawOption = Annotated[
    bool,
    typer.Option(
        "--raw",
        envvar="BASTION_RAW",
        help="Pass hosts' control characters (escape sequences, \\r) to the terminal "
        "as they came, instead of showing them like cat -v.",
    ),
]
