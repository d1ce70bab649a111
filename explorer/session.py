"""A page's handle on one training run in a worker process: start, pause, step, hot updates, snapshots.

The run itself lives in a worker (explorer/worker.py, started by explorer/pool.py); this object keeps
what the page reads (state, message, the latest snapshot, the frames for a GIF, the metrics log,
steps/s) up to date from the reports the worker sends, and turns the page's verbs into messages.
Nothing here trains or draws, so a page stays fast however hard its run trains.

The factory and the snapshot functions travel to the worker, so they must pickle: module-level
functions or functools.partial of them, with plain data (a config dataclass, a NumPy array).

Limits keep a hosted demo alive: a process-wide cap on runs training at once (EXPLORER_MAX_RUNS, set
by memory; beyond it a Start waits its turn in a queue, state "queued", and the run starts by itself), a
training-time cap per run (EXPLORER_MAX_SECONDS, enforced by the worker), a run nobody looks at
pauses (EXPLORER_IDLE_PAUSE_S) and later is released from its worker (EXPLORER_IDLE_STOP_S), and a
visitor's budget of runs started a minute (`budget`, EXPLORER_RUNS_PER_MIN).

A session given a run key (explorer/run_key.py) shares: its Start joins the run another visitor
trains with the same key, if there is one, or lists its own for others to join
(explorer/shared_runs.py). Every verb that would change a shared run (a hot update, a step, a pause,
the idle pause, a stop) first gives this session a private copy of it at its current step
(`_go_private`); a session without a key trains alone, as before.
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any, Callable, Iterable

from explorer import shared_runs
from explorer.hot_schedule import Change, merged
from explorer.limits import (  # noqa: F401
    VisitorBudget,
    acquire_slot,
    enqueue,
    env_number,
    forget,
    leave_queue,
    max_runs,
    minutes,
    queue_place,
    queued_count,
    release_slot,
    running_count,
    set_max_runs,
    wait_estimate_s,
)
from explorer.pool import Pool, WorkerDied, get_pool
from explorer.run_key import with_updates
from explorer.run_record import RunRecord

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 120.0   # a step or call waits at most this long (a first answer waits for torch's import)


class Session:
    """One training run in a worker process, driven by a page.

    trainer_factory() builds the trainer (anything with .step(n), .update(**hot) and .step_count) in
    the worker; a ValueError it raises about bad settings reaches the caller of prepare/start/step.
    snapshot_fn(trainer) turns the trainer into something drawable (plain arrays and floats); while
    training, the worker calls it once latest() has returned the last one and `snapshot_every_s`
    seconds have passed (every 2 s when nobody reads the run). still_snapshot_fn, if given,
    replaces it when the run stands still (after a manual step, on pause, at the end): the moment a
    user reads the numbers, so costly ones can be forced fresh. key: what the factory builds
    (explorer/run_key.py), to share its run with other sessions of the same key; None trains alone.
    """

    def __init__(self, trainer_factory: Callable[[], Any] | None, snapshot_fn: Callable[[Any], Any], *,
                 max_seconds: float | None = None, idle_pause_s: float | None = None,
                 idle_stop_s: float | None = None, steps_per_tick: int | None = None,
                 tick_s: float = 0.1, snapshot_every_s: float = 0.3, snapshot_share: float = 0.1,
                 max_frames: int = 60, max_log: int = 2000, hot_fields: Iterable[str] | None = None,
                 still_snapshot_fn: Callable[[Any], Any] | None = None, pool: Pool | None = None,
                 key: str | None = None) -> None:
        self._factory, self._snapshot_fn, self._still_fn = trainer_factory, snapshot_fn, still_snapshot_fn
        self._pool = pool
        # Training seconds allowed per run (paused time does not count); without a latest() call for
        # idle_pause_s a run pauses, and after idle_stop_s more it is released from its worker.
        self.max_seconds = max_seconds or env_number("EXPLORER_MAX_SECONDS", 600.0)
        self.idle_pause_s = idle_pause_s or env_number("EXPLORER_IDLE_PAUSE_S", 60.0)
        self.idle_stop_s = idle_stop_s or env_number("EXPLORER_IDLE_STOP_S", 900.0)
        # How the worker trains it: chunks of about tick_s (short, so pause and sliders are snappy; not
        # shorter, as each call of trainer.step costs about a tenth of a step for its checks and copies),
        # a snapshot at most every snapshot_every_s and rarer when slow (at most snapshot_share of the time).
        self.options = {"max_seconds": self.max_seconds, "steps_per_tick": steps_per_tick, "tick_s": tick_s,
                        "snapshot_every_s": snapshot_every_s, "snapshot_share": snapshot_share}
        self._record_size = (max_frames, max_log)   # GIF frames and metric records kept (explorer/run_record.py)
        self.hot_fields = tuple(hot_fields) if hot_fields is not None else None
        self.budget: VisitorBudget | None = None     # the visitor's runs a minute (set by ui/run_controls.py)
        self._lock = threading.Condition()          # guards every field below
        self._prepare_lock = threading.Lock()       # one trainer build at a time
        self._clear()
        self._key = self._base_key = key
        self._schedule: list[Change] = []           # hot changes planned by step (a link's, see reset)
        _WATCHED.add(self)
        weakref.finalize(self, forget, id(self))   # a session dropped unclosed gives back its slot and place

    def _clear(self) -> None:
        self._link: Any = None                 # the worker holding the run (None: not built yet)
        self._run_id: int | None = None
        self._seq = 0                          # state changes asked for; older reports do not undo them
        self._state, self._message = "idle", ""
        self._final = False                    # stopped for good: stop(), the time cap, a release
        self._snapshot: Any = None
        self._snapshot_still = False           # the snapshot came from still_snapshot_fn
        self._asked_after: Any = None          # the snapshot after which the worker was asked for a new one
        self._pending: dict[str, Any] = {}     # hot updates made before the run was built
        self._record = RunRecord(*self._record_size)   # GIF frames and the metrics log, bounded
        self._run_seconds, self._steps_per_s, self._last_poll = 0.0, 0.0, time.monotonic()
        self._idle_pausing = False             # the watchdog asked the worker to pause; no answer yet
        self._before_queue = "idle"            # the state to go back to when a queued run leaves the queue
        self._shared: Any = None               # the SharedRun watched (None: the run is this session's own)
        self._key: str | None = None           # what the run is, while others may share it (None: private)
        self._base_key: str | None = None      # the key given with the factory
        self._hot_since_key: dict = {}         # hot updates before the first step (they enter the key)
        # The run's hot changes as the worker applied them, each with its step, and what is left of the
        # plan a link gave (explorer/hot_schedule.py); both as of the worker's last report.
        self._changes: list[Change] = []
        self._changes_lost = False
        self._planned: list[Change] = []
        self._planned_done = 0

    # ------------------------------------------------------------------ what the page reads
    @property
    def state(self) -> str:
        """'idle' (not started), 'queued' (waiting for a slot), 'running', 'paused', 'stopped' or 'error'."""
        return self._state

    @property
    def message(self) -> str:
        """Why the run waits, paused, stopped or failed (empty while all is well)."""
        if self._state == "queued":
            return self._queue_message()
        return self._message

    @property
    def queue_place(self) -> int | None:   # 1 for the next run to start; None when not queued
        return queue_place(id(self)) if self._state == "queued" else None

    def wait_estimate_s(self) -> float | None:
        """Seconds until this queued run may start (None when not queued): see limits.wait_estimate_s.

        Built from the remaining training-time cap (max_seconds - run_seconds) of every run training
        in this process, and a full cap for each run queued ahead; an upper estimate, as runs that
        pause, end or close sooner free their slot sooner."""
        place = self.queue_place
        if place is None:
            return None
        remaining = {(id(s._link), s._run_id): s.max_seconds - s.run_seconds   # a shared run once
                     for s in list(_WATCHED) if s._state == "running"}
        return wait_estimate_s(place, list(remaining.values()), self.max_seconds)

    def _queue_message(self) -> str:
        place, wait = self.queue_place, self.wait_estimate_s()
        if place is None or wait is None:   # promoted a moment ago
            return ""
        ahead = "next in line" if place == 1 else f"number {place} in the queue"
        when = "in a moment" if wait < 1 else f"in at most about {_duration(wait)}"
        n = running_count()
        training = f"{n} run is training" if n == 1 else f"{n} runs are training"
        return (f"Queued: {training}, this box's limit. Your run is {ahead} and "
                f"starts by itself {when} (sooner if a run ahead pauses or ends). Pause leaves the queue.")

    @property
    def run_seconds(self) -> float:   # seconds spent training so far (paused time excluded)
        return self._run_seconds

    @property
    def steps_per_s(self) -> float:   # the run's recent speed while it trains (0 otherwise)
        return self._steps_per_s if self._state == "running" else 0.0

    @property
    def shared_with(self) -> int:
        """How many other sessions watch this session's run (0: it is this session's own)."""
        shared = self._shared
        return shared.others if shared is not None else 0

    @property
    def run_key(self) -> str | None:
        """The key others may share this run by; None once it is private (changed, stepped, paused)."""
        return self._key

    @property
    def worker_pid(self) -> int | None:   # the process holding the run (None before it is built)
        link = self._link
        return None if link is None else link.pid

    @property
    def changes(self) -> list[Change]:
        """The hot changes applied to the run so far, each with the step it took effect at, oldest first
        (visitors' and planned ones alike; the first MAX_CHANGES of them, see changes_lost)."""
        with self._lock:
            return list(self._changes)

    @property
    def changes_lost(self) -> bool:   # more hot changes were applied than `changes` holds
        return self._changes_lost

    @property
    def schedule(self) -> list[Change]:   # the hot changes planned by step, as reset was given them
        return list(self._schedule)

    @property
    def planned(self) -> list[Change]:
        """The planned changes (reset's schedule) not applied yet; [] once a visitor changed a setting."""
        with self._lock:
            return list(self._planned)

    @property
    def planned_done(self) -> int:   # how many of the schedule's changes have been applied
        return self._planned_done

    def wait_for_changes(self, count: int, timeout: float = 1.0) -> bool:
        """Wait until the worker reports at least `count` applied changes (or the run stands in no
        worker); True if it did. After update(), so that the page's link includes the change's step."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._changes) < count and self._run_id is not None and self._state != "error":
                left = deadline - time.monotonic()
                if left <= 0 or not self._lock.wait(left):
                    break
            return len(self._changes) >= count

    def latest(self, newer_than: Any = None, wait_s: float = 0.0) -> Any:
        """The most recent snapshot (None before the first); also tells the session someone watches.

        With newer_than (the snapshot a live view drew last) and wait_s, waits up to wait_s for a
        different one while the run trains: a redraw then brings a new picture instead of the old one
        again (the worker's snapshots and the page's redraws do not keep step).
        """
        deadline = time.monotonic() + wait_s
        self._ask_for_next()
        with self._lock:
            self._last_poll = time.monotonic()
            while newer_than is not None and self._snapshot is newer_than and self._state == "running":
                left = deadline - time.monotonic()
                if left <= 0 or not self._lock.wait(left):
                    break
            snapshot = self._snapshot
        self._ask_for_next()
        return snapshot

    def _ask_for_next(self) -> None:
        """Once per snapshot read while the run trains, ask the worker for the next one (it takes
        snapshots when asked, explorer/worker.py): while a page draws frame k, frame k + 1 is made."""
        with self._lock:
            snapshot, link, run_id = self._snapshot, self._link, self._run_id
            if snapshot is None or snapshot is self._asked_after or self._state != "running":
                return
            self._asked_after = snapshot
        if link is not None and link is not _RELEASED:
            try:
                link.send(("want", run_id))
            except WorkerDied:   # its reader thread ends the run with the reason
                pass

    def frames(self) -> list[Any]:
        """Snapshots kept for an animation (their as_frame() if they have one), oldest first, evenly spaced."""
        with self._lock:
            return list(self._record.frames)

    def metrics_log(self) -> list[dict]:
        """One record per snapshot that has a `metrics` dict: {"step": ..., **metrics}, oldest first."""
        with self._lock:
            return list(self._record.log)

    # ------------------------------------------------------------------ controls
    def prepare(self) -> None:
        """Build the trainer in a worker and take the step-0 snapshot, if not done yet.

        ValueError (from the factory) on bad settings, or with the budget's sentence when the visitor
        has started too many runs this minute; if the worker cannot be reached the run ends with a
        message instead."""
        with self._prepare_lock:
            with self._lock:
                if self._link is not None or self._final:
                    return
                if self._factory is None:
                    raise ValueError("This run has nothing to train yet.")
                refusal = self.budget.admit_run() if self.budget is not None else None
                if refusal:
                    raise ValueError(refusal)
                factory, pending, self._pending = self._factory, self._pending, {}
                key = self._key
            pool = self._pool or get_pool()
            link, run_id = pool.place(key), pool.next_id()
            link.attach(run_id, self)
            with self._lock:
                self._link, self._run_id = link, run_id
            options = {**self.options, "schedule": self._schedule} if self._schedule else self.options
            message = ("open", run_id, factory, self._snapshot_fn, self._still_fn, options, pending, pool.next_id())
            try:
                link.request(message, REQUEST_TIMEOUT_S)
            except (WorkerDied, TimeoutError) as err:
                self._end(run_id, str(err) or "The worker did not answer.")
            except BaseException:   # bad settings: as if nothing was built
                link.detach(run_id)
                with self._lock:
                    if self._run_id == run_id:
                        self._link, self._run_id = None, None
                        self._pending = {**pending, **self._pending}
                raise

    def start(self) -> bool:
        """Start (or resume) training in the worker, or, with every slot taken, join the queue (state
        'queued'): the run then starts by itself when its turn comes. False, with .message, if it cannot.

        With a key, joins the run another session trains with that key (no slot, no trainer built), or
        else lists its own run, once started, for others to join."""
        if self._join_shared():
            return True
        self.prepare()
        with self._lock:
            self._last_poll = time.monotonic()
            if self._state in ("running", "queued"):
                return True
            if self._state == "error" or self._final:
                self._say_ended_locked()
                return False
            if not acquire_slot(id(self)):
                self._before_queue = self._state
                enqueue(id(self))
                self._set_state_locked("queued")
                return True
            message = self._begin_locked()
        sent = self._send(message)
        if sent:
            self._offer_to_share()
        return sent
    resume = start

    def _begin_locked(self) -> tuple:
        """The start message for the worker, once this session holds a slot."""
        self._seq += 1
        self._state, self._message = "running", ""
        if self._link is not None and self._link is not _RELEASED:
            self._link.starting(self._run_id)   # placement counts it from now, not from the worker's report
        return ("start", self._run_id, self._seq)

    def pause(self, message: str = "", timeout: float = 10.0) -> None:
        """Pause; returns once the worker has stopped and drawn the run at the step where it stopped.
        A queued run leaves the queue instead; a shared run goes on for the others, and this session
        keeps a private copy paused at the run's current step."""
        if self._go_private(running=False, message=message):
            return
        with self._lock:
            if self._state == "queued":
                self._set_state_locked(self._before_queue, message if self._before_queue == "paused" else "")
                return
            if self._state != "running":
                return
            request = self._pause_locked(message)
        self._request(request, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop for good (the trainer stays in its worker for a checkpoint). Safe to call more than once.
        A shared run goes on for the others: what stops is this session's copy of it."""
        self._go_private(running=False)
        with self._lock:
            if self._state != "error":
                self._set_state_locked("stopped", self._message if self._state == "stopped" else "Stopped.")
            self._final = True
            if self._run_id is None or self._shared is not None:   # still shared: it has ended for all
                return
            self._seq += 1
            request = ("stop", self._run_id, self._seq, self._message, self._next_req())
        self._request(request, timeout)

    def close(self, message: str = "") -> None:
        """Stop for good and release the run from its worker (a closed tab, a long idle time).
        A shared run goes on for the others; the last to close it ends it."""
        left = self._leave_shared()
        with self._lock:
            if self._state != "error":
                self._set_state_locked("stopped", message or self._message or "Stopped.")
            self._final = True
            link, run_id = (None, None) if left else (self._link, self._run_id)
            self._link = _RELEASED if self._link is not None else None
        self._release(link, run_id)

    def reset(self, trainer_factory: Callable[[], Any] | None = None, key: str | None = None,
              schedule: Iterable[Change] = ()) -> None:
        """Release the run and forget every snapshot; the next start builds a fresh trainer (or, with
        the key of what trainer_factory builds, joins the run another session trains with that key).
        Without a key the next run is private, even for the same factory: a visitor who resets means
        to start again at step 0. A shared run goes on for the others.

        schedule: hot changes the worker applies at exactly their steps (a link's, explorer/hot_schedule.py),
        until this session changes a setting itself; the key must then cover them (run_key's schedule)."""
        left = self._leave_shared()
        with self._lock:
            link, run_id = (None, None) if left else (self._link, self._run_id)
            forget(id(self))
            if trainer_factory is not None:
                self._factory = trainer_factory
            self._clear()
            self._key = self._base_key = key
            self._schedule = merged(schedule)
            self._planned = list(self._schedule)
        self._release(link, run_id)

    def update(self, **hot: Any) -> None:
        """Change hot settings (learning rates, lambda, ...); the worker applies them at the next step."""
        if self.hot_fields is not None:
            unknown = sorted(set(hot) - set(self.hot_fields))
            if unknown:
                raise ValueError(f"{', '.join(unknown)} cannot change during a run; only "
                                 f"{', '.join(self.hot_fields)} can. Reset to change the others.")
        if self._go_private(running=self._state == "running", hot=hot):
            return
        with self._lock:
            if self._key is not None:   # not trained yet: what it is now includes these settings
                self._hot_since_key = {**self._hot_since_key, **hot}
                self._key = with_updates(self._base_key, self._hot_since_key)
            if self._run_id is None:
                self._pending.update(hot)
                return
            message = ("update", self._run_id, dict(hot))
        self._send(message)

    def step(self, n: int = 1, timeout: float = REQUEST_TIMEOUT_S) -> Any:
        """Train n steps now (while paused or before Start) and return the new snapshot. A run stepped
        by hand is private from then on (a shared one: this session's copy of it)."""
        with self._lock:
            if self._state == "error" or self._final:
                self._say_ended_locked()
                return self._snapshot
        self._go_private(running=self._state == "running")
        with self._lock:
            self._key = None
        self.prepare()
        with self._lock:
            if self._run_id is None or self._link is _RELEASED:
                return self._snapshot
            request = ("step", self._run_id, int(n), self._next_req())
        self._request(request, timeout)   # the worker's report (the new snapshot) arrives first
        return self.latest()

    def call(self, fn: Callable[[Any], Any], timeout: float = REQUEST_TIMEOUT_S) -> Any:
        """fn(trainer) in the worker, between two chunks of steps (e.g. checkpoint_bytes); its result.

        fn must pickle. Its exception is raised here; WorkerDied if the run's worker is gone."""
        self.prepare()
        with self._lock:
            link, run_id = self._link, self._run_id
        if link is None or link is _RELEASED:
            raise WorkerDied("This run has been released; press Reset to start a new one.")
        return link.request(("call", run_id, fn, self._next_req()), timeout)

    # ------------------------------------------------------------------ reports from the worker
    def _on_report(self, run_id: int, info: dict, snapshot: Any) -> None:
        """A run report (explorer/worker.py), in the pool's reader thread."""
        with self._lock:
            if run_id != self._run_id:
                return            # a run this session has let go of
            # While queued only the end of the run (an error, a final stop) may change the state.
            if info["seq"] >= self._seq and (self._state != "queued" or info["state"] == "error" or info["final"]):
                if info["state"] != self._state or info["message"] != self._message:
                    self._set_state_locked(info["state"], info["message"])
                self._final = self._final or info["final"]
                self._idle_pausing = False
            self._run_seconds, self._steps_per_s = info["run_seconds"], info["steps_per_s"]
            self._changes, self._changes_lost = info["changes"], info["changes_lost"]
            self._planned, self._planned_done = info["planned"], info["planned_done"]
            if snapshot is not None:
                self._store_locked(snapshot, still=info["still"] or self._still_fn is None)
            self._lock.notify_all()

    def _on_worker_died(self, run_id: int, why: str) -> None:
        self._end(run_id, why)

    def _end(self, run_id: int, why: str) -> None:
        with self._lock:
            if run_id == self._run_id:
                self._set_state_locked("error", why)
                self._final = True

    # ------------------------------------------------------------------ sharing (explorer/shared_runs.py)
    def _join_shared(self) -> bool:
        """Watch the run another session trains with this session's key, if there is one; True if so.
        This session's own step-0 trainer, if built, is released."""
        with self._lock:
            key = self._key
            if key is None or self._shared is not None or self._final or self._state not in ("idle", "queued"):
                return False
        pool = self._pool or get_pool()
        shared = shared_runs.find(pool, key)
        if shared is not None:
            return shared.join(self)
        return shared_runs.watch_listed(self, pool, key)   # another replica's run of the key, on Ray

    def _watch(self, shared: Any, source: "Session") -> None:
        """Take up `source`'s view of `shared` (called by SharedRun.join with its lock held)."""
        with source._lock:
            view = (source._state, source._message, source._final, source._snapshot, source._snapshot_still,
                    source._record.copy(), source._run_seconds, source._steps_per_s)
            plan = (list(source._changes), source._changes_lost, list(source._planned), source._planned_done)
        with self._lock:
            own = (self._link, self._run_id)
            self._link, self._run_id, self._shared = shared.link, shared.run_id, shared
            self._seq = max(self._seq, shared.seq)
            self._pending = {}   # already in the key, so already in the shared run
            state, message, self._final, self._snapshot, self._snapshot_still, self._record, \
                self._run_seconds, self._steps_per_s = view
            self._changes, self._changes_lost, self._planned, self._planned_done = plan
            self._set_state_locked(state, message)   # leaves the queue, if it was queued
        self._release(*own)

    def _watch_listed(self, shared: Any) -> None:
        """Watch `shared`, another server's run found in its key's actor, from its next report on (called
        by shared_runs.watch_listed with the SharedRun's lock held). The frames and log that server
        kept stay there: this session's view of the run begins now."""
        with self._lock:
            own = (self._link, self._run_id)
            self._link, self._run_id, self._shared = shared.link, shared.run_id, shared
            self._seq = 0   # the other server numbers the run's state changes: each of its reports counts
            self._pending, self._final = {}, False
            self._record = RunRecord(*self._record_size)
            self._set_state_locked("running")   # no slot: the run trains for its lister, who holds one
        self._release(*own)

    def _offer_to_share(self) -> None:
        """List this session's run, just started, as its key's run for others to join; if another run
        of that key was listed a moment earlier, this one trains privately."""
        with self._lock:
            key, link, run_id, seq = self._key, self._link, self._run_id, self._seq
            if key is None or self._shared is not None or self._state != "running":
                return
        # The key's actor lists it for every replica first (on a local pool there are none): where
        # another server's run is listed already, this one trains alone.
        listed = link.list_shared(run_id)
        if not listed or shared_runs.share(self, self._pool or get_pool(), key, link, run_id, seq) is None:
            if listed:
                link.unlist_shared(run_id)
            with self._lock:
                self._key = None

    def _go_private(self, running: bool, hot: dict | None = None, message: str = "") -> bool:
        """Before a change to a shared run: make the run this session's own.

        Alone with it, the session simply keeps it (False: the caller goes on as for a private run).
        Otherwise the worker copies it at its current step (weights, optimizers, random state,
        history) and this session watches the copy: training if `running` (or queued for a slot),
        else paused with `message`, with `hot` applied before its first step; True. True too,
        changing nothing, when the shared run has ended: there is nothing left to change."""
        shared = self._shared
        if shared is None:
            return False
        if self._final:
            return True
        pool = self._pool or get_pool()
        new_id, req = pool.next_id(), pool.next_id()
        # A copy that will train goes where fewer runs train (Pool.place_copy), exported from the
        # shared run's worker; None: it is made beside the shared run, as it always can be. Alone
        # with the run, the session keeps it (below): nothing to export.
        target = pool.place_copy(shared.link) if running and shared.others > 0 else shared.link
        blob = self._export(shared) if target is not shared.link else None
        link = target if blob is not None else shared.link
        with shared.lock:   # no report, join or leave meanwhile
            if shared.others == 0:
                shared.hand_over(self)
                with self._lock:
                    self._shared = self._key = None
                return False
            shared.watchers.discard(self)
            last_here = not shared.watchers   # the others watch from other servers: let go of it after the fork
            link.attach(new_id, self)
            with self._lock:
                self._shared, self._key, self._run_id, self._idle_pausing = None, None, new_id, False
                self._link = link
                self._seq += 1
                go = running and acquire_slot(id(self))
                if running and not go:   # no slot free: the copy waits in the queue, paused
                    self._before_queue = "paused"
                    enqueue(id(self))
                    self._set_state_locked("queued")
                elif not go:
                    self._set_state_locked("paused", message)
                if blob is None:
                    fork = ("fork", shared.run_id, new_id, go, self._seq, dict(hot or {}), message, req)
                else:
                    fork = ("adopt", new_id, blob, go, self._seq, dict(hot or {}), message, req)
                if go:
                    link.starting(new_id)
            try:
                answer = link.ask(fork)
            except WorkerDied as err:
                answer = None
                self._end(new_id, str(err))
            if last_here:
                shared.leave(None)
        try:
            if answer is not None:
                answer.result(REQUEST_TIMEOUT_S)
        except (RuntimeError, TimeoutError) as err:   # WorkerDied too; a trainer that does not copy
            self._end(new_id, str(err) or "The worker did not answer in time.")
        return True

    def _export(self, shared: Any) -> bytes | None:
        """The shared run as its worker pickles it now (worker.py's "export"), for a copy elsewhere;
        None if it cannot be (a trainer that does not pickle, a worker gone or slow)."""
        try:
            return shared.link.request(("export", shared.run_id, self._next_req()), REQUEST_TIMEOUT_S)
        except (RuntimeError, TimeoutError):   # WorkerDied too: the in-place fork then says so
            return None

    def _leave_shared(self) -> bool:
        """Stop watching a shared run (the last watcher ends it); True if this session watched one."""
        shared = self._shared
        if shared is None:
            return False
        shared.leave(self)
        with self._lock:
            self._shared = self._key = None
        return True

    # ------------------------------------------------------------------ housekeeping
    def _check_idle(self, now: float) -> None:
        """Pause a run nobody polls; release it after a long pause; start a queued run whose turn has
        come (the watchdog thread calls this)."""
        release = False
        with self._lock:
            idle = now - self._last_poll
            join = self._state == "queued" and self._key is not None and idle < self.idle_pause_s
            leave = self._state == "running" and self._shared is not None and idle >= self.idle_pause_s
        idle_message = (f"Paused: nobody has looked at this run for {minutes(self.idle_pause_s)}. "
                        "Press Resume to continue.")
        if join and self._join_shared():   # a run of its key started meanwhile: watch it
            return
        if leave and self._go_private(running=False, message=idle_message):
            return
        with self._lock:
            idle = now - self._last_poll
            if self._state == "queued":
                request = self._check_queue_locked(idle)
            elif self._state == "running" and idle >= self.idle_pause_s and not self._idle_pausing:
                # Not shown as paused before the worker says so, with the picture of where it stopped.
                self._idle_pausing = True
                request = self._pause_locked(idle_message, show=False)
            else:
                request = None
                release = (self._state == "paused" and idle >= self.idle_stop_s and self._run_id is not None
                           and self._link is not _RELEASED)
        if request is not None:
            # The reply comes to nobody: the watchdog does not wait. A queued run that starts now
            # lists itself for others (its key) once started.
            if self._send(request) and request[0] == "start":
                self._offer_to_share()
        elif release:
            self.close(f"Released after {minutes(self.idle_stop_s)} without a viewer; the last "
                       "picture stays. Press Reset to start a new run.")

    def _check_queue_locked(self, idle: float) -> tuple | None:
        """A queued run whose turn has come starts (its start message, to send once unlocked); one
        nobody looks at (a closed tab) leaves the queue."""
        if idle >= self.idle_pause_s:
            self._set_state_locked(self._before_queue, f"Left the queue: nobody has looked at this run for "
                                   f"{minutes(self.idle_pause_s)}. Press Start to queue again.")
        elif acquire_slot(id(self)):
            message = self._begin_locked()
            self._lock.notify_all()
            return message
        return None

    def _pause_locked(self, message: str, show: bool = True) -> tuple:
        """The pause message for the worker; show: say "paused" now rather than when it answers."""
        self._seq += 1
        if show:
            self._set_state_locked("paused", message)
        return ("pause", self._run_id, self._seq, message, self._next_req())

    def _next_req(self) -> int:
        return (self._pool or get_pool()).next_id()

    def _send(self, message: tuple) -> bool:
        link = self._link
        try:
            if link is None or link is _RELEASED:
                raise WorkerDied("This run has been released; press Reset to start a new one.")
            link.send(message)
            return True
        except WorkerDied as err:
            self._end(message[1], str(err))
            return False

    def _request(self, message: tuple, timeout: float) -> None:
        link = self._link
        if link is None or link is _RELEASED:
            return
        try:
            link.request(message, timeout)
        except (WorkerDied, TimeoutError) as err:
            self._end(message[1], str(err) or "The worker did not answer in time.")
        except RuntimeError:    # the run was closed meanwhile (a reset)
            pass

    def _release(self, link: Any, run_id: int | None) -> None:
        if link is None or link is _RELEASED or run_id is None:
            return
        link.detach(run_id)
        try:
            link.send(("close", run_id))
        except WorkerDied:
            pass

    def _set_state_locked(self, state: str, message: str = "") -> None:
        self._state, self._message = state, message
        if state != "running":
            release_slot(id(self))     # only start() and the queue take a slot (and set "running" themselves)
        if state != "queued":
            leave_queue(id(self))
        self._lock.notify_all()

    def _say_ended_locked(self) -> None:
        if "Press Reset" not in self._message:
            self._message = (self._message or "This run has ended.") + " Press Reset to start a new one."

    def _store_locked(self, snapshot: Any, still: bool = False) -> None:
        """Make `snapshot` the latest; keep it as a GIF frame and its metrics in the log when due."""
        self._snapshot, self._snapshot_still = snapshot, still
        self._record.add(snapshot)


def _duration(seconds: float) -> str:
    """'40 seconds', '3 minutes': a wait in round words."""
    return f"{seconds / 60:.0f} minutes" if seconds >= 90 else f"{max(1.0, seconds):.0f} seconds"


class _Released:
    """Stands for the worker of a run that was released: nothing more can be asked of it."""
    pid = None


_RELEASED: Any = _Released()


# ----------------------------------------------------------------------------- the idle watchdog
_WATCHED: "weakref.WeakSet[Session]" = weakref.WeakSet()
WATCH_EVERY_S = 0.25


def _watch() -> None:
    while True:
        time.sleep(WATCH_EVERY_S)
        now = time.monotonic()
        for session in list(_WATCHED):
            try:
                session._check_idle(now)
            except Exception:   # one broken session must not stop the others' limits
                log.exception("idle check failed")


threading.Thread(target=_watch, name="explorer-idle-watch", daemon=True).start()
