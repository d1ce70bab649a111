"""A worker process: holds training runs, steps them in turn, and sends their snapshots back.

`python -m explorer.worker --fd N` is started by explorer/pool.py, never by hand. It talks over one
socket (a multiprocessing Connection on file descriptor N) and never imports Streamlit: the web
server stays free to draw pages while training runs here at full speed (a training thread inside
the server starved on the interpreter lock whenever a page was drawn: 76 -> 0.8 steps/s).

What arrives (tuples, first item the verb):

    ("open", run, factory, snapshot_fn, still_fn, options, hot, req)   build factory(), snapshot it
    ("start", run, seq)  ("pause", run, seq, message, req)  ("stop", run, seq, message, req)
    ("update", run, hot)  ("step", run, n, req)  ("call", run, fn, req)  ("close", run)
    ("want", run)        a page has drawn the run's newest snapshot: take the next one when due
    ("fork", run, new_run, running, seq, hot, message, req)   a private copy of run at its step, as new_run
    ("export", run, req)   the run pickled, for another worker to copy
    ("adopt", new_run, blob, running, seq, hot, message, req)      an exported run's copy, as new_run
    ("runs", req)  ("job", req, fn, args)  ("cancel", req)  ("exit",)

What goes back:

    ("run", run, info, snapshot)   a run's state (info: state, message, seq, step, steps/s, ...) and,
                                   when one was taken, its newest snapshot
    ("reply", req, ok, value)      the answer to a request: its result, or the exception it raised
    ("progress", req, value)       a value a generator job yielded

Every hot change is noted with the step it took effect at (a run's info carries them); a run opened
with options["schedule"] (a link's plan, explorer/hot_schedule.py) gets those changes at exactly their
steps, the chunk cut where one falls, until a visitor changes a setting.

A fork (a visitor leaving a shared run, explorer/shared_runs.py) copies the trainer here, between two
chunks, so the copy starts exactly where the run stands: same weights, optimizer state, random
state and history (explorer/fork.py); the run itself goes on as if nothing happened. A fork that
will train where another worker has fewer runs training is made there instead: this worker exports
the run pickled ("export"), the other takes the copy up ("adopt"), and nothing else differs.

Snapshots follow demand: a training run takes one when a page has asked for it ("want", sent
when a page draws the newest snapshot) and `snapshot_every_s` have passed, or every
`unwatched_every_s` when nobody asks (so the GIF frames and the metrics log still fill). A snapshot
costs the worker 15-35 ms that the same run trained headless does not pay; taken at a fixed rate,
about one in four was never drawn (the pages redraw every 0.4 s, ui/live.py).
A trainer with `snapshot_view()` is drawn from that view in the snapshot thread while the next
chunk trains (explorer/snapshots.py); other trainers are drawn here, between two chunks.

Runs that train share the process round robin, one chunk of about `tick_s` seconds each, so more
runs than workers all progress. Between two chunks the worker reads every message that waits, so
a pause, a slider change or a manual step reaches the trainer at its next step.
"""
from __future__ import annotations

import argparse
import logging
import os
import pickle
import queue
import socket
import statistics
import sys
import threading
import time
from collections import deque
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable, Iterator

from explorer.hot_schedule import MAX_CHANGES, Change, merged
from explorer.process import configure
from explorer.snapshots import SnapshotThread
from explorer.turns import next_turn

log = logging.getLogger("explorer.worker")
SPEED_WINDOW_S = 3.0       # steps/s is measured over about this many seconds of wall time
UNWATCHED_EVERY_S = 2.0    # a training run nobody asks snapshots of still takes one this often


class Run:
    """One run in this worker: the trainer, its snapshot functions, its state and its clock."""

    def __init__(self, run_id: int, trainer: Any, snapshot_fn: Callable, still_fn: Callable, options: dict):
        self.id, self.trainer = run_id, trainer
        self.snapshot_fn, self.still_fn, self.options = snapshot_fn, still_fn, options
        self.max_seconds = float(options.get("max_seconds", 600.0))
        self.tick_s = float(options.get("tick_s", 0.1))
        self.steps_per_tick = options.get("steps_per_tick")        # None: adapt to about tick_s
        self.snapshot_every_s = float(options.get("snapshot_every_s", 0.3))
        self.snapshot_share = float(options.get("snapshot_share", 0.1))
        self.unwatched_every_s = float(options.get("unwatched_every_s", UNWATCHED_EVERY_S))
        self.wanted = True          # a page waits for a snapshot newer than the last one sent
        self.snapshot_error: BaseException | None = None   # raised by the snapshot thread's last job
        self.chunk = int(self.steps_per_tick or 1)
        self.state, self.message, self.final, self.seq = "idle", "", False, 0
        self.run_seconds = 0.0
        # Seconds the last few snapshots took: their median paces the next (one that measured the
        # numbers, 5-10x a plain frame, must not hold back the frames after it).
        self.last_snapshot_t, self.snapshot_costs = 0.0, deque(maxlen=5)
        self.trained_at_snapshot = 0.0   # run_seconds when the last live snapshot was begun
        self.still_step: int | None = None    # step of the newest still snapshot (None: none yet)
        self.speed: deque[tuple[float, int]] = deque()   # (wall time, step) while training
        # Hot changes: those applied, each with its step (a link replays them, explorer/hot_schedule.py),
        # and those planned (a link's), applied at exactly their steps until a visitor changes one.
        self.changes: list[Change] = []
        self.changes_lost = False   # more than MAX_CHANGES were applied: the list holds the first ones
        self.planned: list[Change] = merged(options.get("schedule") or ())
        self.planned_done = 0

    def copy_as(self, run_id: int, trainer: Any) -> "Run":
        """This run's settings and clock around `trainer` (a copy of this run's), as run `run_id`."""
        twin = Run(run_id, trainer, self.snapshot_fn, self.still_fn, self.options)
        twin.take_clock(self.clock())
        return twin

    def clock(self) -> dict:
        """What a copy of this run carries over besides its trainer: time trained, chunk size, changes."""
        return {"run_seconds": self.run_seconds, "chunk": self.chunk, "final": self.final,
                "changes": list(self.changes), "changes_lost": self.changes_lost,
                "planned": list(self.planned), "planned_done": self.planned_done}

    def take_clock(self, clock: dict) -> None:
        """Carry on from another run's clock() (its lists are copies already)."""
        for name, value in clock.items():
            setattr(self, name, value)

    @property
    def step_count(self) -> int:
        return int(getattr(self.trainer, "step_count", 0))

    def snapshot_interval(self) -> float:
        """Seconds from the last snapshot to the next while training: snapshot_every_s once a page
        has asked for one, unwatched_every_s otherwise."""
        return self.snapshot_every_s if self.wanted else max(self.snapshot_every_s, self.unwatched_every_s)

    def training_between_snapshots(self) -> float:
        """Seconds of this run's own training between two snapshots, so that snapshots of the median
        recent cost take at most snapshot_share of its time.

        Its own training time, not the wall clock's: runs that take turns in one worker each train a
        fraction of the time, and paced by the clock each took its snapshot share of the worker's time
        (bench/classroom.py: six runs to a worker spent a fifth of it drawing snapshots)."""
        cost = statistics.median(self.snapshot_costs) if self.snapshot_costs else 0.0
        return cost * (1.0 / self.snapshot_share - 1.0)

    def snapshot_due(self, now: float, trained: float) -> bool:
        """Whether a live snapshot is due at `now`, the run having trained `trained` seconds in all."""
        return (now - self.last_snapshot_t >= self.snapshot_interval()
                and trained - self.trained_at_snapshot >= self.training_between_snapshots())

    def snapshot_taken(self, began: float) -> None:
        """A snapshot begun at `began` (time.monotonic()) is done: the next is paced from now."""
        self.last_snapshot_t = time.monotonic()
        self.snapshot_costs.append(self.last_snapshot_t - began)

    def steps_per_s(self) -> float:
        if self.state != "running" or len(self.speed) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self.speed[0], self.speed[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def info(self, still: bool = False) -> dict:
        return {"state": self.state, "message": self.message, "final": self.final, "seq": self.seq,
                "step": self.step_count, "run_seconds": self.run_seconds,
                "steps_per_s": self.steps_per_s(), "still": still, "changes": list(self.changes),
                "changes_lost": self.changes_lost, "planned": list(self.planned), "planned_done": self.planned_done}


class Worker:
    """The loop of one worker process (see the module docstring for the messages)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.runs: dict[int, Run] = {}
        self.jobs: dict[int, Iterator] = {}     # generator jobs, advanced one item per turn
        self.turns: deque = deque()             # round robin over ("run", id) and ("job", req)
        # Messages leave through a thread of their own: a snapshot (~100 KB and more) fills the socket
        # buffer whenever the server is busy drawing, and training must not wait for it to drain.
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.sender = threading.Thread(target=self._send_all, name="explorer-worker-sender", daemon=True)
        self.sender.start()
        self.snapshots = SnapshotThread()       # live snapshots of views, drawn while training goes on

    # ------------------------------------------------------------------ sending
    def send(self, message: tuple) -> None:
        """Queue a message for the server, pickled now (so later changes to it cannot leak in)."""
        try:
            data = ForkingPickler.dumps(message)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            if message[0] != "reply":
                raise
            data = ForkingPickler.dumps(("reply", message[1], False,
                                         RuntimeError(f"The result could not be sent back: {err}")))
        self.outbox.put(bytes(data))

    def _send_all(self) -> None:
        while True:
            data = self.outbox.get()
            if data is None:
                return
            try:
                self.conn.send_bytes(data)
            except OSError:   # the server is gone; the loop notices on its next read
                return

    def close(self) -> None:
        """Finish the snapshot in hand, send what is queued, then stop the sender."""
        self.snapshots.close()
        self.outbox.put(None)
        self.sender.join(5)

    def reply(self, req: int | None, ok: bool, value: Any = None) -> None:
        if req is not None:
            self.send(("reply", req, ok, value if ok else portable(value)))

    def report(self, run: Run, snapshot: Any = None, still: bool = False) -> None:
        self.send(("run", run.id, run.info(still), snapshot))

    # ------------------------------------------------------------------ the loop
    def serve(self) -> None:
        while True:
            busy = bool(self.jobs) or any(r.state == "running" for r in self.runs.values())
            try:
                if self.conn.poll(0 if busy else 0.5):
                    message = self.conn.recv()
                    if message[0] == "exit":
                        return
                    self.handle(message)
                    continue          # read everything that waits before the next chunk
            except (EOFError, OSError):   # the server is gone: so are we
                return
            if busy:
                self.take_turn()

    def take_turn(self) -> None:
        for _ in range(len(self.turns)):
            kind, key = self.turns[0]
            self.turns.rotate(-1)
            if kind == "run" and key in self.runs and self.runs[key].state == "running":
                return self.train_chunk(self.runs[key])
            if kind == "job" and key in self.jobs:
                return self.advance_job(key)

    def handle(self, message: tuple) -> None:
        verb, key = message[0], message[1]
        if verb == "want":
            if key in self.runs:
                self.runs[key].wanted = True
            return
        self.snapshots.wait()   # what a message changes, a snapshot being drawn must not see half of
        if verb == "job":
            return self.start_job(key, *message[2:])
        if verb == "cancel":
            self.jobs.pop(key, None)
            return
        if verb == "open":
            return self.open(key, *message[2:])
        if verb == "adopt":
            return self.adopt(key, *message[2:])
        if verb == "runs":   # what this worker holds, run id -> state (the pool counts runs computing)
            return self.reply(key, True, {run_id: run.state for run_id, run in self.runs.items()})
        run = self.runs.get(key)
        if verb == "close":
            self.runs.pop(key, None)
            return
        if run is None:   # closed meanwhile (a reset): answer requests so nobody waits
            req = message[-1] if verb in ("pause", "stop", "step", "call", "fork", "export") else None
            self.reply(req, False, RuntimeError("This run has been closed."))
            return
        getattr(self, "do_" + verb)(run, *message[2:])

    # ------------------------------------------------------------------ run verbs
    def open(self, run_id: int, factory: Callable, snapshot_fn: Callable, still_fn: Callable | None,
             options: dict, hot: dict, req: int) -> None:
        try:
            trainer = factory()
            run = Run(run_id, trainer, snapshot_fn, still_fn or snapshot_fn, options)
            self.apply(run, hot)
            snapshot = run.snapshot_fn(trainer)
        except Exception as err:   # bad settings: the page says why
            return self.reply(req, False, err)
        self.runs[run_id] = run
        self.turns.append(("run", run_id))
        self.report(run, snapshot, still=run.still_fn is run.snapshot_fn)
        self.reply(req, True)

    def do_start(self, run: Run, seq: int) -> None:
        run.seq = seq
        if run.state in ("error",) or run.final:
            run.message = run.message or "This run has ended."
        else:
            run.state, run.message = "running", ""
            run.speed.clear()
        self.report(run)

    def do_pause(self, run: Run, seq: int, message: str, req: int) -> None:
        run.seq = seq
        if run.state == "running":
            run.state, run.message = "paused", message
        self.settle(run)
        self.reply(req, True)

    def do_stop(self, run: Run, seq: int, message: str, req: int) -> None:
        run.seq = seq
        if run.state != "error":
            run.state, run.message = "stopped", message
        run.final = True
        self.settle(run)
        self.reply(req, True)

    def do_update(self, run: Run, hot: dict) -> None:
        self.apply(run, hot)
        self.report(run)

    def do_step(self, run: Run, n: int, req: int) -> None:
        if run.state == "error" or run.final:
            return self.reply(req, True)
        try:
            self.advance(run, n)
            snapshot = run.still_fn(run.trainer)
        except Exception as err:   # a step that diverges: the run ends with its last good snapshot
            self.fail(run, err)
            return self.reply(req, True)
        run.still_step = run.step_count
        self.report(run, snapshot, still=True)
        self.reply(req, True)

    def do_call(self, run: Run, fn: Callable, req: int) -> None:
        try:
            value = fn(run.trainer)
        except Exception as err:
            return self.reply(req, False, err)
        self.reply(req, True, value)

    def do_fork(self, run: Run, new_id: int, running: bool, seq: int, hot: dict, message: str, req: int) -> None:
        """Copy `run` as `new_id` at its current step; the copy trains (running) or stands still with
        `message`, and takes `hot` before its first step. `run` itself is not touched."""
        from explorer.fork import fork_trainer  # imports torch: only a worker that forks needs it now
        try:
            trainer = fork_trainer(run.trainer)
        except Exception as err:   # something in the trainer that does not copy: say so, keep the run
            return self.reply(req, False, RuntimeError(f"Could not make your own copy of this run: {err}."))
        self.begin_copy(run.copy_as(new_id, trainer), running, seq, hot, message, req)

    def do_export(self, run: Run, req: int) -> None:
        """`run` as it stands between two chunks, pickled (its trainer and clock), for another worker to
        go on with as a copy (a fork placed where fewer runs train); `run` itself is not touched.
        Pickling copies what a deep copy does (explorer/fork.py), and refuses a closure outright."""
        try:
            blob = pickle.dumps((run.trainer, run.snapshot_fn, run.still_fn, run.options, run.clock()),
                                protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:   # something in the trainer that does not pickle: the server forks here
            return self.reply(req, False, RuntimeError(f"This run cannot be sent to another worker: {err}."))
        self.reply(req, True, blob)

    def adopt(self, new_id: int, blob: bytes, running: bool, seq: int, hot: dict, message: str, req: int) -> None:
        """A run another worker exported (do_export), as `new_id` here: a fork made there, placed here."""
        try:
            trainer, snapshot_fn, still_fn, options, clock = pickle.loads(blob)
        except Exception as err:
            return self.reply(req, False, RuntimeError(f"Could not take over the copy of this run: {err}."))
        twin = Run(new_id, trainer, snapshot_fn, still_fn, options)
        twin.take_clock(clock)
        self.begin_copy(twin, running, seq, hot, message, req)

    def begin_copy(self, twin: Run, running: bool, seq: int, hot: dict, message: str, req: int) -> None:
        """A copy of a run (a fork, here or from another worker) joins this worker's runs: training if
        `running`, else standing still with `message`; `hot` applies before its first step."""
        twin.seq = seq
        twin.state, twin.message = ("running", "") if running else ("paused", message)
        self.apply(twin, hot)
        self.runs[twin.id] = twin
        self.turns.append(("run", twin.id))
        if running:
            self.report(twin)
        else:
            self.settle(twin)   # the picture of exactly the step it was copied at
        self.reply(req, True)

    def apply(self, run: Run, hot: dict, planned: bool = False) -> None:
        """Give the trainer hot settings now and note the step. A visitor's change (not `planned`)
        ends the plan: from here on the visitor steers."""
        if not hot:
            return
        try:
            run.trainer.update(**hot)
        except ValueError as err:   # a bad value: say so, keep training with the old one
            run.message = f"Could not change {', '.join(hot)}: {err}"
            return
        if len(run.changes) < MAX_CHANGES:
            run.changes.append(Change(run.step_count, dict(hot)))
        else:
            run.changes_lost = True
        if not planned:
            run.planned = []

    def advance(self, run: Run, n: int) -> None:
        """n steps, each planned change applied after exactly its step's number of steps."""
        target = run.step_count + n
        while True:
            while run.planned and run.planned[0].step <= run.step_count:
                self.apply(run, run.planned.pop(0).hot, planned=True)
                run.planned_done += 1
            left = target - run.step_count
            if left <= 0:
                return
            until = run.planned[0].step - run.step_count if run.planned else left
            run.trainer.step(min(left, until))

    # ------------------------------------------------------------------ training
    def train_chunk(self, run: Run) -> None:
        n, t0 = run.chunk, time.monotonic()
        if not run.speed:
            run.speed.append((t0, run.step_count))
        snapshot = None
        try:
            if run.snapshot_error is not None:   # the snapshot thread's last job failed
                raise run.snapshot_error
            self.advance(run, n)
            dt = time.monotonic() - t0
            now = time.monotonic()
            trained = run.run_seconds + dt
            if not self.snapshots.busy and run.snapshot_due(now, trained):
                view = run.trainer.snapshot_view() if hasattr(run.trainer, "snapshot_view") else None
                run.last_snapshot_t, run.wanted, run.trained_at_snapshot = now, False, trained
                if view is not None:
                    self.snapshots.submit(partial(self.draw_view, run, view, now))
                else:
                    snapshot = run.snapshot_fn(run.trainer)
                    run.snapshot_taken(now)
        except Exception as err:   # Diverged, or a bug: the page shows the message, not a traceback
            return self.fail(run, err)
        run.run_seconds += time.monotonic() - t0
        run.speed.append((time.monotonic(), run.step_count))
        while len(run.speed) > 2 and run.speed[-1][0] - run.speed[1][0] >= SPEED_WINDOW_S:
            run.speed.popleft()
        if run.steps_per_tick is None and dt > 0:   # chunks of about tick_s; at most 2x change at once
            run.chunk = next_turn(n, dt, run.tick_s)
        if run.run_seconds >= run.max_seconds:
            run.state, run.final = "stopped", True
            run.message = (f"Stopped after {minutes(run.max_seconds)} of training, the limit per run. "
                           "Download the checkpoint to keep it, or press Reset.")
            return self.settle(run)
        if snapshot is not None:
            self.report(run, snapshot)

    def draw_view(self, run: Run, view: Any, began: float) -> None:
        """In the snapshot thread: draw a live snapshot of `view` (run's trainer as it stood), send it."""
        try:
            snapshot = run.snapshot_fn(view)
        except Exception as err:   # the training loop ends the run with it at its next chunk
            run.snapshot_error = err
            return
        run.snapshot_taken(began)
        self.report(run, snapshot)

    def settle(self, run: Run) -> None:
        """After a pause or a stop, show the weights as they are now (not a snapshot ago)."""
        self.snapshots.wait()   # the live snapshot being drawn, if any, arrives before this one
        snapshot = None
        if run.state != "error" and run.still_step != run.step_count:
            try:
                snapshot = run.still_fn(run.trainer)
                run.still_step = run.step_count
            except Exception as err:   # drawing failed: keep the older snapshot, say why
                run.message = (run.message + f" (could not draw the last state: {err})").strip()
        self.report(run, snapshot, still=snapshot is not None)

    def fail(self, run: Run, err: BaseException) -> None:
        log.warning("training run failed", exc_info=err)   # the last good snapshot stays on the page
        run.state, run.message = "error", failure_message(err)
        free_gpu_memory()
        self.report(run)

    # ------------------------------------------------------------------ jobs
    def start_job(self, req: int, fn: Callable, args: tuple) -> None:
        try:
            value = fn(*args)
        except Exception as err:
            return self.reply(req, False, err)
        if hasattr(value, "__next__") and hasattr(value, "send"):   # a generator: one item per turn
            self.jobs[req] = value
            self.turns.append(("job", req))
        else:
            self.reply(req, True, value)

    def advance_job(self, req: int) -> None:
        try:
            value = next(self.jobs[req])
        except StopIteration as done:
            del self.jobs[req]
            return self.reply(req, True, done.value)
        except Exception as err:
            del self.jobs[req]
            return self.reply(req, False, err)
        self.send(("progress", req, value))


# ----------------------------------------------------------------------------- helpers
def minutes(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} seconds"


def portable(err: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(str(err) or type(err).__name__)


def failure_message(err: BaseException) -> str:
    from explorer.limits import out_of_memory_message
    return out_of_memory_message(err) or str(err) or type(err).__name__


def free_gpu_memory() -> None:
    from explorer.limits import free_gpu_memory as free
    free()


def settle_process(threads: int, nice: int) -> None:
    """Process-wide settings of a worker, made once here: priority, torch threads, allocator."""
    if nice:
        lower_priority(nice)
    configure(threads)


def lower_priority(nice: int) -> None:
    """Run `nice` steps below the server, against every other process too.

    os.nice alone is not enough where the kernel groups processes by session (autogroup, the default
    on most Linux desktops and servers): the CPU is first shared between sessions, and nice counts
    only inside one. The pool starts each worker in a session of its own; its group's nice is set
    here as well. Raising nice needs no privilege; where it is refused, the worker runs as it is."""
    try:
        os.nice(nice)
    except OSError:
        pass
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:   # no autogroup (other kernels, macOS), or not allowed
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True, help="file descriptor of the socket to the server")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--nice", type=int, default=10, help="added to the OS priority (lower priority)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="explorer worker %(process)d: %(message)s")
    conn = Connection(socket.socket(fileno=args.fd).detach())
    worker = None
    try:
        settle_process(max(1, args.threads), args.nice)
        worker = Worker(conn)
        worker.serve()
    except KeyboardInterrupt:   # Ctrl-C in the server's terminal reaches us too: leave quietly
        pass
    finally:
        if worker is not None:
            worker.close()
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
