"""A worker's snapshot thread: snapshots drawn from a copy of the run while the run trains on.

A live snapshot (the critic's lattice, the generated points, now and then the numbers) costs the
worker 15-35 ms, 6-7% of its time at the pages' 2.5 frames a second, that the same run trained
headless does not pay. A trainer that has `snapshot_view()` (explorer/training.py, and Compare's
Lockstep) hands over a copy of itself as it stands between two chunks, and this thread draws it
while the next chunk trains: on a machine with a core to spare (one run on a 2-core laptop) the
snapshot costs the training a copy of its weights, ~0.5 ms. Torch releases the interpreter lock
inside its kernels, so the two threads compute at once.

One snapshot at a time per worker. The worker waits for it to finish before it handles any other
message and before a still snapshot (a pause, a step, the end), so reports keep their order: a
visitor never sees a live frame arrive after the still one of the step where the run stopped.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable


class SnapshotThread:
    """Runs one job at a time in a thread of its own; wait() until the last one submitted is done."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="explorer-worker-snapshots", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def submit(self, job: Callable[[], None]) -> None:
        """Run job() in the thread (the job handles its own errors); the caller checks busy first."""
        self._idle.clear()
        self._jobs.put(job)

    def wait(self, timeout: float | None = None) -> bool:
        """Until the job in hand is done; True if it is (or there was none)."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            finally:
                self._idle.set()
