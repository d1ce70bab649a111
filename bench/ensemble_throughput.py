"""Throughput of a batched ensemble vs the same runs trained one after another with the Trainer.

K runs (default 8) of the app's 2-D WGAN-GP at width 128 (ToyConfig defaults: 3 hidden layers,
batch 256, 5 critic steps per generator step), differing in lambda and seed. Both ways do exactly the
same maths on the same draws (tests/test_ensemble.py); the ensemble stacks the K runs' weights and
does one batched matmul per layer. Throughput = generator steps of all K runs per second.

    python bench/ensemble_throughput.py                  # K=8, width 128, 20 steps, 1 thread
    python bench/ensemble_throughput.py --threads 2 --steps 40 --json

"Trainer" is what the app runs: on CPU it takes the hand-derived gradients of explorer/fast_mlp.py;
the Trainer's autograd path (the ensemble's own formulation, one run at a time) is printed too.
All are timed in the same process, interleaved (sequential, ensemble, sequential, ensemble, ...),
and the best of --repeats is kept, so load from other processes hurts both alike. The default is one
intra-op thread: on a small shared box extra OpenMP threads mostly wait for each other.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from explorer.ensemble import Ensemble, grid_configs  # noqa: E402
from explorer.grid import GridConfig  # noqa: E402
from explorer.training import ToyConfig, make_toy_trainer  # noqa: E402


def member_configs(k: int, width: int, batch: int = 256) -> list[ToyConfig]:
    lams = [0.1, 1.0, 10.0, 100.0][: max(1, min(4, k))]
    seeds = list(range((k + len(lams) - 1) // len(lams)))
    return grid_configs(ToyConfig(width=width, batch_size=batch, device="cpu"), "lam", lams, "seed", seeds)[:k]


def time_sequential(cfgs: list[ToyConfig], steps: int, fast: bool = True) -> float:
    trainers = [make_toy_trainer(replace(c)) for c in cfgs]
    if not fast:
        for t in trainers:
            t.fast = None             # the Trainer's autograd path
    for t in trainers:
        t.step(2)                     # warm-up (allocator, first-call overheads)
    t0 = time.perf_counter()
    for t in trainers:
        t.step(steps)
    return time.perf_counter() - t0


def time_ensemble(cfgs: list[ToyConfig], steps: int) -> float:
    ens = Ensemble(cfgs)
    ens.step(2)
    t0 = time.perf_counter()
    ens.step(steps)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=8, help="runs trained together")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch", type=int, default=256, help="batch size (ToyConfig default 256)")
    ap.add_argument("--steps", type=int, default=20, help="generator steps per run and timing")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfgs = member_configs(args.k, args.width, args.batch)
    seq, auto, ens = [], [], []
    for _ in range(args.repeats):
        seq.append(time_sequential(cfgs, args.steps))
        auto.append(time_sequential(cfgs, args.steps, fast=False))
        ens.append(time_ensemble(cfgs, args.steps))
    total = args.k * args.steps
    seq_rate, auto_rate, ens_rate = total / min(seq), total / min(auto), total / min(ens)
    engine = GridConfig(base=cfgs[0]).resolved_engine()
    result = {"k": args.k, "width": args.width, "batch": args.batch, "steps": args.steps, "threads": args.threads,
              "sequential_steps_per_s": round(seq_rate, 2), "sequential_autograd_steps_per_s": round(auto_rate, 2),
              "ensemble_steps_per_s": round(ens_rate, 2), "ratio": round(ens_rate / seq_rate, 2), "target": 3.0,
              "grid_engine_here": engine}
    print(f"K={args.k} runs, width {args.width}, batch {args.batch}, {args.steps} generator steps each, {args.threads} thread(s)")
    print(f"  one after another (Trainer):           {seq_rate:8.2f} run-steps/s  (best of {args.repeats})")
    print(f"  one after another (its autograd path): {auto_rate:8.2f} run-steps/s")
    print(f"  batched ensemble:                      {ens_rate:8.2f} run-steps/s")
    print(f"  ratio ensemble / Trainer: {ens_rate / seq_rate:.2f}x  (target >= 3x); ensemble / autograd path: "
          f"{ens_rate / auto_rate:.2f}x")
    print(f"  the grid trains with: {engine!r} here (explorer/grid.py picks the faster engine)")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
