"""Limits that keep a hosted demo alive, shared by every Session in the process.

A process-wide cap on runs training at once (EXPLORER_MAX_RUNS), the environment numbers behind the
other per-run limits, and the sentences a visitor sees when memory runs out.
"""
from __future__ import annotations

import os
import threading
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
