"""A timeline over a run's kept frames: which frame to show for a chosen step, and which numbers.

A session keeps a run's frames evenly spread over its steps and a log of its measurements
(explorer/run_record.py). Looking back at step s shows the last frame kept at or before s, with the
last measurement logged at or before that frame's step: numbers never newer than the picture, and
said to come from the step at which they were measured (live numbers are measured about once a
second, so they often come from a few steps before the frame).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class Moment:
    """What the timeline shows at one step: a kept frame and the measurement that goes with it."""

    frame: Any                 # a kept frame (a snapshot without its histories), with a `step`
    record: dict | None        # the log's {"step", **metrics} at or before frame.step; None: none yet

    @property
    def numbers(self) -> dict:
        """The record's metrics without its step ({} when nothing was measured by then)."""
        return {k: v for k, v in (self.record or {}).items() if k != "step"}

    @property
    def numbers_step(self) -> int | None:
        """The step at which the numbers were measured (None when nothing was measured by then)."""
        return None if self.record is None else self.record["step"]


def frame_steps(frames: Sequence[Any]) -> list[int]:
    """The steps of the kept frames, oldest first: what a step slider offers.

    >>> frame_steps([])
    []
    """
    return [frame.step for frame in frames]


def moment_at(frames: Sequence[Any], log: Sequence[dict], step: int) -> Moment | None:
    """The moment to show at `step`: the last frame kept at or before it (the first frame for a step
    before every frame), with the last log record at or before that frame's step. None without frames.

    frames: kept frames, oldest first, each with a `step`; log: metric records {"step", ...}.
    A linear pass: a session keeps at most a few dozen frames and a few thousand records.

    >>> from types import SimpleNamespace as F
    >>> m = moment_at([F(step=0), F(step=10)], [{"step": 0, "w1": 2.0}, {"step": 8, "w1": 1.0}], 12)
    >>> m.frame.step, m.numbers_step, m.numbers
    (10, 8, {'w1': 1.0})
    """
    if not frames:
        return None
    frame = frames[0]
    for kept in frames:
        if kept.step <= step and kept.step >= frame.step:
            frame = kept
    record = None
    for measured in log:   # the last of equal steps wins: it is the one logged later
        if measured["step"] <= frame.step and (record is None or measured["step"] >= record["step"]):
            record = measured
    return Moment(frame, record)
