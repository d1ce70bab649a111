"""The arithmetic of the classroom load test (bench/classroom.py): percentiles, thirds, rates, verdicts.

Kept apart from the script that drives the server and the browsers so that it can be checked without
either (tests/test_classroom_bench.py): a load test whose sums are wrong reports a classroom that
never was.
"""
from __future__ import annotations

import math
import os
import statistics
from pathlib import Path


def p95(xs: list[float]) -> float:
    """The 95th percentile by nearest rank: the smallest x with at least 95% of the xs at or below it.

    With fewer than 20 values that is the largest one (a p95 of 10 loads is their worst).

    >>> p95(list(range(1, 101)))
    95
    """
    if not xs:
        return math.nan
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def thirds(samples: list[float]) -> tuple[float, float]:
    """Means of the first and the last third of samples taken at a steady pace (at least one each).

    >>> thirds([1, 1, 1, 5, 5, 5, 2, 2, 2])
    (1, 2)
    """
    if not samples:
        return math.nan, math.nan
    k = max(1, len(samples) // 3)
    return statistics.mean(samples[:k]), statistics.mean(samples[-k:])


def rate_in(steps: list[tuple[float, int]], start: float, end: float) -> float:
    """Steps a second between the first and the last reading (time, step) inside [start, end].

    A counter read once or never in the window gives 0: a run nobody saw move did not train for them.

    >>> rate_in([(0.0, 0), (1.0, 10), (3.0, 30), (9.0, 99)], 0.5, 5.0)
    10.0
    """
    inside = [(t, s) for t, s in steps if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return 0.0
    (t0, s0), (t1, s1) = inside[0], inside[-1]
    return (s1 - s0) / (t1 - t0)


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (/proc/PID/statm: resident pages x page size); 0 if it is gone."""
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0.0
    return resident * os.sysconf("SC_PAGE_SIZE") / 2**20


def thread_count(pid: int) -> int:
    """Threads of a running process (/proc/PID/task); 0 if it is gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return 0


def alive(pid: int) -> bool:
    """Whether pid is a process that still runs (a zombie has ended: only its exit status is left)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    """The processes whose parent is pid (/proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return found


def machine_cpu_s() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, every core summed (/proc/stat), so that a
    window's figures can say how much of the box went to work that was not this benchmark's."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]          # idle, iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def verdicts(result: dict) -> dict[str, bool]:
    """Each target of the issue "A classroom on one small box", met or not, from the result's figures."""
    return {
        "render_p95_ratio <= 1.5": result["render_p95_ratio"] <= 1.5,
        "refused == 0": result["refused"] == 0,
        "runs_computing == distinct_keys": result["runs_computing"] == result["distinct_keys"],
        "every private run >= 1/10 of a lone run": result["min_private_steps_per_s"] >= result["lone_steps_per_s"] / 10,
        "RSS last third within 10% of the first": abs(result["rss_last_third_mb"] - result["rss_first_third_mb"])
        <= 0.1 * result["rss_first_third_mb"],
        "nothing left over": result["leftover_processes"] == 0 and result["leftover_threads"] == 0,
    }
