"""Runs that several visitors watch: one run in a worker, trained once for everyone who starts its key.

A Session given a run key (explorer/run_key.py) that presses Start while another visitor trains the
same key joins that run instead of building its own. The SharedRun is the worker link's subscriber
for the run: it hands every report to each watcher, so all of them see the same steps, snapshots,
frames and metrics log (one who joins later gets the frames and log kept so far). It holds one
training slot (explorer/limits.py), however many watch.

Nobody changes a shared run. A watcher who changes a hot setting, steps, pauses (by hand or by the
idle rule) or stops gets a private copy, made in the worker at the run's current step
(Session._go_private, explorer/fork.py); the others' run goes on unchanged. A watcher left alone
keeps the run itself, now private. Closing or resetting only leaves: the last watcher to leave ends
the run in its worker, and so does a report that finds every watcher gone.

Locks: a SharedRun's lock is held while a report reaches its watchers, so a joiner copies a view no
report is changing. Its lock comes before a Session's lock and before the registry's, never after.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any

from explorer.limits import release_slot, transfer_slot

_LOCK = threading.Lock()
_OPEN: dict[tuple[int, str], "SharedRun"] = {}   # (id(pool), key) -> the run a Start with that key joins


class SharedRun:
    """One run in a worker and the sessions that watch it (see the module docstring)."""

    def __init__(self, pool: Any, key: str, link: Any, run_id: int, seq: int, starter: Any):
        self.pool, self.key, self.link, self.run_id = pool, key, link, run_id
        self.seq = seq                            # the state change that started it (watchers take it up)
        self.lock = threading.RLock()
        self.watchers: weakref.WeakSet = weakref.WeakSet([starter])
        self.open = True                          # in the registry: a Start with its key joins it

    @property
    def others(self) -> int:
        """Watchers, less one (the asking one): how many other visitors see this run, here and through
        other servers (replicas of the app sharing a Ray cluster; none on a local pool)."""
        return max(0, len(self.watchers) - 1) + self.link.other_servers(self.run_id)

    # ------------------------------------------------------------------ from the pool's reader thread
    def _on_report(self, run_id: int, info: dict, snapshot: Any) -> None:
        with self.lock:
            if info["final"] or info["state"] in ("stopped", "error"):   # ended: nobody joins it any more
                self._unlist()
            watchers = list(self.watchers)
            for watcher in watchers:
                watcher._on_report(run_id, info, snapshot)
            if not watchers:   # every watcher was dropped without leaving
                self._end()

    def _on_worker_died(self, run_id: int, why: str) -> None:
        with self.lock:
            self._unlist()
            for watcher in list(self.watchers):
                watcher._on_worker_died(run_id, why)

    # ------------------------------------------------------------------ watchers come and go
    def join(self, session: Any) -> bool:
        """`session` watches this run from now on, with the view of it kept so far; False if it has
        ended or nobody watches it any more."""
        with self.lock:
            source = next(iter(self.watchers), None)
            if not self.open or source is None or not self.link.alive:
                return False
            session._watch(self, source)
            self.watchers.add(session)
            return True

    def leave(self, session: Any) -> None:
        """`session` stops watching (None: nobody leaves, but none may be left); the run ends in its
        worker when nobody else watches, here or through another server."""
        with self.lock:
            if session is not None:
                self.watchers.discard(session)
            if not self.watchers:
                self._end()

    def hand_over(self, session: Any) -> None:
        """The run becomes `session`'s own (it watches alone): unlisted, its slot and reports go to it.
        Call with the lock held."""
        transfer_slot(id(self), id(session))
        self._unlist()
        self.link.unlist_shared(self.run_id)   # no other server may join it now
        self.link.attach(self.run_id, session)
        self.watchers.discard(session)

    def _unlist(self) -> None:
        if self.open:
            self.open = False
            with _LOCK:
                if _OPEN.get((id(self.pool), self.key)) is self:
                    del _OPEN[(id(self.pool), self.key)]
            release_slot(id(self))

    def _end(self) -> None:
        from explorer.pool import WorkerDied
        self._unlist()
        self.link.detach(self.run_id)
        if self.link.unlist_shared(self.run_id) > 0:   # another server's visitors still watch it
            return
        try:
            self.link.send(("close", self.run_id))
        except WorkerDied:
            pass


def find(pool: Any, key: str) -> SharedRun | None:
    """The run a Start with `key` on `pool` would join, if one trains."""
    with _LOCK:
        run = _OPEN.get((id(pool), key))
    return run if run is not None and run.pool is pool and run.link.alive else None


def share(session: Any, pool: Any, key: str, link: Any, run_id: int, seq: int) -> SharedRun | None:
    """List `session`'s run (just started, with its training slot) as the run of `key` that others
    join; None if another run of that key is listed already (two Starts at the same moment)."""
    run = SharedRun(pool, key, link, run_id, seq, session)
    with run.lock:   # a joiner waits until the reports come here
        with session._lock:
            # Paused or closed since it started (its start may come from the queue, in another
            # thread, while the visitor leaves): nothing to list, nobody would ever end it.
            if session._state != "running" or session._shared is not None or session._run_id != run_id:
                return None
            with _LOCK:
                taken = _OPEN.get((id(pool), key))
                if taken is not None and taken.pool is pool and taken.link.alive:
                    return None
                _OPEN[(id(pool), key)] = run
            session._shared = run
        link.attach(run_id, run)
        transfer_slot(id(session), id(run))
    return run


def watch_listed(session: Any, pool: Any, key: str) -> bool:
    """Watch the run of `key` that another server listed in the key's actor (replicas of the app on
    one Ray cluster), as this server's SharedRun of it, which later Starts here join as any other;
    True if there was one. Never on a local pool (Pool.listed)."""
    found = pool.listed(key)
    if found is None:
        return False
    link, run_id = found
    run = SharedRun(pool, key, link, run_id, 0, session)
    with run.lock:
        with _LOCK:
            taken = _OPEN.get((id(pool), key))
            if taken is None or taken.pool is not pool or not taken.link.alive:
                _OPEN[(id(pool), key)] = run
                taken = None
        if taken is None:
            link.attach(run_id, run)
            session._watch_listed(run)
    if taken is not None:   # another session here took it up a moment earlier: watch with it
        return taken.join(session)
    try:
        link.send(("want", run_id))   # its next snapshot now, not when its lister next reads one
    except Exception:   # WorkerDied: the reader ends the run with its message
        pass
    return True


def listed_count() -> int:
    """Shared runs that a Start may join right now (tests)."""
    with _LOCK:
        return len(_OPEN)
