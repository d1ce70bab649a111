"""The app's runs on a Ray cluster: each worker a Ray actor, the server's end of it a RayLink.

With EXPLORER_RAY_ADDRESS set (`auto`, `local` or `ray://host:port`, as for the sweep:
explorer/ray_sweep.py joins the cluster), `get_pool()` (explorer/pool.py) is a RayPool. Nothing
else changes: a Session drives its run through a Link with the same verbs, the same Worker
(explorer/worker.py) trains it, and a worker that dies ends its runs with a message. Ray is imported
only here and in explorer/ray_sweep.py, and only when a cluster is named.

The actor (RunHost) runs `Worker.serve()` in a thread of its own over a Mailbox
(explorer/mailbox.py); the RayLink sends each message with `actor.push` and its reader thread
long-polls `actor.pull` for the reports that came back, so the actor needs two threads at least
(`max_concurrency`). Messages pickle as they do for a socket (functions, partials, configs), Ray's
cloudpickle carries them there, and the Worker's own pickled bytes come back.

Private runs and jobs go to EXPLORER_WORKERS anonymous actors (default: the cluster's CPUs),
placed like local workers. A run with a key (explorer/run_key.py) goes to that key's named actor in
the `explorer` namespace, made with `get_if_exists=True`, so every replica of the app that places a
run of that key finds the same actor. Its run ids and request ids come from a range of their own
(`next_id`), as several servers' messages then reach one Worker. The actor lists its key's run for
every replica (`offer`, `join`, `leave`): a Start on another replica watches that run instead of
training its own (explorer/shared_runs.py's watch_listed), and a run ends when no server watches it.
An actor belongs to the server that made it (Ray ends it with that server); a keyed one nobody uses
for `RETIRE_AFTER_S` is stopped.

Losing an actor (`ray.kill`, its process or its node gone) fails the reader's pull: the link ends its
runs with a message a visitor can read, as a dead local worker's does, and the next run gets a new
actor.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
import os
import pickle
import secrets
import sys
import threading
import time
import uuid
from typing import Any

from explorer.mailbox import Mailbox
from explorer.pool import START_TIMEOUT_S, Link, Pool, WorkerDied
from explorer.ray_sweep import connect, import_ray

log = logging.getLogger(__name__)
NAMESPACE = "explorer"       # the named actors of shared runs live here, whoever made them
PULL_S = 1.0                 # a pull waits at most this long for a report (and a stop for a pull)
RETIRE_AFTER_S = 30.0        # a keyed actor with no run of this server's for this long is stopped
HOST_THREADS = 32            # the actor's threads: a pull from each server, pushes, hellos
REQUEST_S = 10.0             # a question about a shared run waits at most this long for its actor


class RunHost:
    """The Ray actor: a Worker serving its messages in a thread, over a Mailbox."""

    def __init__(self, owner: str, threads: int, nice: int):
        from explorer.process import configure
        from explorer.worker import Worker
        self.owner = owner
        if nice:   # os.nice only: the process group's priority (worker.lower_priority) is Ray's, not ours
            try:
                os.nice(nice)
            except OSError:
                pass
        configure(threads)
        self.mailbox = Mailbox()
        self.worker = Worker(self.mailbox)
        self.lock = threading.Lock()
        self.listed: int | None = None   # the key's run that every replica's Start joins
        self.holders: set[str] = set()   # the servers watching it
        threading.Thread(target=self._serve, name="explorer-ray-worker", daemon=True).start()

    def _serve(self) -> None:
        try:
            self.worker.serve()
        finally:
            self.worker.close()
            self.mailbox.close()

    def hello(self, server: str) -> tuple[int, str]:
        """`server` receives every report from now on; this actor's process id and owner."""
        self.mailbox.join(server)
        return os.getpid(), self.owner

    def bye(self, server: str) -> None:
        self.mailbox.leave(server)
        self.holders.discard(server)

    # ------------------------------------------------------------------ the key's run, for every replica
    def offer(self, server: str, run_id: int) -> int:
        """`server` lists run_id as this key's run, unless a live one is listed: the listed run's id."""
        with self.lock:
            if self._listed_alive():
                return self.listed
            self.listed, self.holders = run_id, {server}
            return run_id

    def join(self, server: str) -> int | None:
        """`server` watches the listed run from now on: its id; None if no live run is listed."""
        with self.lock:
            if not self._listed_alive():
                return None
            self.holders.add(server)
            return self.listed

    def others(self, server: str, run_id: int) -> int:
        """How many servers other than `server` watch run_id (0 unless it is the listed run)."""
        with self.lock:
            if run_id != self.listed:
                return 0
            self.holders &= self.mailbox.servers()   # a replica forgotten by the mailbox watches no more
            return len(self.holders - {server})

    def leave(self, server: str, run_id: int) -> int:
        """`server` watches run_id no more; how many others still do (0: nobody can join it now)."""
        with self.lock:
            if run_id != self.listed:
                return 0
            self.holders.discard(server)
            self.holders &= self.mailbox.servers()
            if not self.holders:
                self.listed = None
            return len(self.holders)

    def _listed_alive(self) -> bool:
        run = self.worker.runs.get(self.listed) if self.listed is not None else None
        return run is not None and not run.final and run.state not in ("stopped", "error")

    def push(self, server: str, number: int, message: tuple) -> None:
        self.mailbox.push(server, number, message)

    def pull(self, server: str, timeout: float) -> list[bytes] | None:
        return self.mailbox.pull(server, timeout)


class RayLink(Link):
    """One RunHost actor and this server's end of it (see the module docstring)."""

    def __init__(self, pool: "RayPool", index: int, key: str | None = None):
        super().__init__(pool, index)
        self.ray, self.key = pool.ray, key
        self.server = uuid.uuid4().hex      # this link's name in the actor's Mailbox
        self._number = 0                    # of the next message pushed
        self.why = ""                       # how the actor was lost, in Ray's words
        self.stopping = False
        self.placed_at = time.monotonic()
        self.actor, self.pid, self.owned = self._reach(pool)
        self.reader.start()

    def _reach(self, pool: "RayPool") -> tuple[Any, int, bool]:
        """The actor (made, or found by its key's name), its process id, and whether this pool made it.
        A named actor just killed may still be found once by its name: then it is made again."""
        for attempt in range(3):
            actor = pool.new_actor(self.key)
            try:
                pid, owner = self.ray.get(actor.hello.remote(self.server), timeout=START_TIMEOUT_S)
                return actor, pid, owner == pool.id
            except self.ray.exceptions.RayActorError as err:
                if attempt == 2:
                    log.warning("no Ray actor for a run: %s", err)
                    why = first_line(err)
                    raise WorkerDied(f"The Ray cluster could not start a worker for this run ({why}).") from None
                time.sleep(0.5)
            except self.ray.exceptions.GetTimeoutError:
                raise WorkerDied("The Ray cluster did not start a worker in time.") from None
        raise AssertionError("unreachable")

    def _write(self, message: tuple) -> None:
        self.actor.push.remote(self.server, self._number, message)
        self._number += 1

    def _receive(self) -> list[tuple]:
        if self.stopping:
            raise EOFError
        try:
            batch = self.ray.get(self.actor.pull.remote(self.server, PULL_S))
        except Exception as err:   # RayActorError: killed, its process or node gone; or Ray shut down
            self.why = first_line(err)
            raise EOFError from None
        if batch is None:          # its Worker's loop ended (an exit)
            raise EOFError
        messages = []
        for data in batch:
            try:
                messages.append(pickle.loads(data))
            except Exception:      # one message that does not unpickle here: log it, keep the others
                log.exception("could not read a message from Ray actor %s", self.pid)
        return messages

    def list_shared(self, run_id: int) -> bool:
        return self._ask(self.actor.offer.remote(self.server, run_id), run_id) == run_id

    def other_servers(self, run_id: int) -> int:
        return self._ask(self.actor.others.remote(self.server, run_id), 0)

    def unlist_shared(self, run_id: int) -> int:
        return self._ask(self.actor.leave.remote(self.server, run_id), 0)

    def _ask(self, ref: Any, otherwise: Any) -> Any:
        """A sharing question's answer; `otherwise` where the actor is gone (its runs end anyway)."""
        try:
            return self.ray.get(ref, timeout=REQUEST_S)
        except Exception:   # RayActorError, GetTimeoutError: the reader reports the loss
            return otherwise

    def stop(self, timeout: float = 5.0) -> None:
        """The actor ends if this pool made it; a found one is only left (its owner ends it)."""
        self.stopping = True
        try:
            if self.owned:
                self.ray.kill(self.actor, no_restart=True)
            else:
                self.actor.bye.remote(self.server)
        except Exception:   # gone already, or Ray shut down
            pass
        self.reader.join(timeout)


class RayPool(Pool):
    """The app's pool on a Ray cluster: anonymous actors for private runs and jobs, a named actor for
    each run key (see the module docstring)."""

    def __init__(self, size: int | None = None, threads: int | None = None, nice: int | None = None):
        self.ray = import_ray()
        self.disconnect = connect(self.ray)   # True: this pool joined the cluster and leaves it at shutdown
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        super().__init__(size or cpus, threads, nice)
        self.id = uuid.uuid4().hex
        # Run and request ids unique across servers: several may send to one actor (a shared run's).
        self._ids = itertools.count(secrets.randbits(40) << 20)
        self._keyed: dict[str, RayLink] = {}
        self._host = self.ray.remote(num_cpus=0, max_concurrency=HOST_THREADS, max_restarts=0,
                                     scheduling_strategy="SPREAD")(RunHost)

    def new_actor(self, key: str | None) -> Any:
        """A RunHost for a private run (key None), or key's named actor, made or found."""
        # The actor imports what this server's messages name (a factory, a test's fake trainer) from
        # the folders this process imports them from, as a local worker does (ProcessLink's PYTHONPATH);
        # Ray itself adds only the server's current folder. Installed packages are the node's own.
        options: dict[str, Any] = {"runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(own_paths())}}}
        if key is not None:
            options.update(name=actor_name(key), namespace=NAMESPACE, get_if_exists=True)
        return self._host.options(**options).remote(self.id, self.threads, self.nice)

    def _new_link(self, index: int) -> Link:
        return RayLink(self, index)

    def listed(self, key: str) -> tuple[Link, int] | None:
        """The run of `key` that another replica (or this one) listed in the key's actor: this server
        watches it from now on (RunHost.join)."""
        link = self.place(key)
        run_id = link._ask(link.actor.join.remote(link.server), None)
        return (link, run_id) if run_id is not None else None

    def place(self, key: str | None = None) -> Link:
        """A private run's actor as the local pool places a worker; a keyed run's, its key's actor."""
        self._retire_idle()
        if key is None:
            return super().place()
        with self._lock:
            if self._closed:
                raise RuntimeError("The training pool has been shut down.")
            link = self._keyed.get(key)
            if link is None or not link.alive:
                link = self._keyed[key] = RayLink(self, -1, key)
            link.placed_at = time.monotonic()
            return link

    def _retire_idle(self) -> None:
        """Stop the keyed actors this pool made that have held none of its runs for RETIRE_AFTER_S
        and hold no other server's either."""
        now = time.monotonic()
        with self._lock:
            idle = [(key, link) for key, link in self._keyed.items()
                    if link.owned and link.load() == 0 and now - link.placed_at > RETIRE_AFTER_S]
        for key, link in idle:
            try:
                if link.request(("runs", self.next_id()), 10.0):
                    link.placed_at = now
                    continue
            except (WorkerDied, TimeoutError):
                pass
            with self._lock:
                if self._keyed.get(key) is not link or link.load() or time.monotonic() - link.placed_at < 1:
                    continue
                del self._keyed[key]
            link.stop()

    def live_links(self) -> list[Link]:
        with self._lock:
            keyed = [link for link in self._keyed.values() if link.alive]
        return super().live_links() + keyed

    def death_message(self, link: Link) -> str:
        why = getattr(link, "why", "")
        how = f" ({why})" if why else ""
        return (f"The Ray worker training this run stopped unexpectedly{how}; the last picture stays. "
                "Press Reset to start a new run.")

    def _replace(self, dead: Link) -> None:
        """A lost actor leaves its place empty; the next run placed there gets a new one."""
        with self._lock:
            if isinstance(dead, RayLink) and dead.key is not None:
                if self._keyed.get(dead.key) is dead:
                    del self._keyed[dead.key]
            elif 0 <= dead.index < self.size and self._links[dead.index] is dead:
                self._links[dead.index] = None
            if self._closed or getattr(dead, "stopping", False):
                return
            self.deaths += 1
        log.warning("Ray actor %s ended unexpectedly: %s", dead.pid, getattr(dead, "why", ""))

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._lock:
            keyed, self._keyed = list(self._keyed.values()), {}
        super().shutdown(timeout)
        for link in keyed:
            link.stop(timeout)
        if self.disconnect:
            self.ray.shutdown()
            self.disconnect = False


def first_line(err: BaseException) -> str:
    """The first line of what Ray says, for a message: its errors run to many lines."""
    text = str(err).strip()
    return text.splitlines()[0][:160].rstrip(". ") if text else type(err).__name__


def own_paths() -> list[str]:
    """The folders on this process's import path that are not an installation's (site-packages)."""
    installed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return [os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)
            and not any(os.path.realpath(p).startswith(root) for root in installed)]


def actor_name(key: str) -> str:
    """The named actor of a run key: a digest, as keys are long and hold any character."""
    return "explorer-run-" + hashlib.sha256(key.encode()).hexdigest()[:24]
