"""The background run: pause, resume, hot updates, limits, divergence, and no thread left behind."""
import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from explorer import session as session_mod
from explorer.session import Session


class Diverged(RuntimeError):
    pass


@dataclass
class FakeConfig:
    lam: float = 10.0
    lr_g: float = 1e-4
    lr_c: float = 1e-4
    n_critic: int = 5
    clip: float = 0.01


@dataclass
class FakeSnapshot:
    step: int
    lam: float


class FakeTrainer:
    """Trainer-like: counts steps, records the config each step saw, can diverge at a chosen step."""

    def __init__(self, step_s: float = 0.001, diverge_at: int | None = None):
        self.cfg = FakeConfig()
        self.step_count = 0
        self.step_s = step_s
        self.diverge_at = diverge_at
        self.seen: list[tuple[int, float]] = []   # (step, lam) as each step saw it
        self.threads: set[str] = set()

    def step(self, n: int = 1) -> dict:
        self.threads.add(threading.current_thread().name)
        for _ in range(n):
            if self.diverge_at is not None and self.step_count >= self.diverge_at:
                raise Diverged(f"Training diverged at step {self.step_count}: the critic loss is nan.")
            time.sleep(self.step_s)
            self.step_count += 1
            self.seen.append((self.step_count, self.cfg.lam))
        return {"step": self.step_count}

    def update(self, **hot) -> None:
        for key, value in hot.items():
            if not hasattr(self.cfg, key):
                raise ValueError(f"unknown field {key}")
            if value < 0:
                raise ValueError(f"{key} must be >= 0")
            setattr(self.cfg, key, value)


def snap(trainer: FakeTrainer) -> FakeSnapshot:
    return FakeSnapshot(trainer.step_count, trainer.cfg.lam)


def wait_for(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@pytest.fixture
def make():
    made: list[Session] = []
    before = threading.active_count()

    def _make(trainer=None, **kw) -> Session:
        trainer = trainer or FakeTrainer()
        kw.setdefault("snapshot_every_s", 0.02)
        s = Session(lambda: trainer, snap, hot_fields=("lam", "clip", "n_critic", "lr_g", "lr_c"), **kw)
        s.fake = trainer
        made.append(s)
        return s

    yield _make
    for s in made:
        s.stop()
    for s in made:
        assert s.thread is None or not s.thread.is_alive()
    assert wait_for(lambda: threading.active_count() <= before, 2.0)
    assert session_mod.running_count() == 0


def test_start_pause_resume_stop_joins_thread(make):
    s = make()
    assert s.state == "idle" and s.latest() is None
    assert s.start()
    assert s.state == "running" and s.thread.is_alive()
    assert wait_for(lambda: s.fake.step_count > 5)
    assert s.fake.threads == {s.thread.name}          # only the worker trains
    s.pause()                                          # returns once the chunk is done
    assert s.state == "paused"
    frozen = s.fake.step_count
    time.sleep(0.2)
    assert s.fake.step_count == frozen                 # really paused
    assert s.latest().step == frozen                   # the snapshot shows where it stopped
    assert s.thread.is_alive()                         # waiting, not gone
    assert s.resume()
    assert wait_for(lambda: s.fake.step_count > frozen + 5)
    thread = s.thread
    s.stop()
    assert s.state == "stopped" and not thread.is_alive()
    assert not s.start()                               # stopped for good until Reset
    assert "Reset" in s.message


def test_hot_update_applies_at_next_step(make):
    s = make()
    s.start()
    assert wait_for(lambda: s.fake.step_count > 3)
    s.update(lam=0.5)
    assert wait_for(lambda: s.fake.seen[-1][1] == 0.5)
    first = next(i for i, (_, lam) in enumerate(s.fake.seen) if lam == 0.5)
    assert all(lam == 0.5 for _, lam in s.fake.seen[first:])   # never goes back
    assert all(lam == 10.0 for _, lam in s.fake.seen[:first])
    with pytest.raises(ValueError, match="Reset"):
        s.update(width=64)                              # not a hot field


def test_update_before_start_and_bad_value_message(make):
    s = make()
    s.update(lr_g=3e-4)                                 # before the trainer exists
    s.prepare()
    assert s.fake.cfg.lr_g == 3e-4
    s.update(lam=-1.0)                                  # the trainer refuses: a message, no crash
    assert s.fake.cfg.lam == 10.0 and "lam" in s.message


def test_manual_step_while_paused(make):
    s = make()
    snapshot = s.step(3)                                # before Start: no thread needed
    assert snapshot.step == 3 and s.latest().step == 3
    s.start()
    s.pause()
    before = s.fake.step_count
    snapshot = s.step(2)
    assert snapshot.step == before + 2 == s.fake.step_count
    assert s.state == "paused"


def test_still_snapshots_after_manual_step_and_pause(make):
    """The snapshot a user reads at rest (manual step, pause) comes from still_snapshot_fn."""
    still: list[int] = []

    def still_snap(trainer: FakeTrainer) -> FakeSnapshot:
        still.append(trainer.step_count)
        return FakeSnapshot(trainer.step_count, -1.0)

    s = make(still_snapshot_fn=still_snap)
    assert s.step(3).lam == -1.0 and still == [3]
    s.start()
    assert wait_for(lambda: s.latest().step > 3)
    assert s.latest().lam == 10.0                       # live snapshots use snapshot_fn
    s.pause()
    assert s.latest().lam == -1.0 and s.latest().step == s.fake.step_count == still[-1]


def test_call_runs_on_worker_between_chunks(make):
    s = make()
    s.start()
    result = s.call(lambda t: (threading.current_thread().name, t.step_count))
    assert result[0] == s.thread.name


def test_concurrency_cap_is_polite(make):
    old = session_mod.max_runs()
    session_mod.set_max_runs(1)
    try:
        a, b = make(), make()
        assert a.start()
        assert not b.start()
        assert b.state == "idle" and b.thread is None
        assert "limit" in b.message and "try again" in b.message
        a.pause()                                       # frees the slot
        assert b.start()
        assert not a.resume()
        assert session_mod.running_count() == 1
    finally:
        session_mod.set_max_runs(old)
    with pytest.raises(ValueError):
        session_mod.set_max_runs(0)


def test_wall_clock_cap_stops_the_run(make):
    s = make(max_seconds=0.15)
    s.start()
    assert wait_for(lambda: s.state == "stopped", 3.0)
    assert "limit" in s.message
    assert not s.thread.is_alive()
    assert 0.15 <= s.run_seconds < 1.0
    assert not s.start()


def test_idle_pause_then_thread_ends(make):
    s = make(idle_pause_s=0.2, idle_stop_s=0.6)
    s.start()
    assert wait_for(lambda: s.state == "paused", 3.0)
    assert "nobody" in s.message
    steps = s.fake.step_count
    assert wait_for(lambda: not s.thread.is_alive(), 3.0)
    assert s.state == "stopped" and s.fake.step_count == steps
    assert s.resume() and s.thread.is_alive()          # an idle stop can be resumed
    assert wait_for(lambda: s.fake.step_count > steps)


def test_polling_keeps_it_running(make):
    s = make(idle_pause_s=0.2)
    s.start()
    end = time.monotonic() + 0.6
    while time.monotonic() < end:
        s.latest()
        time.sleep(0.05)
    assert s.state == "running"


def test_diverged_keeps_last_good_snapshot(make):
    s = make(FakeTrainer(diverge_at=20), steps_per_tick=1)
    s.start()
    assert wait_for(lambda: s.state == "error", 3.0)
    assert "diverged at step 20" in s.message
    assert s.latest() is not None and s.latest().step <= 20
    assert not s.thread.is_alive()
    assert not s.start() and s.state == "error"
    s.reset()
    assert s.state == "idle" and s.latest() is None


def test_slow_snapshots_are_taken_less_often(make):
    calls = []

    def slow_snap(trainer):
        calls.append(time.monotonic())
        time.sleep(0.05)
        return snap(trainer)
    trainer = FakeTrainer()
    s = Session(lambda: trainer, slow_snap, snapshot_every_s=0.01, snapshot_share=0.1)
    try:
        s.start()
        time.sleep(1.2)
        s.pause()
    finally:
        s.stop()
    gaps = np.diff(calls[1:-1])                        # between snapshots taken while training
    assert len(gaps) >= 1 and gaps.min() >= 0.45       # 50 ms each: at most 10% of the time
    assert trainer.step_count > 100                    # training went on meanwhile


def test_factory_error_reaches_caller(make):
    def bad():
        raise ValueError("The CSV has no rows.")
    s = Session(bad, snap)
    with pytest.raises(ValueError, match="no rows"):
        s.start()
    assert s.state == "idle" and s.thread is None


def test_frames_are_bounded_and_spread(make):
    s = make(max_frames=8, steps_per_tick=1)
    s.start()
    assert wait_for(lambda: s.fake.step_count > 200, 5.0)
    s.pause()
    frames = s.frames()
    assert 2 <= len(frames) <= 8
    steps = [f.step for f in frames]
    assert steps == sorted(steps) and steps[0] == 0
    assert steps[-1] > 100                              # covers the whole run, not just the start


def test_reset_builds_a_fresh_trainer(make):
    trainers = []

    def factory():
        trainers.append(FakeTrainer())
        return trainers[-1]
    s = Session(factory, snap, snapshot_every_s=0.02)
    try:
        s.start()
        assert wait_for(lambda: trainers[0].step_count > 2)
        s.reset()
        assert s.state == "idle" and len(trainers) == 1
        s.step(1)
        assert len(trainers) == 2 and s.latest().step == 1
    finally:
        s.stop()
    assert not math.isnan(s.run_seconds)
