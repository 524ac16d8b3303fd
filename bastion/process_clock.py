"""How long this process has run, so that a run's summary counts its start-up too.

The interpreter, the imports and the inventory happen before the fan-out starts; a summary
that timed only the fan-out said 0.44 s for a run that took 1.34 s. The console script marks
the process as one whole run (`mark_whole_run`); an embedding (tests calling ``main``) is not,
and its runs are timed from when they start.
"""

from __future__ import annotations

import os
import time

_whole_run: list[bool] = []


def mark_whole_run() -> None:
    """This process is one ``bastion`` command: time its runs from the process's start."""
    _whole_run.append(True)


def process_age_s() -> float | None:
    """Seconds since this process started (Linux ``/proc``, to the kernel's clock tick), or
    None where that cannot be read."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start, in ticks
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError):
        return None


def run_elapsed_s(started: float) -> float:
    """The run's wall time: since the process started when it is one whole run, else since
    ``started`` (a `time.monotonic` reading)."""
    since_start = time.monotonic() - started
    if _whole_run:
        age = process_age_s()
        if age is not None:
            return max(age, since_start)
    return since_start
