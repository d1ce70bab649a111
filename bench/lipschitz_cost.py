"""What the Lipschitz health panel costs the training: steps/s with and without it, same run.

    python bench/lipschitz_cost.py [--rounds 5] [--seconds 6] [--depth 3]

Trains the 2-D page's default run the way a worker does (chunks of about 0.1 s, a snapshot with a
64 x 64 critic field at most every 0.3 s, the page's default rate) once with the per-layer gradient
norms, weight histogram and diagnosis in every snapshot (explorer/lipschitz.py) and once without,
in alternating rounds on one thread. Target: at most 10% slower. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.process import configure  # noqa: E402
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot  # noqa: E402

TICK_S, SNAPSHOT_S, GRID = 0.1, 0.3, 64   # as the worker and the 2-D page run


def rate(trainer, seconds: float, lipschitz: bool) -> float:
    """Steps per second over `seconds`, snapshots included, in the worker's rhythm."""
    start, steps, chunk, last = time.perf_counter(), trainer.step_count, 5, 0.0
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        trainer.step(chunk)
        chunk = max(1, int(chunk * TICK_S / max(1e-6, time.perf_counter() - t0)))
        if time.perf_counter() - last >= SNAPSHOT_S:
            toy_snapshot(trainer, grid=GRID, lipschitz=lipschitz)
            last = time.perf_counter()
    return (trainer.step_count - steps) / (time.perf_counter() - start)


def snapshot_ms(trainer, lipschitz: bool, repeats: int = 20) -> float:
    t0 = time.perf_counter()
    for _ in range(repeats):
        toy_snapshot(trainer, grid=GRID, lipschitz=lipschitz)
    return 1000 * (time.perf_counter() - t0) / repeats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=6.0, help="per measurement")
    ap.add_argument("--depth", type=int, default=3, help="hidden layers of both networks (page default 3)")
    args = ap.parse_args()
    configure(threads=1)
    cfg = replace(ToyConfig(), depth=args.depth)
    trainer = make_toy_trainer(cfg)
    trainer.step(50)
    print(f"{os.cpu_count()} cores, 1 thread; 2-D page defaults, depth {cfg.depth}; snapshot every {SNAPSHOT_S} s, "
          f"{GRID} x {GRID} field; {args.rounds} alternating rounds of {args.seconds:g} s")
    with_, without = [], []
    for r in range(args.rounds):
        with_.append(rate(trainer, args.seconds, True))
        without.append(rate(trainer, args.seconds, False))
        print(f"round {r + 1}: with the health panel {with_[-1]:6.1f} steps/s, without {without[-1]:6.1f}")
    a, b = statistics.median(with_), statistics.median(without)
    cost_with, cost_without = snapshot_ms(trainer, True), snapshot_ms(trainer, False)
    print(f"median: with {a:.1f} steps/s, without {b:.1f}: {a / b:.3f}x (target >= 0.90); one snapshot "
          f"{cost_with:.1f} ms with, {cost_without:.1f} ms without")
    print(json.dumps({"with_steps_per_s": round(a, 2), "without_steps_per_s": round(b, 2), "ratio": round(a / b, 4),
                      "snapshot_ms_with": round(cost_with, 2), "snapshot_ms_without": round(cost_without, 2),
                      "depth": cfg.depth}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
