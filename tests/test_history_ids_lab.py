"""Every run has an id: in the history (text and JSON) and in its --out-dir run.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.lab


def test_the_run_id_and_duration_are_recorded_and_shown(lab: Cli, tmp_path: Path) -> None:
    done = lab("run", "-i", "lab", "--all", "--out-dir", str(tmp_path / "rec"), "true")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "rec" / "run.json").read_text())
    entry = json.loads(lab("history", "--json", "-n", "1").stdout)
    assert re.fullmatch(r"[0-9a-f]{12}", entry["run_id"])
    assert manifest["run_id"] == entry["run_id"]
    line = lab("history", "-n", "1").stdout.strip()
    assert re.match(
        rf"{entry['run_id']}  \S+  \S+  [0-9]+\.[0-9]s  exit=0  ok:node\[1-3\]  true$", line
    )
