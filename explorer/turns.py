"""A worker job's turns: train a while, give the worker back, train on.

A worker steps its live runs in turn, each for a chunk of about 0.1 s (explorer/worker.py), and
advances a generator job by one item per turn. A job that trained a fixed number of steps per item
took the worker for as long as those steps took: 25 lock-step steps of a Compare preset's recording
are a second on an idle core and several under load, so every live run beside it got a tenth of its
turns (bench/classroom.py: a lone run at 4.8 steps/s where it trains at 66 beside nothing). Here a
job's turn is about as long as a run's chunk, measured as it goes, like the worker sizes chunks.

    >>> class Counter:
    ...     step_count = 0
    ...     def step(self, n): self.step_count += n
    >>> [step for step, _ in in_turns(Counter(), 5)][-1]
    5
"""
from __future__ import annotations

import time
from typing import Any, Iterator

TURN_S = 0.1          # a job's training between two turns of its worker: a live run's chunk
MAX_TURN_STEPS = 10_000


def in_turns(trainer: Any, until: int, turn_s: float = TURN_S) -> Iterator[tuple[int, float]]:
    """Train `trainer` to step `until` in pieces of about turn_s seconds, yielding (its step, the
    piece's seconds) after each. The first piece is one step; each next one follows the last one's
    speed, at most twice or half as many steps."""
    n = 1
    while trainer.step_count < until:
        k = min(n, until - trainer.step_count)
        began = time.perf_counter()
        trainer.step(k)
        took = time.perf_counter() - began
        yield trainer.step_count, took
        n = next_turn(k, took, turn_s)


def next_turn(steps: int, took: float, turn_s: float = TURN_S) -> int:
    """The steps of the next turn after `steps` took `took` seconds: about turn_s of them, at most twice
    or half as many (a live run's chunk in the worker is sized the same way).

    >>> next_turn(10, 0.05), next_turn(10, 1.0), next_turn(10, 0.0)
    (20, 5, 20)
    """
    wanted = steps * turn_s / took if took > 0 else 2 * steps
    return int(max(1, min(2 * steps, max(steps // 2, wanted), MAX_TURN_STEPS)))
