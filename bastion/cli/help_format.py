"""Help that reads well at 80 columns: plain metavars, no type or range noise.

typer labels values with Python types (``<list[str]>``, ``<int range>``, ``<path>``) and adds
ranges (``[x>=0.001]``); the option's own help already says what it takes. `tidy` walks every
command once, when the root group is built, and names each value the way pdsh, ssh and git
name theirs (``-H PATTERN``, ``-f N``, ``--out-dir DIR``). Ranges are still enforced: only
their display goes.
"""

from __future__ import annotations

from typing import Any

METAVARS = {
    "inventory": "INVENTORY",
    "group": "GROUP",
    "hosts": "PATTERN",
    "exclude": "PATTERN",
    "selector": "SELECTOR",
    "ref": "HOST",
    "forks": "N",
    "retries": "N",
    "limit": "N",
    "unused_days": "DAYS",
    "nodes": "N",
    "port": "PORT",
    "loss": "PERCENT",
    "transport": "NAME",
    "script": "FILE",
    "batch": "SIZES",
    "max_fail": "N",
    "out_dir": "DIR",
    "retry_failed": "DIR",
    "fetch_dir": "DIR",
    "persist": "DURATION",
    "idle": "DURATION",
    "mode": "OCTAL",
    "owner": "USER[:GROUP]",
    "extra_vars": "NAME=VALUE|@FILE",
    "extra_var": "NAME=VALUE",
    "tags": "TAGS",
    "skip_tags": "TAGS",
    "start_at": "STEP",
    "access": "FILE",
    "diff": "REPORT",
    "fail_on": "SEVERITY",
    "subnet": "A.B.C",
    "cni": "NAME",
    "pod_cidr": "CIDR",
}
"""Value names by parameter name; any other value is named by its option, upper-cased."""


def _no_range() -> None:
    return None


def _no_type(ctx: Any) -> None:
    return None


def tidy(command: Any) -> None:
    """Give ``command``'s (and its sub-commands') values plain names, without ranges."""
    for param in getattr(command, "params", ()):
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        if param.metavar is None and param.name is not None:
            param.metavar = METAVARS.get(param.name, param.name.upper())
        if param.param_type_name == "argument":
            param.display_type_rich = _no_type  # its name already says what it is
        if hasattr(param, "_get_number_range_help_str"):
            param._get_number_range_help_str = _no_range  # the help says the range in words
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)


def examples(*lines: str) -> str:
    """A help epilog of example command lines, kept as they are (click's ``\\b`` block)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


EXAMPLES = {
    "run": examples(
        "bastion run -i lab --all uptime",
        "bastion run -i lab -H node1 uname -a         # options end at the command",
        "bastion run -g workers -o grouped uname -r",
        "bastion run -l role=worker -t 5m --sudo apt-get -q update",
        "bastion run --all --batch 1,25% --max-fail 0 'systemctl restart kubelet'",
        "bastion run --all -S test -f /etc/ready    # exit: the worst remote status",
    ),
    "copy": examples(
        "bastion copy -i lab --all app.conf /etc/app/",
        "bastion copy -g workers -r --sudo --owner root:root conf.d/ /etc/app/conf.d/",
        "bastion copy --all motd.txt '/etc/motd-{host}'",
    ),
    "fetch": examples(
        "bastion fetch -i lab --all /etc/hostname out/   # out/node1/etc/hostname",
        "bastion fetch -g masters -r /etc/kubernetes/manifests backups/",
    ),
    "play": examples(
        "bastion play -i lab playbooks/examples/hello.yaml --check",
        "bastion play site.yaml --limit '-g workers' -e version=1.33",
        "bastion play site.yaml -o json > steps.jsonl",
    ),
    "history": examples("bastion history -n 5", "bastion history -o json | jq .command"),
    "audit": examples(
        "bastion audit -i lab",
        "bastion audit -o html --to access.html",
        "bastion audit --fail-on medium --diff last",
    ),
    "jobs": examples("bastion jobs -i lab --all", "bastion jobs --all --clean"),
    "shell": examples("bastion shell node2", "bastion shell node2 --mosh"),
    "facts": examples("bastion facts -i lab --all", "bastion facts -g workers -o json"),
    "completion": examples("source <(bastion completion bash)"),
    "man": examples("bastion man | man -l -"),
}
"""The examples each top-level command's help ends with."""

SHORT_HELP = {
    "run": "Run a command on many hosts at once.",
    "copy": "Copy local files to the hosts (SFTP; only what differs).",
    "fetch": "Fetch files from the hosts into LOCALDIR/HOST/.",
    "play": "Run a declarative playbook.",
    "history": "List the runs made from this bastion.",
    "audit": "Who can get into which host, how, and what is wrong.",
    "jobs": "List (or clean) durable jobs left on the hosts.",
    "shell": "An interactive shell on one host (ssh or mosh).",
    "access": "Converge hosts to the declared access list.",
    "inventory": "Inspect the inventory.",
    "lab": "A local lab of real OpenSSH nodes, to try things safely.",
    "cluster": "Bootstrap, inspect, back up or reset a kubeadm cluster.",
    "agent": "The agent that keeps SSH connections open between runs.",
    "facts": "What each host is: OS, kernel, CPUs, memory, disks, addresses.",
    "completion": "Print the shell completion script (bash, zsh, fish).",
    "man": "Print the manual page (roff), generated from these commands.",
}
"""Each command's line in ``bastion --help``: whole, within 80 columns."""
