"""A finished run, recorded once: its frames, its metrics log, its loss history and a few checkpoints.

A page's defaults (the 2-D page's, each Compare preset's) train the same numbers every time (a run is
seeded by its settings alone), so the run a first visitor would wait for can be trained once,
headlessly, and shown to every later visitor at once on a timeline (ui/replay.py). `record_replay`
trains a recipe to a fixed step and keeps what a live session keeps of a run (explorer/run_record.py),
chosen rather than thinned: the page's own snapshots (as_frame()) at evenly spread steps, each with
the numbers measured with it, the loss history, and checkpoints at a few evenly spread steps, step 0
included. A visitor forks a live run
from a checkpoint, and it goes on exactly as the recorded run did: a checkpoint holds the weights,
the optimizers' moments, the history and the random generator's state (Trainer.state_dict).

Recording is a worker job (pool.submit), never the server's work: a generator that yields the step
reached after each turn of about 0.1 s (explorer/turns.py), as sweep.train_in_turns does, so the live
runs on the same worker keep their turns. Where a replay is kept, and who records a missing one:
explorer/replay_files.py.

    >>> spread(2000, 5)
    [0, 500, 1000, 1500, 2000]
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generator

from explorer.checkpoints import checkpoint_bytes
from explorer.limits import env_number
from explorer.run_record import RunRecord
from explorer.turns import in_turns

# The 2-D page's defaults (8 Gaussians, WGAN-GP, lambda 1, 2 critic steps, seed 0) capture 8/8 modes
# by step 100 and pass 90% high-quality samples by step 800; by 2,000 they hold 98% at W1 0.7x the
# noise floor of 256 points. Recording them takes 25-31 s on one core of the 2-core EPYC (21-23 s of
# training, 1.4 s for the 41 frames with their numbers: 34 ms each on the page's 64 x 64 lattice).
# Compare's presets train two or three runs in lock-step: 75 s for its first (WGAN-GP vs clipping, 5
# critic steps each), 55-130 s for the others at their lock-step speeds (15-38 steps/s).
STEPS = 2000        # the recorded run's length (EXPLORER_REPLAY_STEPS: shorter in tests)
FRAMES = 41         # frames kept, evenly spread over the steps (every 50 of 2,000)
CHECKPOINTS = 9     # checkpoints kept, evenly spread, step 0 and the last included (every 250 of 2,000)


def replay_steps() -> int:
    """The length of a recorded run: EXPLORER_REPLAY_STEPS, else STEPS."""
    return int(env_number("EXPLORER_REPLAY_STEPS", STEPS, int))


@dataclass(frozen=True)
class ReplayRecipe:
    """What to record: a run (its key and the factory that builds it) and how much of it to keep.
    The factory and snapshot_fn travel to a worker, so they must pickle (functools.partial of
    module-level functions with plain data)."""

    key: str                          # the run's key (explorer/run_key.py): what the factory builds
    factory: Callable[[], Any]        # builds the trainer at step 0
    snapshot_fn: Callable[[Any], Any]  # a frame of the trainer with its numbers measured (the page's own)
    steps: int = STEPS                # trained to this step
    frames: int = FRAMES              # frames kept, evenly spread over 0..steps
    checkpoints: int = CHECKPOINTS    # checkpoints kept, evenly spread over 0..steps

    @property
    def name(self) -> str:
        """The replay's name (its file's): the run's kind and a digest of its key and the recording's
        lengths, so a shorter recording of the same run (a test's) is another replay."""
        kind = self.key.split(":", 1)[0]
        recipe = f"{self.key}|{self.steps}|{self.frames}|{self.checkpoints}"
        return f"{kind}-{hashlib.sha256(recipe.encode()).hexdigest()[:32]}"


@dataclass
class Replay:
    """A recorded run: plain data (frames are snapshots of plain arrays and floats), 10 MB for the
    2-D page's defaults: 8.4 MB of checkpoints (0.4 MB at step 0, 1.1 MB at 2,000), 1.7 MB of frames;
    20 MB for a Compare preset of two runs."""

    name: str                 # ReplayRecipe.name of what was recorded
    key: str                  # the run's key
    steps: int                # the step it was trained to
    frames: list              # kept frames (snapshots without their histories), oldest first, each with .step
    log: list[dict]           # {"step", **metrics}: the numbers measured with each frame, oldest first
    history: list[dict]       # the trainer's loss records at the end (trainer.history; [] if it keeps none)
    checkpoints: dict[int, bytes] = field(default_factory=dict)   # step -> checkpoint_bytes there
    seconds: float = 0.0      # how long the recording took in its worker (training, frames, checkpoints)


def spread(steps: int, n: int) -> list[int]:
    """n steps evenly spread over 0..steps, both ends included (fewer when steps < n - 1)."""
    if n < 2:
        return [steps]
    return sorted({round(i * steps / (n - 1)) for i in range(n)})


def record_replay(recipe: ReplayRecipe,
                  checkpoint_fn: Callable[[Any], bytes] = checkpoint_bytes) -> Generator[int, None, Replay]:
    """Train recipe's run to recipe.steps, yielding the step reached after each turn (a worker job
    gives its worker back between two); the Replay is the return value.

    At each frame step the snapshot (recipe.snapshot_fn, which measures its numbers) is kept as a frame
    and its numbers in the log; at each checkpoint step, checkpoint_fn(trainer). Snapshots draw from
    generators of their own (toy_snapshot), so recording changes nothing the run trains."""
    if not (isinstance(recipe.steps, int) and recipe.steps >= 1):
        raise ValueError(f"A replay is at least one step long; got {recipe.steps!r}.")
    began = time.perf_counter()
    trainer = recipe.factory()
    frame_steps, checkpoint_steps = set(spread(recipe.steps, recipe.frames)), set(spread(recipe.steps,
                                                                                        recipe.checkpoints))
    record = RunRecord(max_frames=len(frame_steps), max_log=len(frame_steps))   # every frame offered is due
    checkpoints: dict[int, bytes] = {}
    for step in sorted(frame_steps | checkpoint_steps):
        for reached, _ in in_turns(trainer, step):
            yield reached
        if step in frame_steps:
            record.add(recipe.snapshot_fn(trainer))
        if step in checkpoint_steps:
            checkpoints[step] = checkpoint_fn(trainer)
    return Replay(recipe.name, recipe.key, recipe.steps, record.frames, record.log,
                  [dict(r) for r in getattr(trainer, "history", [])], checkpoints, time.perf_counter() - began)


def nearest_checkpoint(replay: Replay, step: int) -> tuple[int, bytes]:
    """(its step, its bytes): the replay's checkpoint at or before `step` (the first one for a step
    before every checkpoint), where a live run forked at `step` starts.

    >>> r = Replay("n", "toy:k", 20, [], [], [], {0: b"a", 10: b"b", 20: b"c"})
    >>> nearest_checkpoint(r, 19)[0], nearest_checkpoint(r, 20)[0]
    (10, 20)
    """
    if not replay.checkpoints:
        raise ValueError("This replay keeps no checkpoint to train from.")
    at = max((s for s in replay.checkpoints if s <= step), default=min(replay.checkpoints))
    return at, replay.checkpoints[at]
