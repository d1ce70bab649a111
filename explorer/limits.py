"""Limits that keep a hosted demo alive: shared by every Session in the process, and per visitor.

A process-wide cap on runs training at once (EXPLORER_MAX_RUNS, a cap of memory: the workers time-slice
any number of runs) with the FIFO queue of the runs waiting beyond it, the environment numbers behind the
other per-run limits, the sentences a visitor sees when memory runs out, and each visitor's budget
per minute (upload bytes, runs started), so that one visitor cannot queue work for all the others.
"""
from __future__ import annotations

import heapq
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
# Workers step every training run in turn (explorer/worker.py), so cores do not limit how many runs
# train at once; memory does. Each run is given RUN_BUDGET_MB, a typical run's budget. Measured (one
# fresh process each, resident memory after a few steps and a snapshot): the 2-D page's default run
# 98 MB and its largest (width 512, depth 6, batch 512) 223 MB; the Image GAN page's default 149 MB,
# its largest (64 x 64 colour, 64 feature maps, batch 256, WGAN-GP) 922 MB. A box that must survive
# several of the largest image runs sets EXPLORER_MAX_RUNS lower. The default cap is
# MemAvailable / RUN_BUDGET_MB, at least 2 (a small box still trains two visitors) and at most 32
# (past that each run's share of the cores is too thin to watch). Beyond the cap a run waits in a first-come, first-served queue.
RUN_BUDGET_MB = 300
MIN_RUNS, MAX_RUNS_CLAMP = 2, 32

_CAP_LOCK = threading.Lock()
_RUNNING: set[int] = set()          # id() of the sessions training right now
_QUEUE: list[int] = []              # id() of the sessions waiting for a slot, first come first


def available_mb(meminfo: str = "/proc/meminfo") -> float | None:
    """MemAvailable in MB from /proc/meminfo (None where there is no such file or line)."""
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024   # the file counts kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_max_runs(mb: float | None = None) -> int:
    """Runs held training at once by default: available memory / RUN_BUDGET_MB, clamped to [2, 32].

        >>> default_max_runs(1000), default_max_runs(3000), default_max_runs(10 ** 6)
        (3, 10, 32)
    """
    mb = available_mb() if mb is None else mb
    if mb is None:
        return MIN_RUNS
    return min(MAX_RUNS_CLAMP, max(MIN_RUNS, int(mb // RUN_BUDGET_MB)))


_MAX_RUNS = int(env_number("EXPLORER_MAX_RUNS", default_max_runs(), int))


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
    """Take a training slot for `key` if one is free and nobody queued earlier is owed it.

    A queued key at place p (1-based) gets a slot once fewer than cap - p + 1 are taken, so free
    slots go to the queue in order; a key not queued gets one only while nobody waits."""
    with _CAP_LOCK:
        if key in _RUNNING:
            return True
        ahead = _QUEUE.index(key) if key in _QUEUE else len(_QUEUE)
        if len(_RUNNING) + ahead >= _MAX_RUNS:
            return False
        _RUNNING.add(key)
        if key in _QUEUE:
            _QUEUE.remove(key)
        return True


def release_slot(key: int) -> None:
    with _CAP_LOCK:
        _RUNNING.discard(key)


def transfer_slot(old: int, new: int) -> None:
    """Hand `old`'s training slot to `new` (a run changing hands: becoming shared, or private again);
    nothing when `old` holds none."""
    with _CAP_LOCK:
        if old in _RUNNING:
            _RUNNING.discard(old)
            _RUNNING.add(new)


def enqueue(key: int) -> int:
    """Put `key` at the back of the queue (where it already is, if queued); its place, 1-based."""
    with _CAP_LOCK:
        if key not in _QUEUE:
            _QUEUE.append(key)
        return _QUEUE.index(key) + 1


def leave_queue(key: int) -> None:
    with _CAP_LOCK:
        if key in _QUEUE:
            _QUEUE.remove(key)


def queue_place(key: int) -> int | None:
    """1 for the next run to start, 2 after it, ...; None when `key` is not queued."""
    with _CAP_LOCK:
        return _QUEUE.index(key) + 1 if key in _QUEUE else None


def queued_count() -> int:
    return len(_QUEUE)


def forget(key: int) -> None:
    """Drop `key` from the slots and the queue (a session that is gone)."""
    release_slot(key)
    leave_queue(key)


def wait_estimate_s(place: int, remaining_s: list[float], run_cap_s: float, cap: int | None = None) -> float:
    """Seconds until the run at queue `place` may start, if nobody pauses or leaves early.

    Each slot frees when its run reaches its training-time cap (remaining_s, one per run training;
    a slot not taken is free now); the `place - 1` runs queued ahead take the first slots to free and
    then hold them for a full run_cap_s each. So it is an upper estimate: runs that pause, end or are
    closed sooner give their slot sooner. `cap` is the number of slots (max_runs() by default).

        >>> wait_estimate_s(1, [100.0, 40.0], 600.0, cap=2), wait_estimate_s(2, [100.0, 40.0], 600.0, cap=2)
        (40.0, 100.0)
        >>> wait_estimate_s(3, [100.0, 40.0], 600.0, cap=2), wait_estimate_s(1, [100.0], 600.0, cap=2)
        (640.0, 0.0)
    """
    cap = _MAX_RUNS if cap is None else cap
    slots = sorted(max(0.0, r) for r in remaining_s)
    slots = slots[max(0, len(slots) - cap):]    # over the cap (it was lowered): the first ends free nothing
    slots += [0.0] * max(0, cap - len(slots))
    heapq.heapify(slots)
    for _ in range(place - 1):
        heapq.heappush(slots, heapq.heappop(slots) + run_cap_s)
    return slots[0] if slots else 0.0


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
