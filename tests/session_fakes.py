"""A trainer-like object for the session and pool tests; importable by name in a worker process.

Everything a test hands to a Session must pickle, so the fakes are module-level classes and
functions (the worker imports this module from the test's sys.path).
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass


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
    pid: int = 0


class FakeTrainer:
    """Counts steps, records the lam each step saw, can diverge at a chosen step."""

    def __init__(self, step_s: float = 0.001, diverge_at: int | None = None):
        self.cfg = FakeConfig()
        self.step_count = 0
        self.step_s = step_s
        self.diverge_at = diverge_at
        self.seen: list[tuple[int, float]] = []   # (step, lam) as each step saw it
        self.built_at = time.monotonic()

    def step(self, n: int = 1) -> dict:
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


class ViewTrainer(FakeTrainer):
    """A FakeTrainer whose snapshots the worker draws from a view in its snapshot thread."""

    def snapshot_view(self) -> "ViewTrainer":
        view = copy.copy(self)
        view.origin = self
        return view


def view_snap(view: ViewTrainer) -> FakeSnapshot:
    """A 50 ms snapshot of a view (or of the trainer itself, as when a run is opened); .lam says
    which step the run itself had reached when it was done."""
    time.sleep(0.05)
    return FakeSnapshot(view.step_count, float(getattr(view, "origin", view).step_count), os.getpid())


def broken_view_snap(view: ViewTrainer) -> FakeSnapshot:
    if view.step_count > 0:
        raise RuntimeError("could not draw this frame")
    return snap(view)


def snap(trainer: FakeTrainer) -> FakeSnapshot:
    return FakeSnapshot(trainer.step_count, trainer.cfg.lam, os.getpid())


def counted_snap(trainer: FakeTrainer) -> FakeSnapshot:
    """snap(), counting the snapshots taken in trainer.snapshots_taken."""
    trainer.snapshots_taken = getattr(trainer, "snapshots_taken", 0) + 1
    return snap(trainer)


def snapshots_taken(trainer: FakeTrainer) -> int:
    return getattr(trainer, "snapshots_taken", 0)


def still_snap(trainer: FakeTrainer) -> FakeSnapshot:
    """A snapshot marked as taken at rest (lam -1)."""
    return FakeSnapshot(trainer.step_count, -1.0, os.getpid())


def slow_snap(trainer: FakeTrainer) -> FakeSnapshot:
    """A snapshot that takes 50 ms (and says when it was taken, in .lam)."""
    time.sleep(0.05)
    return FakeSnapshot(trainer.step_count, time.monotonic(), os.getpid())


def bad_factory() -> FakeTrainer:
    raise ValueError("The CSV has no rows.")


def seen(trainer: FakeTrainer) -> list[tuple[int, float]]:
    return list(trainer.seen)


def steps_and_pid(trainer: FakeTrainer) -> tuple[int, int]:
    return trainer.step_count, os.getpid()


def built_at(trainer: FakeTrainer) -> float:
    return trainer.built_at


def crash_worker(trainer: FakeTrainer) -> None:
    """Ends the worker process at once, as a crash would (no cleanup, no reply)."""
    os._exit(3)


def count_to(n: int, pause_s: float = 0.01):
    """A generator job: yields 1..n, returns n * 10."""
    for i in range(1, n + 1):
        time.sleep(pause_s)
        yield i
    return n * 10


def fail_with(text: str) -> None:
    raise ValueError(text)


def worker_nice() -> int:
    return os.nice(0)


def worker_pid() -> int:
    return os.getpid()


class OomTrainer:
    """Counts steps; raises an error of `kind` once `fail_at` steps are done.

    kind: "cuda" (torch's GPU out-of-memory error), "memory" (MemoryError) or "diverged"."""

    def __init__(self, kind: str, fail_at: int):
        self.kind, self.fail_at, self.step_count = kind, fail_at, 0

    def error(self) -> BaseException:
        if self.kind == "cuda":
            import torch
            return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.kind == "memory":
            return MemoryError()
        return RuntimeError(f"Training diverged at step {self.fail_at}.")

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            if self.step_count >= self.fail_at:
                raise self.error()
            time.sleep(0.001)
            self.step_count += 1

    def update(self, **hot) -> None:
        pass


@dataclass
class Snap:
    step: int


def step_snap(trainer) -> Snap:
    return Snap(trainer.step_count)


@dataclass
class MetricSnapshot:
    step: int
    lam: float
    metrics: dict


def metric_snap(trainer: FakeTrainer) -> MetricSnapshot:
    """A snapshot with a metrics dict (so the session keeps a metrics log)."""
    return MetricSnapshot(trainer.step_count, trainer.cfg.lam, {"lam": trainer.cfg.lam, "pid": os.getpid()})


def closure_trainer() -> FakeTrainer:
    """A trainer holding a closure over a random generator: it cannot be copied faithfully."""
    import torch
    trainer, rng = FakeTrainer(), torch.Generator().manual_seed(0)
    trainer.draw = lambda n: torch.rand(n, generator=rng)
    return trainer


def lam_of(trainer) -> float:
    return trainer.cfg.lam


def wait_for(cond, timeout: float = 10.0) -> bool:
    """True once cond() is, polling every 10 ms for at most `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@dataclass
class MeasuredSnapshot:
    """A live snapshot whose numbers were measured at an earlier step (every 4th), like a toy one's."""
    step: int
    measured_at: int
    metrics: dict


def measured_every_4(trainer: FakeTrainer) -> MeasuredSnapshot:
    at = trainer.step_count - trainer.step_count % 4
    return MeasuredSnapshot(trainer.step_count, at, {"at": at})


def state_digest(trainer) -> tuple[int, str]:
    """A real trainer's step and the SHA-256 of everything that decides its next steps: the weights,
    the optimizers' moments, the random state and the losses recorded so far."""
    import hashlib

    import torch
    h = hashlib.sha256()
    nets = [trainer.generator, trainer.critic] + ([trainer.ema_generator] if trainer.ema_generator else [])
    tensors = [t for net in nets for t in net.state_dict().values()]
    for opt in (trainer.opt_g, trainer.opt_c):
        tensors += [v for state in opt.state_dict()["state"].values() for v in state.values()
                    if isinstance(v, torch.Tensor)]
    for t in tensors + [trainer.rng.get_state()]:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(repr(trainer.history).encode())
    return trainer.step_count, h.hexdigest()
