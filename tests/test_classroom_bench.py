"""The classroom load test's pure parts (bench/classroom_figures.py, bench/page_client.py): no server."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from streamlit.proto.Element_pb2 import Element

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from classroom import classroom  # noqa: E402
from classroom_figures import p95, rate_in, thirds, verdicts  # noqa: E402
from page_client import REFUSAL, parse_step, runs_on_box  # noqa: E402


def test_p95_is_the_nearest_rank():
    assert p95(list(range(1, 101))) == 95
    assert p95([3.0, 1.0, 2.0]) == 3.0          # under 20 loads: the worst one
    assert p95([0.5] * 19 + [9.0]) == 0.5       # one slow load in 20 is the 5% left out
    assert math.isnan(p95([]))


def test_thirds_compare_the_first_and_last_third():
    assert thirds([1, 1, 1, 5, 5, 5, 2, 2, 2]) == (1, 2)
    assert thirds([4.0, 8.0]) == (4.0, 8.0)     # fewer than three samples: one each


def test_rate_counts_only_the_window():
    steps = [(0.0, 0), (1.0, 10), (3.0, 30), (9.0, 99)]
    assert rate_in(steps, 0.5, 5.0) == pytest.approx(10.0)
    assert rate_in(steps, 4.0, 8.0) == 0.0      # never seen to move in the window: not training for them
    assert rate_in([], 0.0, 1.0) == 0.0


def test_step_counters_of_both_pages():
    metric = Element()
    metric.metric.label, metric.metric.body = "Generator step", "12,345"
    assert parse_step(metric) == 12345
    other = Element()
    other.metric.label, other.metric.body = "Exact W1 (generated vs real)", "0.12"
    assert parse_step(other) is None
    compare = Element()
    compare.markdown.body = "**Step 1,024** · running · 12 runs share this box; this one: 9 steps/s · 3 s"
    assert parse_step(compare) == 1024


def test_what_the_pages_say_about_the_box():
    assert runs_on_box("running · 12 runs share this box; this one: 9 steps/s") == 12
    assert runs_on_box("running · the only run on this box; this one: 80 steps/s") == 1
    assert runs_on_box("paused · 3 s of training") is None
    assert REFUSAL.search("Queued: 4 runs are training, this box's limit. Your run is next in line")
    assert REFUSAL.search("You have started 30 runs in the last minute, this demo's limit per visitor; please wait")
    assert not REFUSAL.search("Shared with 9 other visitors: the same settings, so the same run")


def test_the_class_is_the_issues_mix():
    plan = classroom(30, 10, ramp_s=10.0)
    names = [name for name, *_ in plan]
    assert names.count("2-D defaults") == 10 and names.count("Compare preset") == 10
    assert len({n for n in names if n.startswith("2-D seed")}) == 10           # a seed each
    assert [delay for *_, delay in plan] == sorted(delay for *_, delay in plan) and plan[-1][3] < 10.0
    assert names[:3] == ["2-D defaults", "Compare preset", "2-D seed 101"]     # the kinds interleaved


def test_verdicts_name_each_target():
    good = {"render_p95_ratio": 1.2, "refused": 0, "runs_computing": 12, "distinct_keys": 12,
            "min_private_steps_per_s": 8.0, "lone_steps_per_s": 80.0, "rss_first_third_mb": 1000.0,
            "rss_last_third_mb": 1099.0, "leftover_processes": 0, "leftover_threads": 0}
    assert all(verdicts(good).values())
    bad = verdicts({**good, "min_private_steps_per_s": 7.9, "rss_last_third_mb": 1101.0})
    assert [k for k, ok in bad.items() if not ok] == ["every private run >= 1/10 of a lone run",
                                                      "RSS last third within 10% of the first"]
