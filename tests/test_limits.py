"""Resource limits of a hosted demo, with the real 2-D trainer in a worker behind Session.

Cap on concurrent runs (settable by env var), wall-clock cap per run, idle pause and release,
bounded histories and frames, one torch thread per worker, and no process or thread left after the
sessions end. (tests/test_session.py checks the same mechanics with a fake trainer.)
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from functools import partial
from operator import attrgetter
from pathlib import Path

import pytest
import torch

from explorer import limits
from explorer import session as session_mod
from explorer.pool import Pool
from explorer.session import Session
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot
from session_fakes import wait_for

ROOT = Path(__file__).resolve().parents[1]
_snapshot = partial(toy_snapshot, n=64, grid=16)


def _cfg(**kw) -> ToyConfig:
    return ToyConfig(**{"seed": 0, "width": 16, "depth": 2, "batch_size": 32, "n_critic": 1, **kw})


@pytest.fixture(scope="module")
def pool():
    p = Pool(size=2)
    yield p
    p.shutdown()


def _wait(predicate, timeout: float = 20.0) -> bool:
    return wait_for(predicate, timeout)


@pytest.fixture
def sessions(pool):
    """Sessions made by a test (with _session); all closed at the end, and none may leave a thread."""
    made: list[Session] = []
    old_cap = session_mod.max_runs()
    threads = _other_threads()

    def _session(cfg: ToyConfig | None = None, **kw) -> Session:
        kw.setdefault("snapshot_every_s", 0.05)
        s = Session(partial(make_toy_trainer, cfg or _cfg()), _snapshot, pool=pool, **kw)
        made.append(s)
        return s

    yield _session
    for s in made:
        s.close()
    session_mod.set_max_runs(old_cap)
    assert session_mod.running_count() == 0 and session_mod.queued_count() == 0
    assert _other_threads() <= threads            # sessions have no threads of their own


def _other_threads() -> int:
    """Threads beyond the pool's readers (one per worker) and the idle watchdog."""
    return sum(not t.name.startswith(("explorer-pool-reader", "explorer-idle-watch")) for t in threading.enumerate())


def test_beyond_the_cap_a_run_queues_and_starts_when_a_run_stops(sessions):
    session_mod.set_max_runs(2)
    a, b, c = (sessions() for _ in range(3))
    assert a.start() and b.start()
    assert session_mod.running_count() == 2
    assert c.start()                      # not refused: it waits its turn
    assert c.state == "queued" and c.queue_place == 1
    assert "queue" in c.message.lower() and "Traceback" not in c.message
    a.stop()                              # a slot freed by a stopped run goes to the queue
    assert _wait(lambda: c.state == "running", 10), c.state
    assert _wait(lambda: c.latest() is not None and c.latest().step > 0)


def test_paused_runs_do_not_hold_a_slot(sessions):
    session_mod.set_max_runs(1)
    a, b = sessions(), sessions()
    assert a.start()
    a.pause()
    assert b.start() and b.state == "running", b.message
    assert a.start() and a.state == "queued"   # the slot is b's now: a waits its turn
    assert "next in line" in a.message


def test_the_default_cap_comes_from_memory():
    assert limits.default_max_runs(0) == limits.MIN_RUNS               # a tiny box still trains two
    assert limits.default_max_runs(10 * limits.RUN_BUDGET_MB) == 10
    assert limits.default_max_runs(1e9) == limits.MAX_RUNS_CLAMP
    assert limits.available_mb("/no/such/file") is None


def test_bad_cap_is_refused():
    for bad in (0, -3):
        with pytest.raises(ValueError):
            session_mod.set_max_runs(bad)


@pytest.mark.parametrize("value, expected", [("3", 3), ("abc", None), ("-1", None), ("0", None)])
def test_cap_is_settable_by_environment(value, expected):
    code = "import explorer.session as s, explorer.limits as l; print(s.max_runs(), l.default_max_runs())"
    env = dict(os.environ, EXPLORER_MAX_RUNS=value, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=ROOT, check=True).stdout.split()
    got, default = int(out[0]), int(out[1])
    assert got == (expected if expected is not None else default)


def test_wall_clock_cap_stops_the_run_and_keeps_its_state(sessions):
    s = sessions(max_seconds=0.4)
    assert s.start()
    assert _wait(lambda: s.state == "stopped", 20), s.state
    assert "limit" in s.message and "Traceback" not in s.message
    assert s.run_seconds >= 0.4
    assert s.latest() is not None and s.latest().step > 0
    assert s.call(attrgetter("step_count")) == s.latest().step   # kept in its worker for a download
    assert s.start() is False and "Reset" in s.message   # the cap is final; Reset starts over


def test_idle_session_pauses_then_is_released(sessions):
    s = sessions(idle_pause_s=0.3, idle_stop_s=1.0)
    assert s.start()
    assert _wait(lambda: s.state == "paused", 20), s.state
    assert "Paused" in s.message
    steps = s.latest().step   # latest() counts as a look: the release is then 1 s later
    time.sleep(0.3)
    assert s.latest().step == steps          # paused means no training in the background
    assert _wait(lambda: s.state == "stopped", 10), s.state
    assert "Released" in s.message and s.worker_pid is None
    assert not s.start() and "Reset" in s.message
    s.reset()                                # Reset starts a fresh run
    assert s.start(), s.message
    assert _wait(lambda: s.latest().step > 0)


def test_watched_session_keeps_running(sessions):
    s = sessions(idle_pause_s=0.3)
    assert s.start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        s.latest()
        time.sleep(0.05)
    assert s.state == "running"


def test_closed_sessions_leave_no_run_in_the_workers(sessions, pool):
    session_mod.set_max_runs(4)
    group = [sessions() for _ in range(4)]
    for s in group:
        assert s.start(), s.message
    assert _wait(lambda: all(s.latest() is not None and s.latest().step > 0 for s in group))
    assert sum(link.load() for link in pool._links if link is not None) == 4
    for s in group:
        s.close()
    assert sum(link.load() for link in pool._links if link is not None) == 0
    assert session_mod.running_count() == 0


def test_reset_of_a_running_session_keeps_one_run(sessions, pool):
    s = sessions()
    for _ in range(3):
        assert s.start(), s.message
        s.reset()
    assert s.start()
    assert sum(link.load() for link in pool._links if link is not None) == 1


def test_histories_and_frames_are_bounded(sessions):
    s = sessions(_cfg(history_cap=40), snapshot_every_s=0.0, max_frames=8, max_log=10, steps_per_tick=5)
    assert s.start()
    assert _wait(lambda: s.latest() is not None and s.latest().step >= 300, 60)
    s.pause()
    history = s.call(attrgetter("history"))
    assert len(history) <= 40
    assert history[-1]["step"] >= 250          # thinned, not truncated: the recent steps are there
    assert len(s.frames()) <= 8 and len(s.metrics_log()) <= 10
    assert len(s.latest().history) <= 40


def test_each_run_trains_with_one_torch_thread(sessions):
    s = sessions()
    assert s.start()
    assert s.call(threads_of) == 1


def threads_of(trainer) -> int:
    return torch.get_num_threads()
