"""The play renderer: host texts shown visibly, and a recap that fits an 80-column terminal."""

from __future__ import annotations

import io

from bastion.playbook.results import (
    HostStepResult,
    HostTally,
    PlayRecap,
    StepFinished,
    StepOutput,
    StepStatus,
)
from bastion.render.play import PlayTextRenderer, render_recap


def recap() -> PlayRecap:
    first = HostTally("frontend-web-02", "127.0.0.2")
    first.counts.update(ok=3, changed=12, failed=1)
    first.stopped_at = "wait for the api server to come up"
    second = HostTally("db1", "127.0.0.3")
    second.counts.update(ok=4, changed=11)
    return PlayRecap(hosts=[first, second], elapsed_s=12.5)


def test_the_recap_fits_80_columns_on_a_terminal() -> None:
    text = render_recap(recap(), columns=80)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert text.splitlines() == [
        "PLAY RECAP",
        "  frontend-web-02  ok=3 changed=12 skipped=0 failed=1 unreachable=0 ignored=0",
        "                   (stopped at 'wait for the api server to come up')",
        "  db1              ok=4 changed=11 skipped=0 failed=0 unreachable=0 ignored=0",
        "bastion: play: 2 hosts in 12.50s: 7 ok, 23 changed, 1 failed",
    ]


def test_the_recap_into_a_pipe_keeps_every_column_on_one_line() -> None:
    lines = render_recap(recap()).splitlines()
    assert lines[1].endswith("ignored=0  (stopped at 'wait for the api server to come up')")
    assert lines[-1] == (
        "bastion: play: 2 hosts in 12.50s: 7 ok, 23 changed, 0 skipped, 1 failed, "
        "0 unreachable, 0 ignored"
    )


def test_play_output_and_details_are_shown_visibly() -> None:
    out = io.StringIO()
    renderer = PlayTextRenderer(out, verbose=True)
    renderer.handle(StepOutput("node1", "stdout", "a\x1b]0;t\x07\rb\n"))
    failed = HostStepResult(
        host="node1",
        step="s",
        status=StepStatus.FAILED,
        detail="exit status 1: \x1b[2Kgone",
        stdout="x\x1b[1A\n",
    )
    renderer.handle(StepFinished("s", (failed,)))
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    assert "    node1 | a^[]0;t^G^Mb\n" in out.getvalue()
    assert "  failed  node1: exit status 1: ^[[2Kgone\n" in out.getvalue()
