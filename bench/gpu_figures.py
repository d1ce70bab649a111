"""The GPU's figures, each against a baseline measured in the same run; the last line is one JSON object.

- image GAN images/s (64x64 colour DCGAN, gan and wgan-gp) in float32, bf16 and fp16 with loss
  scaling, against the lecture notes' plain float32 loop on the same GPU (bench/image_throughput.py);
- the toy trainer's steps/s on the GPU against the CPU (the CPU on its fastest engine, the closed form);
- a grid's run-steps/s (lone trainers in lock-step, explorer/grid.py) on the GPU and on the CPU;
- the GPU's peak memory, torch and CUDA versions, the device's name.

    python bench/gpu_figures.py                          # on a CUDA machine (bench/gpu_check.sh runs it)
    python bench/gpu_figures.py --device cpu --quick     # the same code, tiny sizes, on a CPU (a smoke test)

Without CUDA (and --device cuda) it says so and prints {"cuda": false, ...} at once. Sections that
would start after --budget-s seconds are left out (named in "skipped"), so the run ends in time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from argparse import Namespace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import image_throughput  # noqa: E402
from machine import cpu_model  # noqa: E402

from explorer.grid import GridConfig, make_grid  # noqa: E402
from explorer.toy_training import ToyConfig, make_toy_trainer  # noqa: E402

FULL = {"images": dict(size=64, batch=64, features=64, steps=10, rounds=5, warmup=5, pool=2048),
        "toy_widths": (128, 512), "grid_width": 64, "seconds": 2.0, "rounds": 3}
QUICK = {"images": dict(size=28, batch=8, features=8, steps=2, rounds=1, warmup=1, pool=64),
         "toy_widths": (16,), "grid_width": 8, "seconds": 0.1, "rounds": 1}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def steps_per_s(runs: dict, seconds: float, rounds: int) -> dict:
    """Median steps per second of each run(k), sized to take about `seconds` a round, in alternating
    rounds (load changes hit every side alike). runs: name -> (run(k), device)."""
    sizes = {}
    for name, (run, device) in runs.items():      # warm-up, then a short timing to size the rounds
        run(2)
        sync(device)
        t0 = time.perf_counter()
        run(4)
        sync(device)
        sizes[name] = max(2, int(seconds * 4 / max(time.perf_counter() - t0, 1e-6)))
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (run, device) in runs.items():
            sync(device)
            t0 = time.perf_counter()
            run(sizes[name])
            sync(device)
            rates[name].append(sizes[name] / (time.perf_counter() - t0))
    return {name: statistics.median(r) for name, r in rates.items()}


def image_figures(device: str, sizes: dict) -> list[dict]:
    """images/s of ours in each precision against the float32 lecture-style loop (bench/image_throughput.py)."""
    rows = []
    for loss in ("gan", "wgan-gp"):
        for amp in ("off", "bf16", "fp16"):
            args = Namespace(**sizes, device=device, amp=amp, channels_last=True)
            row = image_throughput.bench(loss, args)
            rows.append({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
    return rows


def toy_figures(device: str, widths: tuple, seconds: float, rounds: int) -> list[dict]:
    """The app's toy run (recommended settings, 8 Gaussians) on `device` against the same run on the CPU."""
    rows = []
    for width in widths:
        trainers = {d: make_toy_trainer(ToyConfig.recommended("8gaussians", width=width, device=d))
                    for d in dict.fromkeys((device, "cpu"))}
        rates = steps_per_s({d: (t.step, d) for d, t in trainers.items()}, seconds, rounds)
        rows.append({"width": width, "batch_size": trainers["cpu"].cfg.batch_size,
                     f"{device}_steps_per_s": round(rates[device], 1), "cpu_steps_per_s": round(rates["cpu"], 1),
                     f"{device}_engine": trainers[device].engine, "cpu_engine": trainers["cpu"].engine,
                     "ratio": round(rates[device] / rates["cpu"], 2)})
    return rows


def grid_figures(device: str, width: int, seconds: float, rounds: int) -> dict:
    """Run-steps/s of the default grid (lambda x critic iterations) on `device` and on the CPU."""
    grids = {d: make_grid(GridConfig(base=ToyConfig.recommended("8gaussians", width=width, device=d)))
             for d in dict.fromkeys((device, "cpu"))}
    members = len(grids["cpu"].trainers)
    rates = steps_per_s({d: (g.step, d) for d, g in grids.items()}, seconds, rounds)
    return {"members": members, "width": width, "engine": "lone trainers in lock-step",
            **{f"{d}_run_steps_per_s": round(members * r, 1) for d, r in rates.items()}}


def describe(device: str) -> dict:
    info = {"cuda": device == "cuda", "torch": torch.__version__, "cuda_version": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(device=torch.cuda.get_device_name(0), capability=f"{props.major}.{props.minor}",
                    gpu_memory_gb=round(props.total_memory / 2**30, 1))
    else:
        info["device"] = f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"
    return info


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test of this script)")
    p.add_argument("--budget-s", type=float, default=240.0, help="start no section after this many seconds")
    p.add_argument("--tests-rc", type=int, default=None, help="exit status of the GPU tests (from gpu_check.sh)")
    p.add_argument("--tests-summary", default="", help="pytest's last line (from gpu_check.sh)")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("No CUDA GPU here (torch.cuda.is_available() is False): there are no GPU figures to measure.")
        print(json.dumps({**describe("cpu"), "reason": "torch.cuda.is_available() is False"}))
        return 0
    start = time.perf_counter()
    plan = QUICK if args.quick else FULL
    result = describe(args.device)
    if args.tests_rc is not None:
        result["gpu_tests"] = {"passed": args.tests_rc == 0, "rc": args.tests_rc, "summary": args.tests_summary}
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sections = {"image_gan": lambda: image_figures(args.device, plan["images"]),
                "toy": lambda: toy_figures(args.device, plan["toy_widths"], plan["seconds"], plan["rounds"]),
                "grid": lambda: grid_figures(args.device, plan["grid_width"], plan["seconds"], plan["rounds"])}
    result["skipped"] = []
    for name, measure in sections.items():
        if time.perf_counter() - start > args.budget_s:
            result["skipped"].append(name)
            continue
        t0 = time.perf_counter()
        result[name] = measure()
        print(f"{name} ({time.perf_counter() - t0:.0f} s): {json.dumps(result[name])}", flush=True)
    if args.device == "cuda":
        result["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
