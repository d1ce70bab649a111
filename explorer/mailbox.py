"""A worker's connection inside a Ray actor: messages in from the servers, reports out to each of them.

explorer/worker.py's Worker reads a multiprocessing Connection (poll, recv) and writes pickled bytes
to it (send_bytes). A Ray actor (explorer/ray_runs.py) has no socket: the servers call its `push`
and `pull`, and a Mailbox stands between those calls and the Worker's loop, which runs in a thread
of the actor. It imports nothing from Ray, so the tests read it without a cluster.

In: each server numbers what it pushes, 0, 1, 2, ...; a threaded actor may run two pushes of one
caller out of order, so a message waits here until every one numbered before it has arrived (a
pause must not overtake the start before it).

Out: every server that pulls gets every message. Several Streamlit replicas may use one actor (a
shared run's, found by its name), and their run ids and request ids never collide
(RayPool.next_id), so each takes what is its own and ignores the rest, as a Link already does. A
server that has not pulled for `forget_after_s` is forgotten, so that the actor's memory stays
bounded after a replica dies.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

FORGET_AFTER_S = 60.0


class Mailbox:
    """The Worker's Connection (poll, recv, send_bytes, close) and the actor's push / pull."""

    def __init__(self, forget_after_s: float = FORGET_AFTER_S):
        self.forget_after_s = forget_after_s
        self._cond = threading.Condition()
        self._inbox: deque = deque()                  # messages in order, for the Worker
        self._next: dict[str, int] = {}               # server -> number of its next message in order
        self._early: dict[tuple[str, int], Any] = {}  # (server, number) that came before an earlier one
        self._outboxes: dict[str, deque] = {}         # server -> pickled messages it has not pulled
        self._pulled: dict[str, float] = {}           # server -> when it last pulled
        self._closed = False                          # the Worker's loop has ended

    # ------------------------------------------------------------------ the servers' side
    def join(self, server: str) -> None:
        """From now on `server` gets every message the Worker sends."""
        with self._cond:
            self._outboxes.setdefault(server, deque())
            self._pulled[server] = time.monotonic()

    def leave(self, server: str) -> None:
        with self._cond:
            self._outboxes.pop(server, None)
            self._pulled.pop(server, None)
            self._next.pop(server, None)

    def servers(self) -> set[str]:
        """The servers that get the Worker's messages (joined, and not forgotten)."""
        with self._cond:
            return set(self._outboxes)

    def push(self, server: str, number: int, message: Any) -> None:
        """Message `number` from `server`; it reaches the Worker after the ones numbered before it."""
        with self._cond:
            self._early[(server, number)] = message
            n = self._next.get(server, 0)
            while (server, n) in self._early:
                self._inbox.append(self._early.pop((server, n)))
                n += 1
            self._next[server] = n
            self._cond.notify_all()

    def pull(self, server: str, timeout: float) -> list[bytes] | None:
        """What the Worker sent `server` since its last pull, waiting up to `timeout` for something;
        None once the Worker's loop has ended and everything has been pulled."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._pulled[server] = time.monotonic()
            box = self._outboxes.setdefault(server, deque())
            while not box and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._pulled[server] = time.monotonic()
            if not box and self._closed:
                return None
            batch = list(box)
            box.clear()
            return batch

    # ------------------------------------------------------------------ the Worker's side
    def poll(self, timeout: float | None = 0.0) -> bool:
        """True if a message waits (waiting up to `timeout`); EOFError once closed and empty."""
        with self._cond:
            if not self._inbox and not self._closed and timeout:
                self._cond.wait(timeout)
            if not self._inbox and self._closed:
                raise EOFError
            return bool(self._inbox)

    def recv(self) -> Any:
        with self._cond:
            while not self._inbox:
                if self._closed:
                    raise EOFError
                self._cond.wait()
            return self._inbox.popleft()

    def send_bytes(self, data: bytes) -> None:
        with self._cond:
            now = time.monotonic()
            for server in [s for s, t in self._pulled.items() if now - t > self.forget_after_s]:
                self.leave(server)   # a replica gone without a goodbye (the condition's lock is reentrant)
            for box in self._outboxes.values():
                box.append(data)
            self._cond.notify_all()

    def close(self) -> None:
        """The Worker's loop has ended: pulls return what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
