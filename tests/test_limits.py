"""Open-file limits: raised to what a run needs, and forks fitted when the hard limit is low.

Each case runs in a child process: lowering a hard limit cannot be undone in the same process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bastion.limits import RESERVED_DESCRIPTORS, descriptors_needed
from tests.conftest import REPO, Cli, lab_hostname

FIT = """
import json, resource, sys
soft, hard = (int(x) for x in sys.argv[1:3])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
from bastion.limits import fit_forks_to_file_limit
forks, hosts, per_host = (int(x) for x in sys.argv[3:6])
fit = fit_forks_to_file_limit(forks, hosts, per_host)
print(json.dumps({
    "forks": fit.forks, "soft_before": fit.soft_before, "soft_after": fit.soft_after,
    "now": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "raised": fit.raised,
    "message": fit.shortfall_message(),
}))
"""


def _fit(soft: int, hard: int, forks: int, hosts: int, per_host: int) -> dict[str, object]:
    argv = [sys.executable, "-c", FIT, *(str(n) for n in (soft, hard, forks, hosts, per_host))]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_descriptors_needed_counts_hosts_in_progress_only() -> None:
    assert descriptors_needed(forks=64, hosts=10, per_host=3) == 30 + RESERVED_DESCRIPTORS
    assert descriptors_needed(forks=64, hosts=1000, per_host=1) == 64 + RESERVED_DESCRIPTORS


def test_a_small_run_leaves_the_limit_alone() -> None:
    fit = _fit(soft=256, hard=4096, forks=64, hosts=100, per_host=1)
    assert fit == {
        "forks": 64,
        "soft_before": 256,
        "soft_after": 256,
        "now": 256,
        "raised": False,
        "message": None,
    }


def test_the_soft_limit_is_raised_as_far_as_the_run_needs() -> None:
    fit = _fit(soft=256, hard=4096, forks=1000, hosts=1000, per_host=3)
    needed = 3000 + RESERVED_DESCRIPTORS
    assert (fit["forks"], fit["soft_after"], fit["now"], fit["raised"]) == (
        1000,
        needed,
        needed,
        True,
    )
    assert fit["message"] is None


def test_a_low_hard_limit_runs_fewer_hosts_at_once_and_says_so() -> None:
    fit = _fit(soft=128, hard=512, forks=1000, hosts=1000, per_host=1)
    assert fit["now"] == 512
    assert fit["forks"] == 512 - RESERVED_DESCRIPTORS
    assert fit["message"] == (
        "the open-files limit (ulimit -Hn) is 512, too low for 1000 hosts at once; "
        f"running {512 - RESERVED_DESCRIPTORS} at a time (raise the hard limit to go faster)"
    )


RUN_WITH_LIMIT = """
import resource, runpy, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
sys.argv = ["bastion", *sys.argv[2:]]
runpy.run_module("bastion", run_name="__main__")
"""


@pytest.mark.lab
def test_run_under_a_low_hard_limit_still_reaches_every_host(lab: Cli, tmp_path: Path) -> None:
    limit = RESERVED_DESCRIPTORS + 1
    out_dir = tmp_path / "record"
    args = ["run", "-i", "lab", "--all", "-f", "10", "--out-dir", str(out_dir), "hostname"]
    done = subprocess.run(
        [sys.executable, "-c", RUN_WITH_LIMIT, str(limit), *args],
        env=lab.env,
        cwd=lab.cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    nodes = ("node1", "node2", "node3")
    assert sorted(done.stdout.splitlines()) == [f"{n}: {lab_hostname(n)}" for n in nodes]
    assert (
        f"bastion: warning: the open-files limit (ulimit -Hn) is {limit}, too low for 3 hosts "
        "at once; running 1 at a time" in done.stderr
    )
    assert (
        f"bastion: ran at most 1 of 3 hosts at once: the open-files limit (ulimit -Hn) is {limit}"
        in done.stderr.splitlines()[-1]
    )
    options = json.loads((out_dir / "run.json").read_text())["options"]
    assert (options["forks"], options["forks_fitted"]) == (10, 1)
