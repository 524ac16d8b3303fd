"""Before a playbook runs: which hosts and steps each play has, and a dry render of it all.

The dry render renders every step for every host with registered results not known yet
(`Pending`): an undefined name or a bad selection is an exit-2 error naming its file and line
before any host is contacted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bastion.errors import SelectionError
from bastion.executor import RunOptions
from bastion.inventory import Inventory
from bastion.models import Host
from bastion.playbook.actions import prepare
from bastion.playbook.context import host_view, layered_vars, resolve_vars
from bastion.playbook.durations import parse_duration
from bastion.playbook.errors import PlaybookError
from bastion.playbook.guards import Guards
from bastion.playbook.model import Play, Playbook, Step, Text
from bastion.playbook.template import Pending, collect_uses, evaluate, render
from bastion.select import Selection, select_hosts


@dataclass(frozen=True, slots=True)
class PlayOptions:
    """How to run a playbook: the run limits and connection options, and what to run."""

    run: RunOptions = field(default_factory=RunOptions)
    check: bool = False
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    start_at: str | None = None
    limit: Selection | None = None


@dataclass(slots=True)
class PlannedPlay:
    """A play with its hosts (after ``--limit``) and the steps to run (tags, ``--start-at``)."""

    play: Play
    hosts: list[Host]
    steps: list[tuple[Step, set[str] | None]]
    """Each step to run, with the hosts its ``on`` allows (None: all of the play's)."""


def plan_plays(playbook: Playbook, inventory: Inventory, options: PlayOptions) -> list[PlannedPlay]:
    """Every play's hosts and steps; an unknown host, group or ``--start-at`` step is an error."""
    start_found = options.start_at is None
    limit = options.limit
    allowed = None if limit is None else {h.name for h in select_hosts(inventory, limit)}
    planned: list[PlannedPlay] = []
    for play in playbook.plays:
        hosts = _select(inventory, play.hosts.selection, play.path, play.hosts.line, "hosts")
        if allowed is not None:
            hosts = [h for h in hosts if h.name in allowed]
        steps: list[tuple[Step, set[str] | None]] = []
        for step in play.steps:
            if not start_found:
                if step.name != options.start_at:
                    continue
                start_found = True
            if not _tagged(step, options):
                continue
            on = None
            if step.on is not None:
                chosen = _select(inventory, step.on.selection, play.path, step.on.line, "on")
                on = {h.name for h in chosen}
            steps.append((step, on))
        planned.append(PlannedPlay(play, hosts, steps))
    if not start_found:
        raise PlaybookError(
            f"no step named {options.start_at!r} in {playbook.path}", source="--start-at"
        )
    if allowed is not None and not any(plan.hosts for plan in planned):
        raise PlaybookError(
            f"no host of the playbook is among {', '.join(sorted(allowed))}", source="--limit"
        )
    return planned


def dry_render(
    playbook: Playbook, inventory: Inventory, planned: list[PlannedPlay], *, check: bool
) -> None:
    """Render every step for every host with registered results `Pending`; raise on errors."""
    touched = collect_uses()
    pending = {name: Pending() for name in playbook.registers}
    hosts_view = {name: dict(pending) for name in inventory.hosts}
    for plan in planned:
        play = plan.play
        if play.when is not None and not play_runs(playbook, play):
            continue
        for host in plan.hosts:
            fixed = fixed_context(plan, host, hosts_view)
            values = resolve_vars(layered_vars(play, host, playbook.extra_vars), fixed)
            context = {**values, **pending, **extra_values(playbook, values), **fixed}
            for step, _on in plan.steps:
                _render_step(step, play.path, context, touched, check=check)


def _render_step(
    step: Step, path: Path, context: Mapping[str, object], touched: list[str], *, check: bool
) -> None:
    touched.clear()
    if step.when is not None and not evaluate(step.when, context, path) and not touched:
        return  # false whatever gets registered: the step's texts may rely on that
    render_guards(step, context, path)
    prepare(step, context, path, check=check)
    touched.clear()
    retry_limits_checked(step, context, path, touched)
    with_result = {**context, "result": Pending()}
    for expression in (step.until, step.changed_when):
        if expression is not None:
            evaluate(expression, with_result, path)


def retry_limits(step: Step, context: Mapping[str, object], path: Path) -> tuple[int, float]:
    """The step's ``retries`` and ``delay`` for one host, templates rendered and checked."""
    retries = step.retries
    if isinstance(retries, Text):
        text = render(retries, context, path, quoted=False).strip()
        if not text.isdigit():
            raise PlaybookError(
                f"step {step.name!r}: retries: expected a whole number >= 0, got {text!r}",
                source=path,
                line=retries.line,
            )
        retries = int(text)
    delay = step.delay
    if isinstance(delay, Text):
        text = render(delay, context, path, quoted=False)
        seconds = parse_duration(text)
        if seconds is None:
            raise PlaybookError(
                f"step {step.name!r}: delay: expected a duration such as 30, 5s, 10m or 1h, "
                f"got {text.strip()!r}",
                source=path,
                line=delay.line,
            )
        delay = seconds
    return retries, delay


def retry_limits_checked(
    step: Step, context: Mapping[str, object], path: Path, touched: list[str]
) -> None:
    """`retry_limits` in the dry render: a value built from a registered result waits for it."""
    try:
        retry_limits(step, context, path)
    except PlaybookError:
        if not touched:
            raise


def play_runs(playbook: Playbook, play: Play) -> bool:
    """Whether an imported play's ``when`` holds (composition vars and ``-e`` only)."""
    if play.when is None:
        return True
    layers = {k: (v, playbook.path) for k, v in play.composition_vars.items()}
    layers.update({k: (v, playbook.path) for k, v in playbook.extra_vars.items()})
    values = resolve_vars(layers, {})
    return bool(evaluate(play.when, values, playbook.path))


def fixed_context(
    plan: PlannedPlay, host: Host, hosts_view: Mapping[str, object]
) -> dict[str, object]:
    """The names every template of ``host`` sees besides variables."""
    return {
        "host": host_view(host),
        "hosts": hosts_view,
        "inventory_hosts": [h.name for h in plan.hosts],
        "playbook_dir": str(plan.play.path.parent.resolve()),
    }


def extra_values(playbook: Playbook, values: Mapping[str, object]) -> dict[str, object]:
    """The ``-e`` variables (rendered): they win over registered results too."""
    return {k: values[k] for k in playbook.extra_vars if k in values}


def render_guards(step: Step, context: Mapping[str, object], path: Path) -> Guards:
    """The step's guards for one host: paths as text, commands shell-quoted."""

    def plain(text: Text | None) -> str | None:
        return None if text is None else render(text, context, path, quoted=False)

    def shell(text: Text | None) -> str | None:
        return None if text is None else render(text, context, path, quoted=True)

    return Guards(plain(step.creates), plain(step.removes), shell(step.unless), shell(step.only_if))


def _select(
    inventory: Inventory, selection: Selection, path: Path, line: int, key: str
) -> list[Host]:
    try:
        return select_hosts(inventory, selection)
    except SelectionError as exc:
        raise PlaybookError(f"{key}: {exc}", source=path, line=line) from None


def _tagged(step: Step, options: PlayOptions) -> bool:
    tags = set(step.tags)
    if options.tags and not tags & options.tags:
        return False
    return not tags & options.skip_tags
