"""Per-visitor budgets of a hosted demo: upload bytes and runs started per minute, a polite sentence when
one is spent, and the same request admitted once the minute has passed. A fake clock, no waiting.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.limits import VisitorBudget
from explorer.session import Session
from session_fakes import FakeTrainer, snap


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_upload_bytes_are_counted_once_per_file_and_forgiven_after_a_minute():
    clock = Clock()
    budget = VisitorBudget(upload_bytes=1000, runs=5, clock=clock)
    assert budget.admit_upload("a", 600) is None
    assert budget.admit_upload("a", 600) is None            # a rerun sees the same file: not counted again
    refusal = budget.admit_upload("b", 600)
    assert refusal and "minute" in refusal and "MB" in refusal and "Traceback" not in refusal
    clock.now += 59.0
    assert budget.admit_upload("b", 600) is not None         # still within the minute
    clock.now += 1.5
    assert budget.admit_upload("b", 600) is None             # the first upload has aged out


def test_runs_started_are_capped_per_minute():
    clock = Clock()
    budget = VisitorBudget(upload_bytes=1e9, runs=3, clock=clock)
    assert [budget.admit_run() for _ in range(3)] == [None, None, None]
    refusal = budget.admit_run()
    assert refusal and "3 runs in the last minute" in refusal
    clock.now += 61
    assert budget.admit_run() is None


def test_budgets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("EXPLORER_UPLOAD_MB_PER_MIN", "2")
    monkeypatch.setenv("EXPLORER_RUNS_PER_MIN", "4")
    budget = VisitorBudget.from_env()
    assert budget.upload_bytes == 2e6 and budget.runs == 4
    monkeypatch.setenv("EXPLORER_RUNS_PER_MIN", "lots")       # unreadable: the default
    assert VisitorBudget.from_env().runs == 30


class NoPool:
    """A pool that must not be asked for a worker: the budget refuses first."""

    def place(self, key=None):
        raise AssertionError("a worker was asked for a run the budget should have refused")

    def next_id(self) -> int:
        return 1


def test_a_session_over_its_visitors_budget_builds_nothing():
    session = Session(FakeTrainer, snap, pool=NoPool())
    session.budget = VisitorBudget(upload_bytes=1e9, runs=0.5, clock=Clock())
    session.budget.admit_run()                               # the visitor's one run this minute
    for verb in (session.prepare, session.start, lambda: session.step(1)):
        with pytest.raises(ValueError, match="in the last minute"):
            verb()
    session.close()


def test_the_2d_page_says_so_when_the_upload_budget_is_spent(monkeypatch):
    monkeypatch.setenv("EXPLORER_UPLOAD_MB_PER_MIN", "0.000001")    # one byte a minute
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "gan_2d.py"), default_timeout=60)
    at.query_params["dataset"] = "points"
    at.run()
    uploader = next(w for w in at.file_uploader if w.label.startswith("CSV"))
    uploader.set_value(("points.csv", b"x,y\n" + b"1,2\n" * 20, "text/csv"))
    at.run()
    assert not at.exception
    assert any("last minute" in w.value for w in at.warning), [w.value for w in at.warning]
    assert at.session_state["g2_points"] is None              # the file was not read
