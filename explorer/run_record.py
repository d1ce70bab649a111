"""What a page keeps of a run besides its latest snapshot: GIF frames and the metrics log, bounded.

Both stay evenly spread however long the run goes: past `max_frames` every other frame is dropped
and the spacing between kept frames doubles; past `max_log` every other metric record is dropped.
A session keeps one record per run; a visitor who joins a shared run starts from a copy of it.
"""
from __future__ import annotations

from typing import Any


class RunRecord:
    """GIF frames (snapshots without their histories) and metric records {"step", **metrics}."""

    def __init__(self, max_frames: int = 60, max_log: int = 2000) -> None:
        self.max_frames = max(2, int(max_frames))   # snapshots kept for the GIF, evenly spread over steps
        self.max_log = max(2, int(max_log))         # metric records kept (thinned evenly beyond)
        self.frames: list[Any] = []
        self.log: list[dict] = []
        self._frame_every, self._next_frame_step = 1, 0   # GIF frame spacing in steps; doubles when full

    def copy(self) -> "RunRecord":
        twin = RunRecord(self.max_frames, self.max_log)
        twin.frames, twin.log = list(self.frames), list(self.log)
        twin._frame_every, twin._next_frame_step = self._frame_every, self._next_frame_step
        return twin

    def add(self, snapshot: Any) -> None:
        """Keep `snapshot` as a GIF frame and its metrics in the log, when due."""
        step = getattr(snapshot, "step", 0)
        metrics = getattr(snapshot, "metrics", None)
        # A live snapshot may repeat numbers measured at an earlier step: they are logged once, there.
        measured = getattr(snapshot, "measured_at", None)
        measured = step if measured is None else measured
        if isinstance(metrics, dict) and (not self.log or self.log[-1]["step"] != measured):
            self.log.append({**metrics, "step": measured})
            if len(self.log) > self.max_log:   # thin evenly: keep every other record
                self.log = self.log[::2]
        if self.frames and step < self._next_frame_step:
            return
        self.frames.append(snapshot.as_frame() if hasattr(snapshot, "as_frame") else snapshot)
        if len(self.frames) > self.max_frames:   # keep every other frame: still evenly spread
            self.frames = self.frames[::2]
            self._frame_every *= 2
        self._next_frame_step = step + self._frame_every
