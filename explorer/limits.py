"""Limits that keep a hosted demo alive: shared by every Session in the process, and per visitor.

A process-wide cap on runs training at once (EXPLORER_MAX_RUNS), the environment numbers behind the
other per-run limits, the sentences a visitor sees when memory runs out, and each visitor's budget
per minute (upload bytes, runs started), so that one visitor cannot queue work for all the others.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable


def env_number(name: str, default: float, cast: Callable[[str], float] = float) -> float:
    """A positive number from the environment, or `default` when unset or not a positive number."""
    try:
        value = cast(os.environ[name])
    except (KeyError, ValueError):
        return default
    return value if value > 0 else default


# ----------------------------------------------------------------------------- process-wide run cap
_CAP_LOCK = threading.Lock()
_RUNNING: set[int] = set()          # id() of the sessions whose thread is training right now
# 2 runs on a 2-core box, at most 4 anywhere: each run uses about one core (see torch_threads).
_MAX_RUNS = int(env_number("EXPLORER_MAX_RUNS", min(4, max(2, os.cpu_count() or 2)), int))


def set_max_runs(n: int) -> None:
    """Set how many sessions may train at the same time in this process (n >= 1)."""
    global _MAX_RUNS
    if int(n) < 1:
        raise ValueError(f"The number of concurrent runs must be at least 1; got {n}.")
    _MAX_RUNS = int(n)


def max_runs() -> int:
    return _MAX_RUNS


def running_count() -> int:
    return len(_RUNNING)


def acquire_slot(key: int) -> bool:
    with _CAP_LOCK:
        if key not in _RUNNING and len(_RUNNING) >= _MAX_RUNS:
            return False
        _RUNNING.add(key)
        return True


def release_slot(key: int) -> None:
    with _CAP_LOCK:
        _RUNNING.discard(key)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} seconds"


def out_of_memory_message(err: BaseException) -> str | None:
    """The page's sentence for an out-of-memory error (None for any other error)."""
    import torch
    if isinstance(err, torch.cuda.OutOfMemoryError):   # defined on CPU-only builds too
        return "Ran out of memory on the GPU: try a smaller batch size, image size or width, or the CPU."
    if isinstance(err, MemoryError):
        return "Ran out of memory: try a smaller batch size, image size or width."
    return None


def free_gpu_memory() -> None:
    """Give a failed step's cached GPU blocks back (call once its tensors are gone)."""
    import torch
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- per-visitor budgets
class VisitorBudget:
    """What one visitor may ask of a shared demo in any minute: upload bytes and runs started.

    One per browser session (ui/budget.py keeps it in st.session_state). Each admit_* answers None
    (go ahead, and it is counted) or the sentence to show; a refused request is not counted, so the
    same request goes through once the minute has passed.

        >>> b = VisitorBudget(upload_bytes=100, runs=1, clock=lambda: 0.0)
        >>> b.admit_run() is None, b.admit_run() is not None
        (True, True)
    """

    WINDOW_S = 60.0

    def __init__(self, upload_bytes: float, runs: float, clock: Callable[[], float] = time.monotonic):
        self.upload_bytes, self.runs = upload_bytes, runs
        self._clock = clock
        self._uploads: list[tuple[float, int]] = []   # (when, bytes) in the last minute
        self._starts: list[float] = []                # when each run started, in the last minute
        self._admitted: dict[object, None] = {}       # uploads already counted (a rerun sees them again)
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> VisitorBudget:
        """EXPLORER_UPLOAD_MB_PER_MIN (100) and EXPLORER_RUNS_PER_MIN (30) of the hosted demo."""
        return cls(env_number("EXPLORER_UPLOAD_MB_PER_MIN", 100.0) * 1e6, env_number("EXPLORER_RUNS_PER_MIN", 30.0))

    def admit_upload(self, key: object, nbytes: int) -> str | None:
        """Count an upload of `nbytes` (once per `key`, e.g. the uploader's file ids) or say why not."""
        with self._lock:
            if key in self._admitted:
                return None
            now = self._forget(self._clock())
            used = sum(n for _, n in self._uploads)
            if used + nbytes > self.upload_bytes:
                return (f"You have uploaded {used / 1e6:.0f} MB in the last minute, and this file would take you "
                        f"past this demo's {self.upload_bytes / 1e6:g} MB a minute; please try again in a minute.")
            self._uploads.append((now, nbytes))
            self._admitted[key] = None
            if len(self._admitted) > 64:             # only recent keys matter
                self._admitted.pop(next(iter(self._admitted)))
            return None

    def admit_run(self) -> str | None:
        """Count a run started (a trainer built in a worker) or say why not."""
        with self._lock:
            now = self._forget(self._clock())
            if len(self._starts) >= self.runs:
                n = len(self._starts)
                return (f"You have started {n} {'run' if n == 1 else 'runs'} in the last minute, this demo's limit "
                        "per visitor; please wait a moment before starting another.")
            self._starts.append(now)
            return None

    def _forget(self, now: float) -> float:
        self._uploads = [(t, n) for t, n in self._uploads if now - t < self.WINDOW_S]
        self._starts = [t for t in self._starts if now - t < self.WINDOW_S]
        return now
