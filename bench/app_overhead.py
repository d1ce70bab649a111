"""What the live page costs the training: throughput with the page open vs headless, and frame time.

    python bench/app_overhead.py [--rounds 8] [--seconds 2] [--fps 4] [--width 128] [--grid 64]
                                 [--snapshot-every 0.5]

Baseline: trainer.step(25) on the main thread, nothing else. Page open: a Session trains the same
config in its thread (snapshots as the page takes them) while the main thread does what the page's
live view does at --fps: latest(), and for each new snapshot field_frame (field + points, figure
reused) and PNG encoding, plus the two charts every 2 s. Short alternating rounds (baseline, then
page) share the machine's noise; the script prints each round's ratio, their median (target >= 0.80),
the same ratio per CPU second of the whole process (robust to a busy machine), and the frame time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from explorer import plots  # noqa: E402
from explorer.metrics import toy_snapshot  # noqa: E402
from explorer.session import Session  # noqa: E402
from explorer.training import ToyConfig, make_toy_trainer  # noqa: E402


def headless(trainer, seconds: float) -> tuple[float, float]:
    """(steps per wall second, steps per process CPU second)."""
    start, cpu, steps = time.perf_counter(), time.process_time(), trainer.step_count
    while time.perf_counter() - start < seconds:
        trainer.step(25)
    done = trainer.step_count - steps
    return done / (time.perf_counter() - start), done / (time.process_time() - cpu)


class Page:
    """The page's live view: polls the session and draws each new snapshot once."""

    def __init__(self, session: Session):
        self.session, self.fig, self.drawn, self.next_chart = session, None, None, 0.0
        self.frames: list[tuple[float, float]] = []   # (wall ms, CPU ms) per drawn frame

    def tick(self) -> None:
        snap = self.session.latest()
        if snap is not self.drawn:
            t0, c0 = time.perf_counter(), time.thread_time()
            self.fig = plots.field_frame(snap, legend=False, reuse=self.fig)
            plots.figure_png(self.fig)
            self.frames.append((1000 * (time.perf_counter() - t0), 1000 * (time.thread_time() - c0)))
            self.drawn = snap
        if time.perf_counter() >= self.next_chart:       # the charts fragment, every 2 s
            log = self.session.metrics_log()
            plots.distance_chart(snap.history, log).to_json()
            plots.loss_chart(snap.history).to_json()
            self.next_chart = time.perf_counter() + 2.0


def page_open(session: Session, page: Page, seconds: float, fps: float) -> tuple[float, float]:
    """(steps per wall second, steps per process CPU second: training, snapshots and page together)."""
    steps0 = session.call(lambda t: t.step_count)
    start, cpu = time.perf_counter(), time.process_time()
    session.start()
    while time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        page.tick()
        time.sleep(max(0.0, 1 / fps - (time.perf_counter() - tick)))
    session.pause()
    done = session.call(lambda t: t.step_count) - steps0
    return done / (time.perf_counter() - start), done / (time.process_time() - cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    ap.add_argument("--fps", type=float, default=4.0)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--grid", type=int, default=64, help="critic field grid while running (the page's)")
    ap.add_argument("--snapshot-every", type=float, default=0.5, help="seconds between snapshots (the page's)")
    args = ap.parse_args()
    cfg = ToyConfig(width=args.width, device="cpu")
    print(f"config: width {cfg.width}, depth {cfg.depth}, batch {cfg.batch_size}, n_critic {cfg.n_critic}; "
          f"page polls at {args.fps:g} fps, snapshot every {args.snapshot_every:g} s, field grid {args.grid}; "
          f"{args.rounds} rounds of {args.seconds:g} s + "
          f"{args.seconds:g} s")
    torch.set_num_threads(1)                            # what the session's thread uses
    trainer = make_toy_trainer(replace(cfg))
    trainer.step(25)                                   # warm-up
    session = Session(lambda: make_toy_trainer(replace(cfg)),
                      lambda t: toy_snapshot(t, t.source, grid=args.grid), snapshot_every_s=args.snapshot_every,
                      max_seconds=1e9, idle_pause_s=1e9)
    session.step(25)
    page = Page(session)
    ratios, cpu_ratios = [], []
    try:
        for r in range(args.rounds):
            base, base_cpu = headless(trainer, args.seconds)
            live, live_cpu = page_open(session, page, args.seconds, args.fps)
            ratios.append(live / base)
            cpu_ratios.append(live_cpu / base_cpu)
            print(f"round {r + 1}: headless {base:6.1f} steps/s   page open {live:6.1f} steps/s   "
                  f"ratio {ratios[-1]:.2f}   (per CPU second: {cpu_ratios[-1]:.2f})")
    finally:
        session.stop()
    print(f"page-open / headless throughput: median {statistics.median(ratios):.2f} over {len(ratios)} "
          f"rounds (min {min(ratios):.2f}, max {max(ratios):.2f})  (target >= 0.80)")
    print(f"steps per process CPU second, page-open / headless: median {statistics.median(cpu_ratios):.2f} "
          "(all of the page's work counted against training, as if on one core)")
    wall, cpu = zip(*page.frames)
    print(f"frame (field + points + PNG), {len(wall)} frames: wall median {statistics.median(wall):.1f} ms, "
          f"p90 {sorted(wall)[int(0.9 * (len(wall) - 1))]:.1f} ms; CPU median {statistics.median(cpu):.1f} ms")


if __name__ == "__main__":
    main()
