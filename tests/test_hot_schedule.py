"""Hot changes by step: the worker notes the step of every change and applies a link's planned ones at
exactly their steps, so a run replayed from a link trains the same numbers (explorer/hot_schedule.py).
Every session test runs on both backends: local worker processes and Ray actors."""
from functools import partial

import pytest

from explorer import hot_schedule
from explorer.hot_schedule import Change
from explorer.session import Session
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot
from session_fakes import FakeTrainer, seen, snap, state_digest, wait_for

HOT = ("lam", "clip", "n_critic", "lr_g", "lr_c")


def value(name: str, raw: str):
    if name not in HOT:
        raise KeyError(name)
    return int(raw) if name == "n_critic" else float(raw)


def test_changes_read_back_from_their_text():
    changes = [Change(7, {"lam": 0.1, "n_critic": 3}), Change(2000, {"lr_g": 0.0003, "lr_c": 1 / 3})]
    assert hot_schedule.parse(hot_schedule.to_text(changes), value) == changes   # 1/3 as repr: exact
    assert hot_schedule.to_text([]) == "" and hot_schedule.parse("", value) == []


@pytest.mark.parametrize("text, why", [
    ("5:lam=2;5:lam=3", "rise"), ("0:lam=2", "rise"), ("9:lam=2;3:lam=1", "rise"), ("x:lam=2", "step:field"),
    ("5:width=64", "width"), ("5:lam=abc", "lam=abc"), ("5:", "step:field"), ("5:lam", "lam"),
    (";".join(f"{i}:lam=1" for i in range(1, hot_schedule.MAX_CHANGES + 2)), "at most"),
])
def test_a_bad_schedule_says_what_is_wrong(text, why):
    with pytest.raises(ValueError, match=why):
        hot_schedule.parse(text, value)


def test_changes_at_one_step_merge_in_order():
    assert hot_schedule.merged([Change(9, {"lam": 1.0}), Change(3, {"lam": 2.0}), Change(9, {"lam": 4.0})]) == \
        [Change(3, {"lam": 2.0}), Change(9, {"lam": 4.0})]


@pytest.fixture
def make(pool):
    made: list[Session] = []

    def _make(factory=FakeTrainer, snapshot_fn=snap, schedule=(), key=None, **kw) -> Session:
        s = Session(None, snapshot_fn, hot_fields=HOT, pool=pool, snapshot_every_s=0.02, **kw)
        s.reset(factory, key=key, schedule=schedule)
        made.append(s)
        return s

    yield _make
    for s in made:
        s.close()


def lams(s: Session) -> dict[int, float]:
    return dict(s.call(seen))   # step -> the lam that step trained with


def test_planned_changes_apply_at_exactly_their_steps_while_training(make):
    s = make(schedule=[Change(30, {"lam": 5.0}), Change(70, {"lam": 7.0})])
    assert s.planned == [Change(30, {"lam": 5.0}), Change(70, {"lam": 7.0})]   # before the run is built
    s.start()
    assert wait_for(lambda: s.latest() is not None and s.latest().step > 90)
    s.pause()
    seen_lam = lams(s)
    assert {seen_lam[30], seen_lam[31], seen_lam[70], seen_lam[71]} == {10.0, 5.0, 7.0}
    assert (seen_lam[30], seen_lam[31], seen_lam[70], seen_lam[71]) == (10.0, 5.0, 5.0, 7.0)
    assert s.changes == [Change(30, {"lam": 5.0}), Change(70, {"lam": 7.0})]
    assert s.planned == [] and s.planned_done == 2


def test_a_manual_step_stops_at_a_planned_change(make):
    s = make(schedule=[Change(4, {"lam": 2.0})])
    s.step(10)                                  # one click: the change still comes after step 4
    seen_lam = lams(s)
    assert (seen_lam[4], seen_lam[5]) == (10.0, 2.0) and s.changes == [Change(4, {"lam": 2.0})]


def test_a_visitors_change_is_noted_with_its_step_and_ends_the_plan(make):
    s = make(schedule=[Change(20, {"lam": 5.0}), Change(10_000, {"lam": 9.0})])
    s.step(25)
    s.update(lam=2.0)
    assert s.wait_for_changes(2)
    assert s.changes == [Change(20, {"lam": 5.0}), Change(25, {"lam": 2.0})]
    assert s.planned == [] and s.planned_done == 1       # the rest of the plan is dropped
    s.step(5)
    assert lams(s)[26] == 2.0


def test_a_fork_of_a_shared_run_keeps_what_is_left_of_the_plan(make):
    plan = [Change(15, {"lam": 5.0}), Change(10_000, {"lam": 9.0})]
    first, second = make(schedule=plan, key="fake:planned"), make(schedule=plan, key="fake:planned")
    first.start()
    assert wait_for(lambda: first.latest() is not None and first.latest().step > 20)
    second.start()                               # watches the first's run
    assert wait_for(lambda: second.shared_with == 1)
    second.pause()                               # a private copy, paused where the run stood
    assert second.shared_with == 0 and second.changes == [Change(15, {"lam": 5.0})]
    assert second.planned == [Change(10_000, {"lam": 9.0})]


TINY = ToyConfig(width=16, depth=2, batch_size=32, n_critic=2, seed=3, ema=0.9)


def test_a_run_replayed_with_its_schedule_trains_the_same_numbers_bit_for_bit(make):
    """One run trained live (chunks as the clock cuts them, snapshots drawn meanwhile) and one stepped
    by hand in odd amounts, both with the same plan: the same weights, optimizer state, random state
    and losses at the same step. Without the plan the numbers differ."""
    plan = [Change(11, {"lam": 3.0, "n_critic": 3}), Change(40, {"lr_g": 3e-4})]
    factory = partial(make_toy_trainer, TINY)
    snapshot = partial(toy_snapshot, grid=16, measure=None)
    live = make(factory, snapshot, schedule=plan)
    live.start()
    assert wait_for(lambda: live.latest() is not None and live.latest().step > 60, timeout=60)
    live.pause()
    at, digest = live.call(state_digest)
    by_hand = make(factory, snapshot, schedule=plan)
    done = 0
    while done < at:
        n = min(7, at - done)
        by_hand.step(n)
        done += n
    assert by_hand.call(state_digest) == (at, digest)
    unplanned = make(factory, snapshot)
    unplanned.step(at)
    assert unplanned.call(state_digest)[1] != digest
