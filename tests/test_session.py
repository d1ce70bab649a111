"""A page's handle on a run in a worker process: pause, resume, hot updates, limits, divergence.

The trainer is a fake (tests/session_fakes.py) that lives in the worker; the test reads its state
back with `call`, as a page would. The worker is a local process or a Ray actor (explorer/ray_runs.py):
every test runs on both.
"""
import math
import os
import time
from functools import partial
from operator import attrgetter

import numpy as np
import pytest

from explorer import session as session_mod
from explorer.session import Session
from session_fakes import (
    FakeTrainer,
    ViewTrainer,
    bad_factory,
    broken_view_snap,
    built_at,
    counted_snap,
    measured_every_4,
    seen,
    slow_snap,
    snap,
    snapshots_taken,
    steps_and_pid,
    still_snap,
    view_snap,
    wait_for,
)

HOT = ("lam", "clip", "n_critic", "lr_g", "lr_c")


def cfg_field(name: str):
    """A function that pickles and reads trainer.cfg.<name> in the worker."""
    return attrgetter(f"cfg.{name}")


def gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()


@pytest.fixture(scope="module", params=["local", "ray"])
def pool(request, pool_on):
    """Every test here runs on both backends: local worker processes and Ray actors."""
    p = pool_on(request.param)
    yield p
    pids = p.pids()
    p.shutdown()
    assert wait_for(lambda: all(gone(pid) for pid in pids), 10.0)   # nothing left behind


@pytest.fixture
def make(pool):
    made: list[Session] = []

    def _make(factory=FakeTrainer, snapshot_fn=snap, **kw) -> Session:
        kw.setdefault("snapshot_every_s", 0.02)
        s = Session(factory, snapshot_fn, hot_fields=HOT, pool=pool, **kw)
        made.append(s)
        return s

    yield _make
    for s in made:
        s.close()
    assert session_mod.running_count() == 0 and session_mod.queued_count() == 0


def steps(s: Session) -> int:
    return s.call(steps_and_pid)[0]


def test_start_pause_resume_stop(make):
    s = make()
    assert s.state == "idle" and s.latest() is None
    assert s.start()
    assert s.state == "running"
    assert wait_for(lambda: s.latest().step > 5)
    assert s.latest().pid == s.worker_pid != os.getpid()    # trained in a worker process
    s.pause()                                                # returns once the worker has stopped
    assert s.state == "paused"
    frozen = steps(s)
    time.sleep(0.2)
    assert steps(s) == frozen                                # really paused
    assert s.latest().step == frozen                         # the snapshot shows where it stopped
    assert s.resume()
    assert wait_for(lambda: s.latest().step > frozen + 5)
    s.stop()
    assert s.state == "stopped"
    stopped = steps(s)                                       # the trainer stays for a checkpoint
    time.sleep(0.1)
    assert steps(s) == stopped
    assert not s.start()                                     # stopped for good until Reset
    assert "Reset" in s.message


def test_a_live_view_can_wait_for_a_snapshot_it_has_not_drawn(make):
    s = make(snapshot_every_s=0.3)
    s.start()
    assert wait_for(lambda: s.latest() is not None)
    drawn = s.latest()
    newer = s.latest(newer_than=drawn, wait_s=5.0)      # snapshots come every 0.3 s: waits for the next
    assert newer is not drawn and newer.step > drawn.step
    s.pause()
    paused = s.latest()
    start = time.monotonic()
    assert s.latest(newer_than=paused, wait_s=5.0) is paused   # not training: nothing to wait for
    assert time.monotonic() - start < 1.0


def test_snapshots_follow_demand(make):
    """The worker takes a snapshot when latest() has returned the last one (a page drew it), every
    snapshot_every_s at most; unread, one every unwatched_every_s (2 s), so frames still fill."""
    s = make(snapshot_fn=counted_snap, snapshot_every_s=0.05)
    s.start()
    assert wait_for(lambda: s.latest() is not None and s.latest().step > 0)
    before = s.call(snapshots_taken)
    time.sleep(1.5)                                     # nobody reads: at most one more
    unread = s.call(snapshots_taken) - before
    assert unread <= 1, unread
    drawn, start, draws = s.latest(), time.monotonic(), 0
    while time.monotonic() - start < 1.5:               # a live view: each draw asks for the next
        newer = s.latest(newer_than=drawn, wait_s=0.5)
        draws += newer is not drawn
        drawn = newer
    assert draws >= 5, draws                            # ~every 0.05 s plus a chunk (0.1 s), not every 2 s


def test_a_trainer_with_a_view_is_drawn_while_it_trains_on(make):
    """Its snapshots come from the worker's snapshot thread: training goes on while one is drawn,
    and the still snapshot of a pause is the last to arrive (no live frame of an earlier step after it)."""
    s = make(ViewTrainer, view_snap, still_snapshot_fn=still_snap, snapshot_every_s=0.05, snapshot_share=0.9)
    s.start()
    drawn, ahead = s.latest(), []
    while len(ahead) < 5:
        drawn = s.latest(newer_than=drawn, wait_s=2.0)
        if drawn.lam >= 0 and drawn.step > 0:
            ahead.append(drawn.lam - drawn.step)   # steps the run made while its frame was drawn
    assert min(ahead) > 0, ahead
    s.pause()
    time.sleep(0.3)
    last = s.latest()
    assert last.lam == -1.0 and last.step == steps(s)   # the still snapshot, at the step it stopped


def test_a_snapshot_that_fails_in_the_thread_ends_the_run_with_its_message(make):
    s = make(ViewTrainer, broken_view_snap, snapshot_every_s=0.02)
    s.start()
    assert wait_for(lambda: s.state == "error", timeout=10)
    assert "could not draw this frame" in s.message


def test_hot_update_applies_at_next_step(make):
    s = make()
    s.start()
    assert wait_for(lambda: s.latest().step > 3)
    s.update(lam=0.5)
    assert wait_for(lambda: s.latest().lam == 0.5)
    history = s.call(seen)
    first = next(i for i, (_, lam) in enumerate(history) if lam == 0.5)
    assert all(lam == 0.5 for _, lam in history[first:])    # never goes back
    assert all(lam == 10.0 for _, lam in history[:first])
    with pytest.raises(ValueError, match="Reset"):
        s.update(width=64)                                   # not a hot field


def test_update_before_start_and_bad_value_message(make):
    s = make()
    s.update(lr_g=3e-4)                                      # before the trainer exists
    s.prepare()
    assert s.call(cfg_field("lr_g")) == 3e-4
    s.update(lam=-1.0)                                       # the trainer refuses: a message, no crash
    assert wait_for(lambda: "lam" in s.message)
    assert s.call(cfg_field("lam")) == 10.0


def test_manual_step_while_paused(make):
    s = make()
    snapshot = s.step(3)                                     # before Start
    assert snapshot.step == 3 and s.latest().step == 3
    s.start()
    s.pause()
    before = steps(s)
    snapshot = s.step(2)
    assert snapshot.step == before + 2 == steps(s)
    assert s.state == "paused"


def test_still_snapshots_after_manual_step_and_pause(make):
    """The snapshot a user reads at rest (manual step, pause) comes from still_snapshot_fn."""
    s = make(still_snapshot_fn=still_snap)
    assert s.step(3).lam == -1.0
    s.start()
    assert wait_for(lambda: s.latest().step > 3 and s.latest().lam == 10.0)   # live: snapshot_fn
    s.pause()
    assert s.latest().lam == -1.0 and s.latest().step == steps(s)


def test_call_runs_in_the_worker(make):
    s = make()
    s.start()
    count, pid = s.call(steps_and_pid)
    assert pid == s.worker_pid != os.getpid() and count >= 0


def test_beyond_the_cap_a_start_waits_its_turn(make):
    """With one slot, later starts queue (first come, first served), say where they stand and start by themselves."""
    old = session_mod.max_runs()
    session_mod.set_max_runs(1)
    try:
        a, b, c = make(), make(), make()
        assert a.start()
        assert b.start() and c.start()                       # not refused: queued
        assert (b.state, b.queue_place, c.state, c.queue_place) == ("queued", 1, "queued", 2)
        assert "next in line" in b.message and "number 2 in the queue" in c.message
        assert "try again" not in b.message
        assert 0 <= b.wait_estimate_s() <= a.max_seconds < c.wait_estimate_s()   # c waits for a and for b
        a.pause()                                            # frees the slot: b starts by itself
        assert wait_for(lambda: b.state == "running", 5.0)
        assert wait_for(lambda: b.latest().step > 5)
        assert c.state == "queued" and c.queue_place == 1
        assert a.resume() and a.state == "queued" and a.queue_place == 2   # behind c
        b.close()                                            # a closed run frees its slot too
        assert wait_for(lambda: c.state == "running", 5.0)
        assert a.state == "queued" and a.queue_place == 1
        assert session_mod.running_count() == 1
    finally:
        session_mod.set_max_runs(old)
    with pytest.raises(ValueError):
        session_mod.set_max_runs(0)


def test_pausing_or_closing_a_queued_run_leaves_the_queue(make):
    old = session_mod.max_runs()
    session_mod.set_max_runs(1)
    try:
        a, b, c = make(), make(), make()
        a.start(), b.start(), c.start()
        b.pause()                                            # leaves the queue, back where it was
        assert b.state == "idle" and b.message == "" and c.queue_place == 1
        c.close()                                            # a closed tab's queued run leaves it too
        assert session_mod.queued_count() == 0 and c.state == "stopped"
        b.start()
        b.reset()                                            # and so does a reset
        assert session_mod.queued_count() == 0 and b.state == "idle"
        a.pause()
        time.sleep(0.5)
        assert (b.state, c.state) == ("idle", "stopped")    # nobody left in the queue to start
    finally:
        session_mod.set_max_runs(old)


def test_a_queued_run_nobody_looks_at_leaves_the_queue(make):
    old = session_mod.max_runs()
    session_mod.set_max_runs(1)
    try:
        a, b = make(), make(idle_pause_s=0.3)
        a.start()
        b.start()
        assert b.state == "queued"
        assert wait_for(lambda: b.state == "idle", 5.0)     # the tab was closed without a goodbye
        assert "Left the queue" in b.message and session_mod.queued_count() == 0
    finally:
        session_mod.set_max_runs(old)


def test_wall_clock_cap_stops_the_run(make):
    s = make(max_seconds=0.15)
    s.start()
    assert wait_for(lambda: s.state == "stopped", 5.0)
    assert "limit" in s.message
    assert 0.15 <= s.run_seconds < 1.0
    assert not s.start()
    assert steps(s) > 0                                      # the trainer is kept for a download


def test_idle_pause_then_release(make):
    s = make(idle_pause_s=0.2, idle_stop_s=0.6)
    s.start()
    assert wait_for(lambda: s.state == "paused", 5.0)
    assert "nobody" in s.message
    assert wait_for(lambda: s.state == "stopped", 5.0)
    assert "Released" in s.message and s.worker_pid is None   # its worker let go of it
    assert s.latest().step > 0                                # the last picture stays
    assert not s.resume()


def test_polling_keeps_it_running(make):
    s = make(idle_pause_s=0.2)
    s.start()
    end = time.monotonic() + 0.6
    while time.monotonic() < end:
        s.latest()
        time.sleep(0.05)
    assert s.state == "running"


def test_diverged_keeps_last_good_snapshot(make):
    s = make(partial(FakeTrainer, diverge_at=20), steps_per_tick=1)
    s.start()
    assert wait_for(lambda: s.state == "error", 5.0)
    assert "diverged at step 20" in s.message
    assert s.latest() is not None and s.latest().step <= 20
    assert not s.start() and s.state == "error"
    s.reset()
    assert s.state == "idle" and s.latest() is None


def test_one_slow_snapshot_does_not_hold_back_the_frames_after_it():
    """A snapshot that measured the numbers (5-10x a frame) is one of the recent costs, not the pace."""
    from explorer.worker import Run
    run = Run(1, FakeTrainer(), snap, snap, {"snapshot_every_s": 0.3, "snapshot_share": 0.1})
    run.snapshot_costs.extend([0.012, 0.011, 0.25, 0.013])
    assert run.training_between_snapshots() == pytest.approx(0.0125 * 9)   # the median, not the slow one
    assert run.snapshot_due(now=0.3, trained=0.2)            # the clock's 0.3 s paces it
    run.snapshot_costs.extend([0.2, 0.2, 0.2])              # slow for good: rarer
    assert run.training_between_snapshots() == pytest.approx(1.8)


def test_a_run_that_takes_turns_takes_its_snapshots_by_its_own_training_time():
    """Six runs taking turns in one worker: each trains a sixth of the time, and its snapshots (share
    0.1) come after 0.9 s of its own training, not after 1 s of the clock, so that all six together
    spend a tenth of the worker's time drawing, not six tenths."""
    from explorer.worker import Run
    run = Run(1, FakeTrainer(), snap, snap, {"snapshot_every_s": 0.3, "snapshot_share": 0.1})
    run.snapshot_costs.extend([0.1, 0.1, 0.1])
    run.last_snapshot_t, run.trained_at_snapshot = 100.0, 5.0
    assert not run.snapshot_due(now=106.0, trained=5.0 + 6.0 / 6 - 0.2)   # 6 s of the clock, 0.8 s its own
    assert run.snapshot_due(now=106.0, trained=5.0 + 0.9)
    assert not run.snapshot_due(now=100.2, trained=5.0 + 0.9)             # and never more often than 0.3 s


def test_slow_snapshots_are_taken_less_often(make):
    s = make(snapshot_fn=slow_snap, snapshot_every_s=0.01, snapshot_share=0.1)
    times = []
    s.start()
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        snapshot = s.latest()
        if snapshot is not None and (not times or times[-1] != snapshot.lam):
            times.append(snapshot.lam)
        time.sleep(0.005)
    s.pause()
    gaps = np.diff(times[1:])                                # between snapshots taken while training
    assert len(gaps) >= 1 and gaps.min() >= 0.45             # 50 ms each: at most 10% of the time
    assert steps(s) > 100                                    # training went on meanwhile


def test_factory_error_reaches_caller(make):
    s = make(bad_factory)
    with pytest.raises(ValueError, match="no rows"):
        s.start()
    assert s.state == "idle" and s.worker_pid is None


def test_frames_are_bounded_and_spread(make):
    s = make(max_frames=8, steps_per_tick=1)
    s.start()
    assert wait_for(lambda: s.latest().step > 200, 10.0)
    s.pause()
    frames = s.frames()
    assert 2 <= len(frames) <= 8
    at = [f.step for f in frames]
    assert at == sorted(at) and at[0] == 0
    assert at[-1] > 100                                      # covers the whole run, not just the start


def test_reset_builds_a_fresh_trainer(make):
    s = make()
    s.start()
    assert wait_for(lambda: s.latest().step > 2)
    first = s.call(built_at)
    s.reset()
    assert s.state == "idle" and s.latest() is None
    s.step(1)
    assert s.latest().step == 1 and s.call(built_at) > first
    assert not math.isnan(s.run_seconds)


def test_steps_per_s_is_measured_while_running(make):
    s = make(partial(FakeTrainer, step_s=0.002))
    s.start()
    assert wait_for(lambda: s.steps_per_s > 0, 5.0)
    assert 50 < s.steps_per_s < 600                          # 2 ms a step: at most 500 steps/s
    s.pause()
    assert s.steps_per_s == 0


def test_numbers_measured_at_an_earlier_step_are_logged_once_there(make):
    s = make(snapshot_fn=measured_every_4)
    for _ in range(12):
        s.step(1)
    log = s.metrics_log()
    assert [r["step"] for r in log] == [0, 4, 8, 12]   # not one record per snapshot, nor at the snapshot's step
    assert all(r["at"] == r["step"] for r in log)
