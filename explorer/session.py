"""A training run in a background thread: start, pause, resume, step, hot updates, snapshots, limits.

Only the session's worker thread touches its trainer (steps, snapshots, and `call` for checkpoints), so
models need no lock; the worker never touches Streamlit: progress leaves as snapshots the page reads
with `latest()`. Limits keep a hosted demo alive: a process-wide cap on runs training at once
(EXPLORER_MAX_RUNS), a training-time cap per run (EXPLORER_MAX_SECONDS), and a run nobody polls pauses
(EXPLORER_IDLE_PAUSE_S) and much later ends its thread (EXPLORER_IDLE_STOP_S; Resume brings it back).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Iterable

from explorer.limits import (acquire_slot, env_number, free_gpu_memory, max_runs, minutes,  # noqa: F401
                             out_of_memory_message, release_slot, running_count, set_max_runs)

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- the session
class Session:
    """One training run driven by a background thread.

    trainer_factory() builds the trainer (anything with .step(n) and .update(**hot)); it is called in
    the caller's thread by `prepare`/`start`/`step`, so a ValueError about bad settings reaches the page.
    snapshot_fn(trainer) turns the trainer into something drawable; the worker calls it every
    `snapshot_every_s` seconds while training, after a manual step, on pause and at the end.
    still_snapshot_fn, if given, replaces it when the run stands still (after a manual step, on
    pause, at the end): the moment a user reads the numbers, so costly ones can be forced fresh.
    """

    def __init__(self, trainer_factory: Callable[[], Any], snapshot_fn: Callable[[Any], Any], *,
                 max_seconds: float | None = None, idle_pause_s: float | None = None,
                 idle_stop_s: float | None = None, steps_per_tick: int | None = None,
                 tick_s: float = 0.05, snapshot_every_s: float = 0.3, snapshot_share: float = 0.1,
                 max_frames: int = 60, max_log: int = 2000, hot_fields: Iterable[str] | None = None,
                 torch_threads: int | None = None,
                 still_snapshot_fn: Callable[[Any], Any] | None = None) -> None:
        self._factory, self._snapshot_fn = trainer_factory, snapshot_fn
        self._still_snapshot_fn = still_snapshot_fn or snapshot_fn
        # Training seconds allowed per run (paused time does not count); without a latest() call for
        # idle_pause_s a run pauses, and after idle_stop_s its thread ends.
        self.max_seconds = max_seconds or env_number("EXPLORER_MAX_SECONDS", 600.0)
        self.idle_pause_s = idle_pause_s or env_number("EXPLORER_IDLE_PAUSE_S", 60.0)
        self.idle_stop_s = idle_stop_s or env_number("EXPLORER_IDLE_STOP_S", 900.0)
        self.steps_per_tick = steps_per_tick   # None: adapt so one chunk takes about tick_s seconds
        self.tick_s = tick_s                   # short chunks keep pause and slider changes snappy
        # A snapshot at most every snapshot_every_s, and rarer when it is slow: snapshots may take
        # at most snapshot_share of the training time (a 128x128 critic field costs ~2 steps).
        self.snapshot_every_s, self.snapshot_share = snapshot_every_s, snapshot_share
        self.max_frames = max(2, int(max_frames))   # snapshots kept for the GIF, evenly spread over steps
        self.max_log = max(2, int(max_log))         # metric records kept (thinned evenly beyond)
        self.hot_fields = tuple(hot_fields) if hot_fields is not None else None
        # One intra-op thread per run: on a small box two visitors then get a core each.
        self.torch_threads = torch_threads or int(env_number("EXPLORER_TORCH_THREADS", 1, int))
        self._lock = threading.Condition()     # guards every field below
        self._thread: threading.Thread | None = None
        self._serving = False                  # the worker takes requests (from start to its exit)
        self._busy = False                     # the worker is inside a chunk of steps
        self._requests: list[tuple[Callable[[Any], Any], Future]] = []   # run on the worker
        self._clear()

    def _clear(self) -> None:
        self._state, self._message = "idle", ""
        self._final = False                    # stopped for good: stop() or the time cap
        self._trainer: Any = None
        self._snapshot: Any = None
        self._snapshot_still = False           # the snapshot came from still_snapshot_fn
        self._pending: dict[str, Any] = {}     # hot updates for the next step
        self._frames: list[Any] = []           # snapshots for a GIF, bounded; and per snapshot
        self._log: list[dict] = []             # {"step", **snapshot.metrics}, bounded
        self._frame_every, self._next_frame_step = 1, 0   # GIF frame spacing in steps; doubles when full
        self._run_seconds, self._last_poll = 0.0, time.monotonic()
        self._chunk = self.steps_per_tick or 1

    # ------------------------------------------------------------------ what the page reads
    @property
    def state(self) -> str:
        """'idle' (not started), 'running', 'paused', 'stopped' or 'error'."""
        return self._state

    @property
    def message(self) -> str:
        """Why the run paused, stopped or failed (empty while all is well)."""
        return self._message

    @property
    def run_seconds(self) -> float:   # seconds spent training so far (paused time excluded)
        return self._run_seconds

    @property
    def thread(self) -> threading.Thread | None:   # the worker (None before the first start)
        return self._thread

    def latest(self) -> Any:
        """The most recent snapshot (None before the first); also tells the session someone watches."""
        with self._lock:
            self._last_poll = time.monotonic()
            return self._snapshot

    def frames(self) -> list[Any]:
        """Snapshots kept for an animation (their as_frame() if they have one), oldest first, evenly spaced."""
        with self._lock:
            return list(self._frames)

    def metrics_log(self) -> list[dict]:
        """One record per snapshot that has a `metrics` dict: {"step": ..., **metrics}, oldest first."""
        with self._lock:
            return list(self._log)

    # ------------------------------------------------------------------ controls
    def prepare(self) -> None:
        """Build the trainer and take the step-0 snapshot, if not done yet (ValueError on bad settings)."""
        with self._lock:
            if self._trainer is not None:
                return
        trainer = self._factory()
        snapshot = self._snapshot_fn(trainer)
        with self._lock:
            if self._trainer is None:
                self._trainer = trainer
                self._apply_pending_locked()
                self._store_locked(snapshot)

    def start(self) -> bool:
        """Start (or resume) training in the background. False, with .message, if it cannot."""
        self.prepare()
        with self._lock:
            self._last_poll = time.monotonic()
            if self._state == "running":
                return True
            if self._state == "error" or self._final:
                self._say_ended_locked()
                return False
            if not acquire_slot(id(self)):
                self._message = (f"The explorer is already training {max_runs()} runs for other visitors, "
                                 "its limit. Please try again in a minute.")
                return False
            self._state, self._message = "running", ""
            self._ensure_thread_locked()
            self._lock.notify_all()
            return True
    resume = start

    def pause(self, message: str = "", timeout: float = 10.0) -> None:
        """Pause; returns once the current chunk of steps is done and drawn (the thread stays, waiting)."""
        with self._lock:
            if self._state == "running":
                self._set_state_locked("paused", message)
            self._lock.wait_for(lambda: not self._busy, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop for good and join the thread. Safe to call more than once (Streamlit's on_release)."""
        with self._lock:
            if self._state != "error":
                self._set_state_locked("stopped", self._message if self._state == "stopped" else "Stopped.")
            self._final = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def reset(self, trainer_factory: Callable[[], Any] | None = None) -> None:
        """Stop, forget the trainer and every snapshot; the next start builds a fresh trainer."""
        self.stop()
        with self._lock:
            if trainer_factory is not None:
                self._factory = trainer_factory
            self._thread = None
            self._clear()

    def update(self, **hot: Any) -> None:
        """Change hot settings (learning rates, lambda, ...); they apply at the next step."""
        if self.hot_fields is not None:
            unknown = sorted(set(hot) - set(self.hot_fields))
            if unknown:
                raise ValueError(f"{', '.join(unknown)} cannot change during a run; only "
                                 f"{', '.join(self.hot_fields)} can. Reset to change the others.")
        with self._lock:
            self._pending.update(hot)
            if self._trainer is not None and not self._serving:
                self._apply_pending_locked()      # nobody else is touching the trainer

    def step(self, n: int = 1, timeout: float = 60.0) -> Any:
        """Train n steps now (while paused or before Start) and return the new snapshot."""
        def steps(trainer: Any) -> Any:
            trainer.step(n)            # (pending updates were applied by update() or the worker)
            snapshot = self._still_snapshot_fn(trainer)
            with self._lock:
                self._store_locked(snapshot, still=True)
            return snapshot
        with self._lock:
            if self._state == "error" or self._final:
                self._say_ended_locked()
                return self._snapshot
        try:
            return self.call(steps, timeout=timeout)
        except Exception as err:  # a step that diverges: report like the worker would
            with self._lock:
                self._fail_locked(err)
        free_gpu_memory()   # (after the except block, which held the failed step's tensors)
        return self._snapshot

    def call(self, fn: Callable[[Any], Any], timeout: float = 60.0) -> Any:
        """Run fn(trainer) between two chunks of steps (e.g. trainer.state_dict()) and return its result."""
        self.prepare()
        with self._lock:   # (re-entrant) held so no worker can start while fn runs here
            if not self._serving:   # no worker: the trainer is ours alone for the moment
                return fn(self._trainer)
            future: Future = Future()
            self._requests.append((fn, future))
            self._lock.notify_all()
        return future.result(timeout)

    # ------------------------------------------------------------------ worker thread
    def _ensure_thread_locked(self) -> None:
        if not self._serving:
            self._serving = True
            self._thread = threading.Thread(target=self._work, name=f"explorer-session-{id(self):x}", daemon=True)
            self._thread.start()

    def _serve(self, requests: list[tuple[Callable[[Any], Any], Future]]) -> None:
        for fn, future in requests:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(self._trainer))
                except BaseException as err:  # handed to the caller, who decides
                    future.set_exception(err)

    def _finish(self) -> None:   # the worker's last act: answer what is queued; callers then run directly
        with self._lock:
            self._serving = False
            requests, self._requests = self._requests, []
        self._serve(requests)

    def _set_state_locked(self, state: str, message: str = "") -> None:
        self._state, self._message = state, message
        release_slot(id(self))      # only start() takes a slot (and sets "running" itself)
        self._lock.notify_all()

    def _say_ended_locked(self) -> None:
        if "Press Reset" not in self._message:
            self._message = (self._message or "This run has ended.") + " Press Reset to start a new one."

    def _fail_locked(self, err: BaseException) -> None:
        log.warning("training run failed", exc_info=err)   # the last good snapshot stays
        self._set_state_locked("error", out_of_memory_message(err) or str(err) or type(err).__name__)

    def _apply_pending_locked(self) -> None:
        if self._pending:
            hot, self._pending = self._pending, {}
            try:
                self._trainer.update(**hot)
            except ValueError as err:   # a bad value: say so, keep training with the old one
                self._message = f"Could not change {', '.join(hot)}: {err}"

    def _store_locked(self, snapshot: Any, still: bool = False) -> None:
        """Make `snapshot` the latest; keep it as a GIF frame and its metrics in the log when due.
        still: it came from still_snapshot_fn."""
        self._snapshot, self._snapshot_still = snapshot, still or self._still_snapshot_fn is self._snapshot_fn
        step = getattr(snapshot, "step", getattr(self._trainer, "step_count", 0))
        metrics = getattr(snapshot, "metrics", None)
        if isinstance(metrics, dict) and (not self._log or self._log[-1]["step"] != step):
            self._log.append({"step": step, **metrics})
            if len(self._log) > self.max_log:   # thin evenly: keep every other record
                self._log = self._log[::2]
        if self._frames and step < self._next_frame_step:
            return
        self._frames.append(snapshot.as_frame() if hasattr(snapshot, "as_frame") else snapshot)
        if len(self._frames) > self.max_frames:   # keep every other frame: still evenly spread
            self._frames = self._frames[::2]
            self._frame_every *= 2
        self._next_frame_step = step + self._frame_every

    def _work(self) -> None:
        import torch
        torch.set_num_threads(self.torch_threads)
        try:
            self._loop()
        finally:
            if self._state == "error":   # _loop has returned: the failed step's tensors are gone
                free_gpu_memory()
            self._finish()

    def _loop(self) -> None:
        last_snapshot, snapshot_cost = time.monotonic(), 0.0
        while True:
            with self._lock:
                self._apply_pending_locked()   # before requests: a checkpoint sees the new values
                requests, self._requests = self._requests, []
            self._serve(requests)
            with self._lock:
                if self._requests:
                    continue
                idle = time.monotonic() - self._last_poll
                if self._state == "running" and self._run_seconds >= self.max_seconds:
                    self._set_state_locked("stopped", f"Stopped after {minutes(self.max_seconds)} of training, "
                                           "the limit per run. Download the checkpoint to keep it, or press Reset.")
                    self._final = True
                elif self._state == "running" and idle >= self.idle_pause_s:
                    self._set_state_locked("paused", f"Paused: nobody has looked at this run for "
                                           f"{minutes(self.idle_pause_s)}. Press Resume to continue.")
                elif self._state == "paused" and idle >= self.idle_stop_s:
                    self._set_state_locked("stopped", "Stopped its thread after a long time without a "
                                           "viewer. Press Resume to continue.")
                if self._state in ("stopped", "error"):
                    self._take_final_snapshot_locked()
                    return
                if self._state != "running":
                    self._lock.wait(timeout=0.25)
                    continue
                n, self._busy = self._chunk, True
            t0, snapshot = time.monotonic(), None
            try:
                self._trainer.step(n)
                dt = time.monotonic() - t0
                if time.monotonic() - last_snapshot >= max(self.snapshot_every_s, snapshot_cost / self.snapshot_share):
                    t1 = time.monotonic()
                    snapshot, last_snapshot = self._snapshot_fn(self._trainer), time.monotonic()
                    snapshot_cost = last_snapshot - t1
            except Exception as err:   # Diverged, or a bug: the page shows the message, not a traceback
                with self._lock:
                    self._busy = False
                    self._fail_locked(err)
                return
            with self._lock:
                self._run_seconds += time.monotonic() - t0
                if snapshot is not None:
                    self._store_locked(snapshot)
                if self.steps_per_tick is None and dt > 0:   # chunks of ~tick_s; at most 2x change
                    self._chunk = int(max(1, min(2 * n, max(n // 2, n * self.tick_s / dt), 10_000)))
                if self._state != "running":
                    self._take_final_snapshot_locked()
                self._busy = False
                self._lock.notify_all()

    def _take_final_snapshot_locked(self) -> None:
        """After a pause or a stop, show the weights as they are now (not ~snapshot_every_s ago)."""
        step = getattr(self._trainer, "step_count", None)
        if self._state == "error" or self._trainer is None or (
                self._snapshot_still and getattr(self._snapshot, "step", -1) == step):
            return
        try:
            self._store_locked(self._still_snapshot_fn(self._trainer), still=True)
        except Exception as err:  # drawing failed: keep the older snapshot, say why
            self._message = (self._message + f" (could not draw the last state: {err})").strip()

