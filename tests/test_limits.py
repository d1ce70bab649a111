"""Resource limits of a hosted demo, with the real 2-D trainer behind explorer.session.Session.

Cap on concurrent runs (settable by env var), wall-clock cap per run, idle pause and idle stop,
bounded histories and frames, one torch thread per run, and no thread left after a session ends.
(tests/test_session.py checks the same mechanics with a fake trainer; here the real one runs.)
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from explorer import session as session_mod
from explorer.metrics import toy_snapshot
from explorer.session import Session
from explorer.training import ToyConfig, make_toy_trainer

ROOT = Path(__file__).resolve().parents[1]


def _cfg(**kw) -> ToyConfig:
    return ToyConfig(**{"seed": 0, "width": 16, "depth": 2, "batch_size": 32, "n_critic": 1, **kw})


def _snapshot(trainer):
    return toy_snapshot(trainer, trainer.source, n=64, grid=16)


def _session(**kw) -> Session:
    kw.setdefault("snapshot_every_s", 0.05)
    return Session(lambda: make_toy_trainer(_cfg()), _snapshot, **kw)


def _wait(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _session_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("explorer-session-") and t.is_alive()]


@pytest.fixture
def sessions():
    """Sessions made by a test; all stopped at the end, and no worker thread may survive them."""
    made: list[Session] = []
    old_cap = session_mod.max_runs()
    yield made
    for s in made:
        s.stop()
    session_mod.set_max_runs(old_cap)
    assert _wait(lambda: not _session_threads(), 10), _session_threads()


def test_cap_reached_gives_a_polite_message_and_frees_on_stop(sessions):
    session_mod.set_max_runs(2)
    a, b, c = (_session() for _ in range(3))
    sessions += [a, b, c]
    assert a.start() and b.start()
    assert session_mod.running_count() == 2
    assert c.start() is False
    assert c.state != "running" and "try again" in c.message.lower() and "Traceback" not in c.message
    a.stop()
    assert c.start(), c.message          # a slot freed by a stopped run is available again
    assert _wait(lambda: c.latest() is not None and c.latest().step > 0)


def test_paused_runs_do_not_hold_a_slot(sessions):
    session_mod.set_max_runs(1)
    a, b = _session(), _session()
    sessions += [a, b]
    assert a.start()
    a.pause()
    assert b.start(), b.message
    assert a.start() is False             # the slot is b's now: a waits politely
    assert "limit" in a.message


def test_bad_cap_is_refused():
    for bad in (0, -3):
        with pytest.raises(ValueError):
            session_mod.set_max_runs(bad)


@pytest.mark.parametrize("value, expected", [("3", 3), ("abc", None), ("-1", None), ("0", None)])
def test_cap_is_settable_by_environment(value, expected):
    code = "import explorer.session as s, os; print(s.max_runs(), min(4, max(2, os.cpu_count() or 2)))"
    env = dict(os.environ, EXPLORER_MAX_RUNS=value, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=ROOT, check=True).stdout.split()
    got, default = int(out[0]), int(out[1])
    assert got == (expected if expected is not None else default)


def test_wall_clock_cap_stops_the_run_and_keeps_its_state(sessions):
    s = _session(max_seconds=0.4)
    sessions.append(s)
    assert s.start()
    assert _wait(lambda: s.state == "stopped", 20), s.state
    assert "limit" in s.message and "Traceback" not in s.message
    assert s.run_seconds >= 0.4
    assert _wait(lambda: not s.thread.is_alive(), 5)
    assert s.latest() is not None and s.latest().step > 0
    assert s.start() is False and "Reset" in s.message   # the cap is final; Reset starts over


def test_idle_session_pauses_then_its_thread_ends(sessions):
    s = _session(idle_pause_s=0.3, idle_stop_s=1.0)
    sessions.append(s)
    assert s.start()
    assert _wait(lambda: s.state == "paused", 20), s.state
    assert "Paused" in s.message
    steps = s.latest().step   # latest() counts as a look: idle stop is then 1 s later
    time.sleep(0.3)
    assert s.latest().step == steps          # paused means no training in the background
    assert _wait(lambda: s.state == "stopped", 10), s.state
    assert _wait(lambda: not s.thread.is_alive(), 5)
    assert s.start(), s.message              # Resume brings it back with a new thread
    assert _wait(lambda: s.latest().step > steps)


def test_watched_session_keeps_running(sessions):
    s = _session(idle_pause_s=0.3)
    sessions.append(s)
    assert s.start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        s.latest()
        time.sleep(0.05)
    assert s.state == "running"


def test_stopped_sessions_leave_no_thread(sessions):
    session_mod.set_max_runs(4)
    group = [_session() for _ in range(4)]
    sessions += group
    for s in group:
        assert s.start(), s.message
    assert _wait(lambda: all(s.latest() is not None and s.latest().step > 0 for s in group))
    assert len(_session_threads()) == 4
    for s in group:
        s.stop()
    assert _wait(lambda: not _session_threads(), 10), _session_threads()
    assert session_mod.running_count() == 0


def test_reset_of_a_running_session_leaves_one_thread_at_most(sessions):
    s = _session()
    sessions.append(s)
    for _ in range(3):
        assert s.start(), s.message
        s.reset()
    assert s.start()
    assert _wait(lambda: len(_session_threads()) == 1)


def test_histories_and_frames_are_bounded(sessions):
    cfg = _cfg(history_cap=40)
    s = Session(lambda: make_toy_trainer(cfg), _snapshot, snapshot_every_s=0.0, max_frames=8, max_log=10,
                steps_per_tick=5)
    sessions.append(s)
    assert s.start()
    assert _wait(lambda: s.latest() is not None and s.latest().step >= 300, 60)
    s.pause()
    history = s.call(lambda t: list(t.history))
    assert len(history) <= 40
    assert history[-1]["step"] >= 250          # thinned, not truncated: the recent steps are there
    assert len(s.frames()) <= 8 and len(s.metrics_log()) <= 10
    assert len(s.latest().history) <= 40


def test_each_run_trains_with_one_torch_thread(sessions):
    seen: list[int] = []

    def snapshot(trainer):
        seen.append(torch.get_num_threads())
        return _snapshot(trainer)

    s = Session(lambda: make_toy_trainer(_cfg()), snapshot, snapshot_every_s=0.0)
    sessions.append(s)
    assert s.start()
    assert _wait(lambda: len(seen) >= 3)
    s.stop()
    assert seen[-1] == 1, seen
