"""The headless training loop both runs share (the command line's `toy` and `images`, notebooks).

Steps in chunks, so that frames for a GIF can be drawn between them outside the timed training,
and stops at a divergence (the trainer has rolled back; the caller still writes its outputs).
explorer/toy_training.py and explorer/image_training.py wrap it with what their run writes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from explorer.training import Diverged, Trainer

GIF_FRAMES = 40        # frames in a run's training GIF, spread evenly over the run


@dataclass
class HeadlessRun:
    seconds: float                                   # training time (frames and progress not counted)
    frames: list = field(default_factory=list)       # frame(trainer) before each chunk, if asked for
    failure: Diverged | None = None                  # the divergence that ended the run early, if any


def run_headless(trainer: Trainer, steps: int, frame: Callable[[Trainer], Any] | None = None,
                 progress: Callable[[Trainer], None] | None = None, frames: int = GIF_FRAMES) -> HeadlessRun:
    """Train until trainer.step_count reaches `steps`, in about `frames` chunks.

    frame(trainer), if given, is called before every chunk (its results are kept for a GIF);
    progress(trainer) after every chunk.
    """
    if not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1):
        raise ValueError(f"steps must be a whole number >= 1; got {steps!r}.")
    every = max(1, steps // frames)
    run = HeadlessRun(0.0)
    while trainer.step_count < steps:
        if frame is not None:
            run.frames.append(frame(trainer))
        start = time.perf_counter()
        try:
            trainer.step(min(every, steps - trainer.step_count))
        except Diverged as err:
            run.failure = err
            break
        finally:
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            run.seconds += time.perf_counter() - start
        if progress is not None:
            progress(trainer)
    return run
