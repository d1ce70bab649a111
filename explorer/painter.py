"""Pictures drawn in a process of their own, so that the web server's interpreter serves pages only.

A live frame of the critic's landscape (matplotlib: contours, two scatters, Agg, PNG) holds the
server's interpreter lock for tens of milliseconds at a stretch, and under a classroom's live runs
the server drew one every few hundred milliseconds (py-spy under bench/classroom.py: about half of
its busy time in live pictures). Every page load and every message of every visitor waited behind
them. Training left the server for explorer/worker.py for the same reason.

`paint(fn, *args, lane=..., **options)` calls `fn(*args, reuse=kept, **options) -> (picture, keep)` in
the painter process (`python -m explorer.painter`, started by `get_painter()` on first need) and
returns the picture. `keep` is what fn drew with (figures it updates in place next time: about half
the cost of a frame, explorer/plots.py); it stays in the painter under `lane` and is handed back as
`reuse` to the next call of that lane (None: keep nothing). fn must be a module-level function, and
its arguments must pickle (snapshots do). The painter runs EXPLORER_PAINTER_NICE (default 5) steps
below the server and above the workers: a picture waits for pages, training waits for pictures.

The painter draws one picture at a time; sessions that want one meanwhile wait their turn without
holding the interpreter lock. Where it cannot be had (it does not start, it died or hung three times
in a row, EXPLORER_PAINTER=0), the same function draws here instead: the same pixels, slower pages.
A painter that dies or hangs is replaced at the next picture. It ends with the server (at exit, and
by itself when the server's end of its socket closes, however the server died).
"""
from __future__ import annotations

import argparse
import atexit
import logging
import os
import socket
import subprocess
import sys
import threading
from collections import OrderedDict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Hashable

from explorer.limits import env_number

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
KEEP_LANES = 24         # lanes whose figures are kept: a few views of each run being watched
PAINT_TIMEOUT_S = 30.0  # a picture takes ~30 ms; this long means the painter hangs (or its box is swamped)
MAX_FAILURES = 3        # painters lost in a row before pictures are drawn in the server for good


class PainterGone(RuntimeError):
    """The painter process ended, or did not answer in time."""


def draw(kept: OrderedDict, fn: Callable, args: tuple, options: dict, lane: Hashable | None) -> Any:
    """fn's picture, with the figures kept under `lane` to draw on (in the painter, or here)."""
    picture, keep = fn(*args, reuse=kept.pop(lane, None) if lane is not None else None, **options)
    if lane is not None:
        kept[lane] = keep
        while len(kept) > KEEP_LANES:
            kept.popitem(last=False)
    return picture


class Painter:
    """The server's end of the painter process (see the module docstring)."""

    def __init__(self, nice: int | None = None, enabled: bool | None = None):
        self.nice = int(env_number("EXPLORER_PAINTER_NICE", 5, int) if nice is None else nice)
        self.enabled = os.environ.get("EXPLORER_PAINTER", "1") != "0" if enabled is None else enabled
        self.failures = 0          # painters lost in a row
        self.drawn_here = 0        # pictures drawn in this process because no painter could be had
        self._lock = threading.Lock()   # one picture at a time; guards everything below
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._kept_here: OrderedDict = OrderedDict()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def warm(self) -> None:
        """Start the painter now, so that the first picture does not wait for its imports. Returns at
        once when a picture is being drawn (the painter is up then); called on every page run."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._usable():
                self._ensure_started()
        except PainterGone as gone:
            log.warning("the painter process could not start (%s)", gone)
            self.failures += 1
        finally:
            self._lock.release()

    def paint(self, fn: Callable, *args: Any, lane: Hashable | None = None, **options: Any) -> Any:
        """fn(*args, reuse=..., **options)'s picture, drawn in the painter (see the module docstring)."""
        with self._lock:
            if self._usable():
                try:
                    return self._remote(fn, args, options, lane)
                except PainterGone as gone:
                    self.failures += 1
                    log.warning("the painter process failed (%s); this picture is drawn in the server", gone)
                    self._stop(kill=True)
            self.drawn_here += 1
            return draw(self._kept_here, fn, args, options, lane)

    def _usable(self) -> bool:
        return self.enabled and self.failures < MAX_FAILURES

    def _ensure_started(self) -> Connection:
        if self._process is not None and self._process.poll() is None and self._conn is not None:
            return self._conn
        self._stop(kill=True)
        ours, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)))
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "explorer.painter", "--fd", str(theirs.fileno()), "--nice", str(self.nice)],
                # A session of its own, so that its lower priority holds against every process (see
                # explorer/worker.py's lower_priority); it ends when its socket closes.
                pass_fds=(theirs.fileno(),), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as err:
            ours.close()
            raise PainterGone(f"could not start: {err}") from None
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        return self._conn

    def _remote(self, fn: Callable, args: tuple, options: dict, lane: Hashable | None) -> Any:
        conn = self._ensure_started()
        try:
            conn.send(("draw", fn, args, options, lane))
            if not conn.poll(PAINT_TIMEOUT_S):
                raise PainterGone(f"no picture within {PAINT_TIMEOUT_S:.0f} s")
            status, value = conn.recv()
        except (OSError, EOFError):
            raise PainterGone(f"it ended (exit code {self._process.poll()})") from None
        self.failures = 0
        if status == "error":
            raise value   # fn's own error (bad data): the caller's to show, as if drawn here
        return value

    def _stop(self, kill: bool = False, timeout: float = 2.0) -> None:
        process, conn, self._process, self._conn = self._process, self._conn, None, None
        if conn is not None:
            try:
                if not kill:
                    conn.send(("exit",))
            except (OSError, EOFError):
                pass
            conn.close()   # the painter ends by itself once its socket closes
        if process is not None and process.poll() is None:
            if kill:
                process.kill()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)

    def shutdown(self) -> None:
        """Stop the painter process (at exit; tests)."""
        with self._lock:
            self._stop()
            self._kept_here.clear()


_PAINTER: Painter | None = None
_PAINTER_LOCK = threading.Lock()


def get_painter() -> Painter:
    """The process's painter, made on first use and stopped at exit."""
    global _PAINTER
    with _PAINTER_LOCK:
        if _PAINTER is None:
            _PAINTER = Painter()
            atexit.register(_PAINTER.shutdown)
        return _PAINTER


def paint(fn: Callable, *args: Any, lane: Hashable | None = None, **options: Any) -> Any:
    """The process's painter draws fn's picture (see the module docstring)."""
    return get_painter().paint(fn, *args, lane=lane, **options)


# ----------------------------------------------------------------------------- the painter process
def serve(conn: Connection) -> None:
    """Draw what arrives, one picture at a time, until the server says exit or its socket closes."""
    kept: OrderedDict = OrderedDict()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "exit":
            return
        _, fn, args, options, lane = message
        try:
            reply = ("ok", draw(kept, fn, args, options, lane))
        except Exception as err:   # the server raises it where the picture was asked for
            from explorer.worker import portable
            reply = ("error", portable(err))
        try:
            conn.send(reply)
        except (OSError, EOFError):
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.painter", description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True, help="file descriptor of the socket to the server")
    parser.add_argument("--nice", type=int, default=5, help="added to the OS priority (lower priority)")
    args = parser.parse_args(argv)
    from explorer.process import configure
    from explorer.worker import lower_priority
    if args.nice:
        lower_priority(args.nice)
    configure()   # matplotlib's font cache with the app's, before matplotlib is imported
    logging.basicConfig(level=logging.WARNING, format="explorer painter %(process)d: %(message)s")
    conn = Connection(socket.socket(fileno=args.fd).detach())
    try:
        serve(conn)
    except KeyboardInterrupt:   # Ctrl-C in the server's terminal: leave quietly
        pass
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
