"""One sweep three ways: in this process one run after another, on the local pool, on Ray.

The same 64 short runs (8 Gaussians, WGAN-GP: lambda 0.1/1/10/100 x 1 or 5 critic steps x 8 seeds,
30 generator steps, about a second each on one core) are trained sequentially here, then by
run_sweep on a fresh local pool (one worker a core), then by run_sweep on a local single-node Ray
cluster with this machine's CPUs. Wall time is measured around each whole sweep, worker start-up
included (the pool's workers and Ray's import torch on their first run). Ray's own start
(ray.init) is timed apart and NOT counted in ray_s: a cluster is started once and runs many sweeps.
Ray's overhead per run = (ray_s - local_pool_s) / runs; the target is ray_s within 15% of local_pool_s.
Every backend must give the same rows (all but seconds): same_rows says whether they did.

    python bench/sweep.py                  # 64 runs of 30 steps
    python bench/sweep.py --steps 10 --seeds 2

The last line is one JSON object: runs, sequential_s, local_pool_s, ray_s, ray_init_s,
ray_overhead_per_run_ms, ray_vs_pool, same_rows, cpu, cores.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from explorer.process import configure  # noqa: E402

configure(threads=1)    # the sequential runs get what every worker gets: one torch thread
from machine import cpu_model  # noqa: E402

from explorer.sweep import grid_configs, run_sweep, train_one  # noqa: E402
from explorer.toy_training import ToyConfig  # noqa: E402

TARGET = 1.15   # ray_s / local_pool_s


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def sequential(configs: list[ToyConfig], steps: int, keys: tuple[str, ...]) -> list[dict]:
    return [train_one(cfg, steps, keys) for cfg in configs]


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="generator steps of every run")
    parser.add_argument("--seeds", type=int, default=8, help="seeds per (lambda, critic steps): runs = 8 x seeds")
    args = parser.parse_args()
    import ray

    grid = {"lam": ["0.1", "1", "10", "100"], "n_critic": ["1", "5"], "seed": [str(s) for s in range(args.seeds)]}
    keys = tuple(grid)
    configs = grid_configs(ToyConfig.recommended("8gaussians", "wgan-gp"), grid)
    cores = os.cpu_count() or 1

    seq_rows, sequential_s = timed(sequential, configs, args.steps, keys)
    pool, local_pool_s = timed(run_sweep, configs, args.steps, "local", keys)
    _, ray_init_s = timed(lambda: ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False,
                                           logging_level=logging.WARNING))
    try:
        on_ray, ray_s = timed(run_sweep, configs, args.steps, "ray", keys)
    finally:
        ray.shutdown()

    runs = len(configs)
    failed = sum("error" in row for rows in (seq_rows, pool["runs"], on_ray["runs"]) for row in rows)
    same = without_seconds(seq_rows) == without_seconds(pool["runs"]) == without_seconds(on_ray["runs"])
    result = {
        "runs": runs, "steps": args.steps, "sequential_s": sequential_s, "local_pool_s": local_pool_s,
        "ray_s": ray_s, "ray_init_s": ray_init_s,
        "ray_overhead_per_run_ms": (ray_s - local_pool_s) / runs * 1000,
        "ray_vs_pool": ray_s / local_pool_s, "pool_speedup": sequential_s / local_pool_s,
        "target_met": ray_s <= TARGET * local_pool_s, "same_rows": same, "failed_runs": failed,
        "cpu": cpu_model(), "cores": cores, "ray": ray.__version__,
    }
    print(f"{runs} runs of {args.steps} steps on {cores} cores ({result['cpu']})")
    print(f"  {'sequential, in process':<28}{sequential_s:8.1f} s")
    print(f"  {'local pool':<28}{local_pool_s:8.1f} s   {result['pool_speedup']:.2f}x sequential")
    print(f"  {'Ray, local single node':<28}{ray_s:8.1f} s   {result['ray_vs_pool']:.3f}x the pool "
          f"(target <= {TARGET}), {result['ray_overhead_per_run_ms']:+.0f} ms a run")
    print(f"  {'ray.init (not in ray_s)':<28}{ray_init_s:8.1f} s")
    print(f"  same rows on every backend: {same}; failed runs: {failed}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
