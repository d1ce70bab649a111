"""The web server's side of the worker processes: start them, talk to them, replace the dead.

Training never runs in the server's interpreter (explorer/worker.py says why). `get_pool()` is the
process's pool: EXPLORER_WORKERS processes (default: one per core), each started on first need with
`python -m explorer.worker` at the lowest OS priority (EXPLORER_WORKER_NICE, default 19) and
EXPLORER_TORCH_THREADS torch threads (default 1). Each worker has one socket to the server and one
thread here that reads what comes back and hands it on: run reports to their Session, replies to
the request that waits for them, progress to its Job. No shared memory is used, so nothing but the
processes themselves can be left behind, and they are stopped at exit (and end by themselves when
the server's end of their socket closes, however the server died).

Runs are placed on the worker with the fewest runs training (then the fewest held); a worker holds
any number and steps the training ones in turn, so a run's speed follows how many train beside it.
A visitor's training copy of a shared run (a fork) goes to another worker when that one has fewer
runs training (`place_copy`). Work that is not a run (a checkpoint to inspect, the Parallel-lines critic)
goes through `pool.call(fn, *args)` or `pool.submit(fn, *args)`: fn and its arguments must pickle
(module-level functions, functools.partial of them, plain data).

With EXPLORER_RAY_ADDRESS set, `get_pool()` is a RayPool instead (explorer/ray_runs.py): the same
verbs and the same Link, its workers Ray actors on a cluster. Unset, Ray is never imported.
"""
from __future__ import annotations

import atexit
import itertools
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import weakref
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Iterator

from explorer.limits import env_number
from explorer.ray_sweep import ADDRESS_ENV

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0     # a worker's first answer waits for its torch import (slow on a busy box)


class WorkerDied(RuntimeError):
    """The worker process holding a run or a job ended unexpectedly."""


class Job:
    """Work sent to a worker with `Pool.submit`: its progress (for a generator) and its result."""

    def __init__(self, link: "Link", req: int):
        self._link, self._req = link, req
        self._future: Future = Future()
        self._updates: queue.Queue = queue.Queue()
        self.latest: Any = None   # the last value a generator job yielded (None before the first)

    def result(self, timeout: float | None = None) -> Any:
        return self._future.result(timeout)

    @property
    def future(self) -> Future:
        """The job's result as a Future (for concurrent.futures.as_completed over many jobs)."""
        return self._future

    def updates(self, timeout: float | None = START_TIMEOUT_S) -> Iterator[Any]:
        """Each value the job yields, as it arrives (waiting at most `timeout` for each); then the
        job's exception, if it raised one. The return value is in .result()."""
        while True:
            try:
                kind, value = self._updates.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError("The worker took too long to answer.") from None
            if kind == "done":
                self._future.result()        # raises the job's exception, if any
                return
            yield value

    def cancel(self) -> None:
        """Stop a generator job at its next item (a finished job ignores this)."""
        if not self._future.done():
            self._link.send(("cancel", self._req))
            self._finish(False, RuntimeError("Cancelled."))

    def _progress(self, value: Any) -> None:
        self.latest = value
        self._updates.put(("progress", value))

    def _finish(self, ok: bool, value: Any) -> None:
        if self._future.done():
            return
        if ok:
            self._future.set_result(value)
        else:
            self._future.set_exception(value)
        self._updates.put(("done", None))


class Link:
    """The server's end of one worker, whatever carries the messages (see the module docstring).

    A transport gives it four things: _write(message), _receive() (the messages that arrived; EOFError
    or OSError once the worker is gone), _exit_code() once it has gone, and stop(). ProcessLink below
    is a local process over a socket; explorer/ray_runs.py's RayLink is a Ray actor.
    """

    def __init__(self, pool: "Pool", index: int):
        self.pool, self.index = pool, index
        self.pid: int | None = None
        self.alive = True
        self.exit_code: int | None = None
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self.sessions: dict[int, Any] = {}      # run id -> Session (weakly: a closed tab lets go)
        self.training: set[int] = set()         # runs started here whose latest report says they train
        self.waiting: dict[int, Future | Job] = {}
        self.reader = threading.Thread(target=self._read, name=f"explorer-pool-reader-{index}", daemon=True)

    def send(self, message: tuple) -> None:
        if not self.alive:
            raise WorkerDied(self.pool.death_message(self))
        try:
            with self._send_lock:
                self._write(message)
        except (OSError, EOFError):
            raise WorkerDied(self.pool.death_message(self)) from None

    def request(self, message: tuple, timeout: float | None = START_TIMEOUT_S) -> Any:
        """Send a message whose last item is a request id; wait for the reply and return its value."""
        return self.ask(message).result(timeout)

    def ask(self, message: tuple) -> Future:
        """Send a message whose last item is a request id; its reply will be the Future's result."""
        future: Future = Future()
        req = message[-1]
        with self._lock:
            self.waiting[req] = future
        try:
            self.send(message)
        except WorkerDied:
            with self._lock:
                self.waiting.pop(req, None)
            raise
        return future

    def submit(self, fn: Callable, args: tuple) -> Job:
        req = self.pool.next_id()
        job = Job(self, req)
        with self._lock:
            self.waiting[req] = job
        self.send(("job", req, fn, args))
        return job

    def attach(self, run_id: int, session: Any) -> None:
        with self._lock:
            self.sessions[run_id] = weakref.ref(session)

    def detach(self, run_id: int) -> None:
        with self._lock:
            self.sessions.pop(run_id, None)
            self.training.discard(run_id)

    def starting(self, run_id: int) -> None:
        """run_id was just told to train: count it as training before the worker's report says so."""
        with self._lock:
            self.training.add(run_id)

    def load(self) -> int:
        """Runs held plus jobs not finished."""
        return self.busy()[1]

    def busy(self) -> tuple[int, int]:
        """(runs training plus jobs, runs held plus jobs): what placement balances, the first before
        the second. A worker's training runs and jobs share its time in turns, so a run's speed follows
        how many of them it has beside it; a run held idle (a page's step-0 picture, a paused run)
        costs only memory."""
        with self._lock:
            jobs = sum(isinstance(w, Job) for w in self.waiting.values())
            return len(self.training) + jobs, len(self.sessions) + jobs

    # ------------------------------------------------------------------ the reader thread
    def _read(self) -> None:
        while True:
            try:
                messages = self._receive()
            except (EOFError, OSError):
                break
            except Exception:   # a message that does not unpickle here: log it, keep reading
                log.exception("could not read a message from worker %s", self.pid)
                continue
            for message in messages:
                try:
                    self._dispatch(message)
                except Exception:   # a bug in a handler must not kill the reader
                    log.exception("could not handle a message from worker %s", self.pid)
        self._died()

    def _dispatch(self, message: tuple) -> None:
        verb, key = message[0], message[1]
        if verb == "run":
            with self._lock:
                ref = self.sessions.get(key)
                if message[2]["state"] == "running" and ref is not None:
                    self.training.add(key)
                else:
                    self.training.discard(key)
            session = ref() if ref is not None else None
            if session is not None:
                session._on_report(key, message[2], message[3])
        elif verb == "progress":
            with self._lock:
                job = self.waiting.get(key)
            if isinstance(job, Job):
                job._progress(message[2])
        elif verb == "reply":
            with self._lock:
                waiter = self.waiting.pop(key, None)
            ok, value = message[2], message[3]
            if isinstance(waiter, Job):
                waiter._finish(ok, value)
            elif waiter is not None and not waiter.done():
                (waiter.set_result if ok else waiter.set_exception)(value)

    def _died(self) -> None:
        self.alive = False
        self.exit_code = self._exit_code()
        with self._lock:
            sessions, self.sessions = list(self.sessions.items()), {}
            self.training.clear()
            waiting, self.waiting = list(self.waiting.values()), {}
        why = self.pool.death_message(self)
        for waiter in waiting:
            if isinstance(waiter, Job):
                waiter._finish(False, WorkerDied(why))
            elif not waiter.done():
                waiter.set_exception(WorkerDied(why))
        for run_id, ref in sessions:
            session = ref()
            if session is not None:
                session._on_worker_died(run_id, why)
        self._close()
        self.pool._replace(self)

    # ------------------------------------------------------------------ what a transport gives
    def _write(self, message: tuple) -> None:
        raise NotImplementedError

    def _receive(self) -> list[tuple]:
        raise NotImplementedError

    def _exit_code(self) -> int | None:
        return None

    def _close(self) -> None:
        pass

    def stop(self, timeout: float = 5.0) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ runs other servers share
    # A local worker is this server's alone, so these say "nobody else"; a Ray actor may serve several
    # replicas of the app (explorer/ray_runs.py: the run a key's actor lists for all of them).
    def list_shared(self, run_id: int) -> bool:
        """List run_id as its key's run for other servers to watch; False if another server's run of
        that key is listed already (this one then trains alone)."""
        return True

    def other_servers(self, run_id: int) -> int:
        """How many other servers watch the listed run run_id."""
        return 0

    def unlist_shared(self, run_id: int) -> int:
        """This server watches run_id no more; how many other servers still do (0: end it, or keep it
        as one visitor's own)."""
        return 0


class ProcessLink(Link):
    """A local worker process (`python -m explorer.worker`) and the server's end of its socket."""

    def __init__(self, pool: "Pool", index: int):
        super().__init__(pool, index)
        ours, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "explorer.worker", "--fd", str(theirs.fileno()),
             "--threads", str(pool.threads), "--nice", str(pool.nice)],
            # A session of its own, so that its lower priority holds against every process (see
            # explorer/worker.py); it ends when its socket closes, not by the server's signals.
            pass_fds=(theirs.fileno(),), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.pid = self.process.pid
        self.reader.start()

    def _write(self, message: tuple) -> None:
        self.conn.send(message)

    def _receive(self) -> list[tuple]:
        return [self.conn.recv()]

    def _exit_code(self) -> int | None:
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def _close(self) -> None:
        self.conn.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not within `timeout`."""
        if self.process.poll() is None:
            try:
                with self._send_lock:
                    self.conn.send(("exit",))
            except (OSError, EOFError):
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.reader.join(timeout)


class Pool:
    """A few worker processes that hold the app's training runs (see the module docstring)."""

    def __init__(self, size: int | None = None, threads: int | None = None, nice: int | None = None):
        self.size = int(size or env_number("EXPLORER_WORKERS", os.cpu_count() or 1, int))
        self.threads = int(threads or env_number("EXPLORER_TORCH_THREADS", 1, int))
        # 19, not 10: with two CPU-bound processes at nice 10 beside it, a browser's load of the 2-D
        # page took 1.1-1.25x its idle time on the 2-core box; at 19, no longer than idle.
        self.nice = int(env_number("EXPLORER_WORKER_NICE", 19, int) if nice is None else nice)
        self._links: list[Link | None] = [None] * self.size
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = False
        self.deaths = 0     # workers that ended unexpectedly (and were replaced)

    def next_id(self) -> int:
        return next(self._ids)

    def listed(self, key: str) -> tuple[Link, int] | None:
        """The run of `key` another server lists for all (its link here and its run id), if any: never
        on a local pool, whose workers are this server's alone (see RayPool)."""
        return None

    def place(self, key: str | None = None) -> Link:
        """The worker for a new run: an idle one, else a new one, else the one with the fewest runs
        training (then the fewest held: Link.load). key (the run's key, explorer/run_key.py) places
        nothing here; the Ray pool puts a keyed run on its key's actor."""
        with self._lock:
            if self._closed:
                raise RuntimeError("The training pool has been shut down.")
            live = [link for link in self._links if link is not None and link.alive]
            idle = [link for link in live if link.load() == 0]
            if idle:
                return idle[0]
            for i, link in enumerate(self._links):
                if link is None or not link.alive:
                    self._links[i] = self._new_link(i)
                    return self._links[i]
            return min(live, key=Link.busy)

    def place_copy(self, source: Link) -> Link:
        """The worker for a training copy of a run that `source` holds (a fork): `source`, where the
        copy costs least, unless a worker already running has fewer runs training (Link.busy); the
        copy then trains there, beside fewer runs. Only this pool's own workers: a Ray pool's keyed
        actors hold their keys' runs."""
        training = {link: link.busy()[0] for link in Pool.live_links(self)}
        best = min(training, key=training.get, default=source)
        return best if best is not source and training[best] < source.busy()[0] else source

    def warm(self) -> None:
        """Start one worker now if none runs, so the first run does not wait for torch's import."""
        with self._lock:
            if self._closed or any(link is not None and link.alive for link in self._links):
                return
            self._links[0] = self._new_link(0)

    def _new_link(self, index: int) -> Link:
        return ProcessLink(self, index)

    def call(self, fn: Callable, *args: Any, timeout: float | None = START_TIMEOUT_S) -> Any:
        """fn(*args) in a worker; its result (or its exception, raised here)."""
        return self.submit(fn, *args).result(timeout)

    def submit(self, fn: Callable, *args: Any) -> Job:
        """Start fn(*args) in a worker; a generator's items arrive as the Job's updates."""
        return self.place().submit(fn, args)

    def held_runs(self, timeout: float = START_TIMEOUT_S) -> dict[int, str]:
        """Every run the workers hold, run id -> state ("running" ones are computing), as the workers
        themselves count them."""
        held: dict[int, str] = {}
        for link in self.live_links():
            try:
                held.update(link.request(("runs", self.next_id()), timeout))
            except WorkerDied:   # gone meanwhile: it holds nothing
                pass
        return held

    def live_links(self) -> list[Link]:
        with self._lock:
            return [link for link in self._links if link is not None and link.alive]

    def pids(self) -> list[int]:
        return [link.pid for link in self.live_links()]

    def death_message(self, link: Link) -> str:
        code = getattr(link, "exit_code", None)
        how = "" if code is None else (f" (signal {-code})" if code < 0 else f" (exit code {code})")
        return (f"The process training this run stopped unexpectedly{how}; the last picture stays. "
                "Press Reset to start a new run.")

    def _replace(self, dead: Link) -> None:
        """Start a fresh worker in a dead one's place, unless it was stopped on purpose: exit code 0
        (Ctrl-C reaches the workers too) or SIGTERM (a process-group kill: the server goes next)."""
        code = getattr(dead, "exit_code", None)
        with self._lock:
            if self._closed or self._links[dead.index] is not dead or code in (0, -signal.SIGTERM):
                return
            self.deaths += 1
            log.warning("worker %s ended unexpectedly (code %s); starting a fresh one", dead.pid,
                        getattr(dead, "exit_code", None))
            self._links[dead.index] = self._new_link(dead.index)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every worker (idempotent); later calls to place() fail."""
        with self._lock:
            self._closed = True
            links, self._links = [link for link in self._links if link is not None], [None] * self.size
        for link in links:
            link.stop(timeout)


_POOL: Pool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> Pool:
    """The process's pool, made on first use and shut down at exit: Ray actors where
    EXPLORER_RAY_ADDRESS names a cluster (explorer/ray_runs.py), else local worker processes."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._closed:
            if os.environ.get(ADDRESS_ENV):
                from explorer.ray_runs import RayPool  # imports Ray: only where a cluster is named
                _POOL = RayPool()
            else:
                _POOL = Pool()
            atexit.register(_POOL.shutdown)
        return _POOL


def shutdown_pool() -> None:
    """Stop the process's pool now (tests; the server's exit does this by itself)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown()
