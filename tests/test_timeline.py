"""The timeline's choice of frame and numbers for a step (explorer/timeline.py)."""
from dataclasses import dataclass

from explorer.run_record import RunRecord
from explorer.timeline import frame_steps, moment_at


@dataclass
class Frame:
    step: int
    metrics: dict | None = None
    measured_at: int | None = None


FRAMES = [Frame(0), Frame(10), Frame(20)]
LOG = [{"step": 0, "w1": 3.0}, {"step": 10, "w1": 2.0}, {"step": 20, "w1": 1.0}]


def test_no_frames_is_nothing_to_show():
    assert frame_steps([]) == []
    assert moment_at([], LOG, 5) is None


def test_one_frame_is_shown_at_any_step():
    only = [Frame(7)]
    assert frame_steps(only) == [7]
    for step in (0, 7, 100):
        m = moment_at(only, [{"step": 7, "w1": 1.5}], step)
        assert m.frame is only[0] and m.numbers == {"w1": 1.5} and m.numbers_step == 7


def test_a_kept_step_shows_its_own_frame_and_record():
    m = moment_at(FRAMES, LOG, 10)
    assert m.frame is FRAMES[1] and m.record is LOG[1] and m.numbers == {"w1": 2.0}


def test_a_step_between_frames_shows_the_frame_before_it():
    m = moment_at(FRAMES, LOG, 19)
    assert m.frame.step == 10 and m.numbers_step == 10


def test_a_step_before_every_frame_shows_the_first_and_after_them_the_last():
    later = [Frame(5), Frame(15)]
    assert moment_at(later, LOG, 0).frame.step == 5
    assert moment_at(later, LOG, 10**9).frame.step == 15


def test_numbers_measured_at_an_earlier_step_say_so_and_are_never_newer_than_the_frame():
    log = [{"step": 0, "w1": 3.0}, {"step": 8, "w1": 2.5}, {"step": 14, "w1": 2.0}]
    m = moment_at(FRAMES, log, 10)
    assert m.frame.step == 10 and m.numbers_step == 8 and m.numbers == {"w1": 2.5}   # not step 14's


def test_nothing_measured_by_the_frames_step():
    m = moment_at([Frame(3)], [{"step": 9, "w1": 1.0}], 3)
    assert m.frame.step == 3 and m.record is None and m.numbers == {} and m.numbers_step is None


def test_of_equal_steps_the_record_logged_last_wins():
    log = [{"step": 10, "w1": 2.0}, {"step": 10, "w1": 1.9}]
    assert moment_at(FRAMES, log, 10).numbers == {"w1": 1.9}


def test_on_a_run_record_with_numbers_measured_once_every_few_steps():
    """Live snapshots repeat numbers measured earlier (measured_at); the log holds each once, there."""
    record = RunRecord(max_frames=4)
    for step in range(0, 40, 3):
        measured = step - step % 9   # numbers re-measured every 9 steps
        record.add(Frame(step, {"w1": 100 - measured}, measured_at=measured))
    steps = frame_steps(record.frames)
    assert len(steps) <= 4 and steps == sorted(steps)
    for step in steps:
        m = moment_at(record.frames, record.log, step)
        assert m.frame.step == step
        assert m.numbers_step == step - step % 9 and m.numbers == {"w1": 100 - m.numbers_step}
