"""Shared runs: sessions that start the same key watch one run, trained once; whoever changes it gets
a private copy at its current step, and nobody changes another visitor's run. The trainers are
fakes (tests/session_fakes.py) but one, a real 2-D run that must continue bit for bit."""
import time
from functools import partial
from operator import attrgetter

import pytest

from explorer import session as session_mod
from explorer import shared_runs
from explorer.pool import Pool
from explorer.run_key import run_key
from explorer.session import Session
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot
from session_fakes import FakeTrainer, closure_trainer, lam_of, metric_snap, seen, steps_and_pid, wait_for

HOT = ("lam", "clip", "n_critic", "lr_g", "lr_c")
TINY = ToyConfig(width=16, depth=1, batch_size=32, n_critic=1, seed=3)


@pytest.fixture
def make(pool):
    made: list[Session] = []

    def _make(key: str | None = "same", factory=FakeTrainer, snapshot_fn=metric_snap, **kw) -> Session:
        kw.setdefault("snapshot_every_s", 0.02)
        s = Session(factory, snapshot_fn, hot_fields=HOT, pool=pool, key=key, **kw)
        made.append(s)
        return s

    yield _make
    for s in made:
        s.close()
    assert session_mod.running_count() == 0 and session_mod.queued_count() == 0
    assert shared_runs.listed_count() == 0
    assert wait_for(lambda: pool.held_runs() == {})            # every run released from its worker


def computing(pool: Pool) -> int:
    """Runs the workers are training right now, as the workers count them."""
    return sum(state == "running" for state in pool.held_runs().values())


def steps(s: Session) -> int:
    return s.call(steps_and_pid)[0]


def test_the_same_key_is_trained_once_and_both_see_the_same_run(make, pool):
    a, b = make(), make()
    a.prepare(), b.prepare()                                  # as a page does: each shows its step 0
    assert a.start()
    assert wait_for(lambda: a.latest().step > 10)
    assert b.start() and b.state == "running"
    assert a.shared_with == b.shared_with == 1
    assert wait_for(lambda: len(pool.held_runs()) == 1)       # b's own step-0 trainer was let go
    assert computing(pool) == 1 and session_mod.running_count() == 1
    assert b.worker_pid == a.worker_pid and b.call(steps_and_pid)[1] == a.worker_pid
    joined_at = b.latest().step
    assert wait_for(lambda: b.latest().step > joined_at)      # new snapshots reach b too
    assert wait_for(lambda: a.latest() is b.latest())         # the very same snapshots
    assert wait_for(lambda: [f.step for f in a.frames()] == [f.step for f in b.frames()])
    assert b.frames()[0].step == 0                            # what was kept before b came
    assert wait_for(lambda: a.metrics_log() == b.metrics_log())
    assert b.metrics_log()[0]["step"] <= 10


def test_other_keys_and_no_key_train_apart(make, pool):
    runs = [make("one"), make("two"), make(None), make(None)]
    for s in runs:
        assert s.start()
    assert all(s.shared_with == 0 for s in runs)
    assert computing(pool) == 4 == session_mod.running_count()


def test_a_shared_run_takes_one_slot_and_joining_never_queues(make):
    old = session_mod.max_runs()
    session_mod.set_max_runs(1)
    try:
        a, b, c = make(), make(), make("other")
        assert a.start() and b.start()
        assert (a.state, b.state) == ("running", "running") and session_mod.running_count() == 1
        assert c.start() and c.state == "queued"               # another key needs a slot of its own
        b.close()
        assert a.state == "running" and c.state == "queued"    # a's run still holds its one slot
        a.close()
        assert wait_for(lambda: c.state == "running", 5.0)
    finally:
        session_mod.set_max_runs(old)


def test_a_hot_change_forks_a_private_copy_and_the_others_run_goes_on(make, pool):
    a, b = make(), make()
    a.start(), b.start()
    assert wait_for(lambda: a.latest().step > 10)
    b.update(lam=0.5)
    assert b.state == "running" and b.shared_with == 0 == a.shared_with and b.run_key is None
    assert computing(pool) == 2
    assert a.call(lam_of) == 10.0 and b.call(lam_of) == 0.5
    assert wait_for(lambda: b.latest().lam == 0.5 and steps(b) > 0)
    mine, theirs = b.call(seen), a.call(seen)
    k = next(i for i, (_, lam) in enumerate(mine) if lam == 0.5)
    assert k > 10 and mine[:k] == theirs[:k]                  # the copy has the run's whole history
    assert all(lam == 10.0 for _, lam in a.call(seen))        # and the run never saw the change
    c = make()
    assert c.start() and c.shared_with == 1 and c.call(lam_of) == 10.0   # a later Start joins the listed run


def test_a_training_copy_goes_to_the_worker_with_fewer_runs_training(make, pool):
    a, b, c = make(), make(), make(None)
    assert a.start()
    c.prepare()                                              # another worker is up, with no run training
    assert c.worker_pid != a.worker_pid
    assert wait_for(lambda: a.latest().step > 10)
    b.start()
    b.update(lam=0.5)                                        # b's copy trains: not beside a
    assert b.state == "running" and b.worker_pid != a.worker_pid
    assert a.call(lam_of) == 10.0 and b.call(lam_of) == 0.5
    assert wait_for(lambda: b.latest().lam == 0.5 and steps(b) > 0)
    mine, theirs = b.call(seen), a.call(seen)
    k = next(i for i, (_, lam) in enumerate(mine) if lam == 0.5)
    assert k > 10 and mine[:k] == theirs[:k]                  # exported with its whole history
    b.pause()                                                # its own copy now: it pauses, a goes on
    assert b.state == "paused" and b.worker_pid != a.worker_pid and a.state == "running"


def test_pause_and_step_fork_at_the_current_step(make):
    a, b = make(), make()
    a.start(), b.start()
    assert wait_for(lambda: a.latest().step > 10)
    b.pause()
    assert (a.state, b.state) == ("running", "paused") and not b.message
    at = steps(b)
    assert b.latest().step == at                              # drawn at exactly the step it was copied at
    time.sleep(0.2)
    assert steps(b) == at and steps(a) > at                   # the copy waits, the run goes on
    assert a.call(seen)[:at] == b.call(seen)
    b.step(3)
    assert steps(b) == at + 3 and b.state == "paused" and a.state == "running"
    d = make()
    assert d.start() and d.shared_with == 1
    d.step(2)                                                 # a step by hand while it trains: a copy too
    assert d.shared_with == 0 and a.shared_with == 0 and a.call(lam_of) == 10.0


def test_nobody_can_change_another_visitors_run(make):
    a, b = make(), make()
    a.start(), b.start()
    b.update(lam=0.5)
    b.update(lam=0.25, n_critic=2)
    b.pause()
    b.step(2)
    b.stop()
    b.reset()
    assert a.state == "running" and a.call(lam_of) == 10.0 and a.call(attrgetter("cfg.n_critic")) == 5
    before = steps(a)
    assert wait_for(lambda: steps(a) > before + 5)


def test_closing_one_watchers_tab_leaves_the_run_to_the_others(make, pool):
    a, b = make(), make()
    a.start(), b.start()
    a.close()
    assert b.state == "running" and b.shared_with == 0
    before = steps(b)
    assert wait_for(lambda: steps(b) > before + 5) and computing(pool) == 1
    b.close()                                                 # the last one: the run ends in its worker
    assert wait_for(lambda: pool.held_runs() == {}) and shared_runs.listed_count() == 0


def test_an_idle_watcher_gets_a_paused_copy_while_the_other_watches_on(make, pool):
    a, b = make(), make(idle_pause_s=0.3)
    a.start(), b.start()
    end = time.monotonic() + 1.5
    while time.monotonic() < end and b.state == "running":
        a.latest()
        time.sleep(0.05)
    assert b.state == "paused" and "nobody" in b.message
    assert a.state == "running" and a.shared_with == 0
    assert len(pool.held_runs()) == 2 and computing(pool) == 1


def test_a_shared_run_nobody_watches_ends(make, pool):
    a = make(idle_pause_s=0.2, idle_stop_s=0.5)
    b = make(idle_pause_s=0.2, idle_stop_s=0.5)
    a.start(), b.start()
    assert wait_for(lambda: a.state == b.state == "stopped", 10.0)   # paused, then released
    assert "Released" in a.message and "Released" in b.message
    assert wait_for(lambda: pool.held_runs() == {}) and session_mod.running_count() == 0


def test_a_queued_start_joins_a_run_of_its_key_that_starts_meanwhile(make, pool):
    old = session_mod.max_runs()
    session_mod.set_max_runs(1)
    try:
        other, a, b = make("other"), make(), make()
        other.start()
        a.start(), b.start()
        assert (a.state, b.state) == ("queued", "queued")
        other.pause()                                        # a starts by itself, then b joins it
        assert wait_for(lambda: a.state == "running" and b.state == "running", 5.0)
        assert b.shared_with == 1 and computing(pool) == 1
    finally:
        session_mod.set_max_runs(old)


def test_hot_changes_before_the_first_step_are_part_of_the_key(make, pool):
    a, b, c = make(), make(), make()
    a.update(lam=2.0), b.update(lam=2.0), c.update(lam=3.0)
    assert a.run_key == b.run_key != c.run_key
    a.start(), b.start(), c.start()
    assert a.shared_with == b.shared_with == 1 and c.shared_with == 0
    assert b.call(lam_of) == 2.0 and c.call(lam_of) == 3.0


def test_a_run_that_cannot_be_copied_says_so_and_the_others_go_on(make):
    a, b = make(factory=closure_trainer), make(factory=closure_trainer)
    a.start(), b.start()
    b.update(lam=1.0)
    assert b.state == "error" and "Could not make your own copy" in b.message and "closure" in b.message
    assert a.state == "running" and a.call(lam_of) == 10.0


def toy_session(pool: Pool, key: str) -> Session:
    return Session(partial(make_toy_trainer, TINY), partial(toy_snapshot, n=64, grid=16), pool=pool, key=key,
                   snapshot_every_s=0.05, hot_fields=HOT)


def test_a_real_fork_continues_bit_for_bit_through_the_worker(pool):
    key = run_key("toy", TINY)
    a, b = toy_session(pool, key), toy_session(pool, key)
    try:
        a.start()
        assert wait_for(lambda: a.latest().step > 20, 30)
        b.start()
        assert b.shared_with == 1
        b.pause()                                             # the copy, at the run's step k
        k = b.call(attrgetter("step_count"))
        b.step(5)
        here = make_toy_trainer(TINY)                         # the same run, uninterrupted, in this process
        here.step(k + 5)
        assert b.call(attrgetter("step_count")) == k + 5
        assert repr(b.call(attrgetter("history"))) == repr(here.history)   # same losses, bit for bit
        params = b.call(lambda_free_params)
        assert params == [p.tolist() for p in here.generator.parameters()]
        a.pause()                                             # alone now: the run itself pauses
        m = a.call(attrgetter("step_count"))
        there = make_toy_trainer(TINY)
        there.step(m)
        assert m > k and repr(a.call(attrgetter("history"))) == repr(there.history)   # not disturbed
    finally:
        a.close(), b.close()
    assert wait_for(lambda: pool.held_runs() == {})


def test_a_real_fork_on_another_worker_continues_bit_for_bit(pool):
    key = run_key("toy", TINY)
    a, b, c = toy_session(pool, key), toy_session(pool, key), toy_session(pool, None)
    try:
        a.start()
        c.prepare()                                           # another worker is up, with no run training
        assert wait_for(lambda: a.latest().step > 20, 30)
        b.start()
        b.update(lr_g=TINY.lr_g)                              # a change of nothing, yet a training copy
        assert b.worker_pid != a.worker_pid
        forked_at = b.call(attrgetter("step_count"))
        assert wait_for(lambda: b.call(attrgetter("step_count")) > forked_at + 20, 30)   # it trains there
        b.pause()
        k = b.call(attrgetter("step_count"))
        here = make_toy_trainer(TINY)
        here.step(k)
        assert repr(b.call(attrgetter("history"))) == repr(here.history)   # same losses, bit for bit
        assert b.call(lambda_free_params) == [p.tolist() for p in here.generator.parameters()]
    finally:
        a.close(), b.close(), c.close()
    assert wait_for(lambda: pool.held_runs() == {})


def lambda_free_params(trainer) -> list:
    """The generator's weights as nested lists (a module-level function: it travels to the worker)."""
    return [p.tolist() for p in trainer.generator.parameters()]


def test_sessions_on_another_pool_do_not_share(make, pool):
    other = Pool(size=1)
    try:
        a = make()
        b = Session(FakeTrainer, metric_snap, pool=other, key="same")
        a.start(), b.start()
        assert a.shared_with == 0 == b.shared_with and b.worker_pid != a.worker_pid
        b.close()
        assert shared_runs.listed_count() == 1                # a's run, on its own pool
    finally:
        other.shutdown()
