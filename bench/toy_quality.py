"""How well the 2-D lab learns each toy dataset in a minute on one CPU core, against published numbers.

    python bench/toy_quality.py                                   # every case, seeds 0-4 (over an hour)
    python bench/toy_quality.py --cases 25gaussians --losses wgan-gp --seeds 0 1 --budget 60
    python bench/toy_quality.py --set lam=1 n_critic=2            # override the recommended settings
    python bench/toy_quality.py --presets --seeds 0 1 2 3 4       # Compare's presets, lock-step, 60 s

Each run starts from ToyConfig.recommended(dataset, loss) (plus --set) and trains on one thread for
--budget seconds of training time; every --check-every seconds it is evaluated (evaluation not
counted): 2,500 samples of trainer.eval_generator from fixed noise give modes captured and the share
of high-quality samples (within 3 std of the nearest centre; a mode counts when it is the nearest
centre of at least one high-quality sample, as in VEEGAN and PacGAN), and exact W1 on 1,000 vs
1,000 points is divided by its noise floor (two real samples of that size). Both sides of that ratio
are means, so that it measures the generator and not one sample's luck: W1 over W1_PAIRS pairs of
1,000 generated points (fixed noise) and 1,000 real ones, the floor over FLOOR_PAIRS pairs of real
samples (one pair's W1 scatters by a quarter of its mean on 8 Gaussians).

With --presets, each Compare preset named in PRESET_CASES runs in lock-step as the Compare page
trains it (CompareConfig(recommended=True)) for --budget seconds (default 60) of training time on
8 Gaussians, 25 Gaussians and the swiss roll; the report says, per seed, whether the preset's
WGAN-GP run is ahead of each other run on W1/floor, modes and high-quality share at the end.

A bar is met when it holds at the end and at each of the last three checks (a first passage
through a noisy threshold does not count); its time is the check from which it held to the end.
Last line: one JSON object.
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer import compare as C  # noqa: E402
from explorer.metrics import mode_stats, w1_exact, w1_floor  # noqa: E402
from explorer.process import configure  # noqa: E402
from explorer.sweep import typed_value  # noqa: E402
from explorer.toy_training import PUBLISHED_QUALITY, ToyConfig, make_toy_trainer  # noqa: E402

# case: (dataset, spread, the bar as (min modes share, min HQ, max W1 / floor), budget seconds)
CASES = {
    "8gaussians": ("8gaussians", None, (1.0, 0.95, 1.3), 5),
    "8gaussians-tight": ("8gaussians", 0.02, (1.0, 0.95, None), 30),
    "25gaussians": ("25gaussians", 0.05, (1.0, 0.90, None), 60),
    "swissroll": ("swissroll", None, (None, None, 1.5), 60),
    "ring": ("ring", None, (None, None, 1.5), 60),
}
N_EVAL, N_W1 = 2500, 1000
W1_PAIRS, FLOOR_PAIRS = 4, 16
# Compare presets whose WGAN-GP run should come out ahead, and the datasets they are checked on.
PRESET_CASES = {"WGAN-GP vs weight clipping": ("8gaussians", "25gaussians", "swissroll"),
                "GAN vs WGAN-GP": ("8gaussians", "25gaussians", "swissroll")}


def evaluate(trainer, z: torch.Tensor, reals: list, floor: float) -> dict:
    """Modes, high-quality share and W1 / floor of the run's eval_generator (fixed noise z)."""
    src = trainer.source
    with torch.no_grad():
        fake = trainer.eval_generator(z).numpy()
    w1 = statistics.fmean(w1_exact(fake[i * N_W1:(i + 1) * N_W1], real) for i, real in enumerate(reals))
    out = {"w1_ratio": w1 / floor}
    if src.centres is not None:
        modes, hq = mode_stats(fake[:N_EVAL], src.centres, src.std)
        out.update(modes=modes, n_modes=len(src.centres), hq=hq)
    return out


def meets(rec: dict, bar: tuple) -> bool:
    modes, hq, w1 = bar
    return ((modes is None or rec["modes"] >= modes * rec["n_modes"]) and (hq is None or rec["hq"] >= hq)
            and (w1 is None or rec["w1_ratio"] <= w1))


def met_at(checks: list[dict], bar: tuple) -> float | None:
    """The training time from which the bar held to the end, if it held at the last three checks."""
    passing = [meets(c, bar) for c in checks]
    if len(passing) < 3 or not all(passing[-3:]):
        return None
    i = len(passing) - 1
    while i > 0 and passing[i - 1]:
        i -= 1
    return checks[i]["t"]


def run(case: str, loss: str, seed: int, budget: float, every: float, overrides: dict) -> dict:
    dataset, spread, bar, _ = CASES[case]
    cfg = replace(ToyConfig.recommended(dataset, loss, spread), seed=seed, **overrides)
    trainer = make_toy_trainer(cfg)
    z, reals, floor = fixed_eval(trainer, seed)
    checks = []

    def check(trained: float) -> None:
        checks.append({"t": round(trained, 1), "step": trainer.step_count, **evaluate(trainer, z, reals, floor)})

    train_for(trainer.step, budget, every, check)
    at = {s: next((c for c in checks if c["t"] >= s), checks[-1]) for s in (15, 30, 60) if s <= budget + 1}
    return {"case": case, "loss": loss, "seed": seed, "bar_met_at_s": met_at(checks, bar),
            "steps": trainer.step_count, "at": at, "final": checks[-1]}


def train_for(step, budget: float, every: float | None = None, check=None) -> None:
    """step(n) in chunks of about 0.25 s until `budget` seconds of training; check(trained seconds)
    every `every` seconds of training and at the end (its time is not counted)."""
    trained, chunk, next_check = 0.0, 5, every
    while trained < budget:
        t0 = time.perf_counter()
        step(chunk)
        dt = time.perf_counter() - t0
        trained += dt
        chunk = max(1, int(chunk * 0.25 / max(dt, 1e-6)))
        if check is not None and (trained >= next_check or trained >= budget):
            check(trained)
            next_check += every


def fixed_eval(trainer, seed: int):
    """Fixed noise, W1_PAIRS real samples and the noise floor for one run's evaluations."""
    g = torch.Generator().manual_seed(1234 + seed)
    z = torch.randn(max(N_EVAL, W1_PAIRS * N_W1), trainer.cfg.noise_dim, generator=g)
    reals = [trainer.source.sample(N_W1, g).numpy() for _ in range(W1_PAIRS)]
    return z, reals, w1_floor(trainer.source, N_W1, pairs=FLOOR_PAIRS)


def run_preset(preset: str, dataset: str, seed: int, budget: float) -> dict:
    """One Compare preset in lock-step for `budget` seconds of training; is the WGAN-GP run ahead?"""
    spread = CASES["25gaussians"][1] if dataset == "25gaussians" else None
    base = ToyConfig.recommended(dataset, "wgan-gp", spread, seed=seed, device="cpu")
    runs = C.make_runs(C.preset_config(preset, base, recommended=True))
    train_for(runs.step, budget)
    finals = [evaluate(t, *fixed_eval(t, seed)) for t in runs.trainers]
    gp = next(i for i, t in enumerate(runs.trainers) if t.cfg.loss == "wgan-gp")
    mine, others = finals[gp], finals[:gp] + finals[gp + 1:]
    ahead = {"w1_ratio": all(mine["w1_ratio"] < o["w1_ratio"] for o in others)}
    if "modes" in mine:
        ahead["modes"] = all(mine["modes"] >= o["modes"] for o in others)
        ahead["hq"] = all(mine["hq"] > o["hq"] for o in others)
    return {"preset": preset, "dataset": dataset, "seed": seed, "steps": runs.step_count,
            "labels": runs.labels, "final": finals, "gp_ahead": ahead, "diverged": runs.diverged}


def preset_row(r: dict) -> str:
    parts = []
    for label, f in zip(r["labels"], r["final"]):
        q = f" {f['modes']}/{f['n_modes']} {100 * f['hq']:.0f}%" if "modes" in f else ""
        parts.append(f"{label}: W1/floor {f['w1_ratio']:.2f}{q}")
    ahead = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["gp_ahead"].items())
    return (f"{r['preset']:<27} {r['dataset']:<12} seed {r['seed']} step {r['steps']}: "
            f"{' | '.join(parts)} -> ahead: {ahead}")


def presets_main(seeds: list[int], budget: float) -> int:
    results = []
    for preset, datasets in PRESET_CASES.items():
        for dataset in datasets:
            for seed in seeds:
                results.append(run_preset(preset, dataset, seed, budget))
                print(preset_row(results[-1]), flush=True)
    summary = {f"{r['preset']}/{r['dataset']}": 0 for r in results}
    for r in results:
        summary[f"{r['preset']}/{r['dataset']}"] += all(r["gp_ahead"].values())
    print(json.dumps({"budget_s": budget, "seeds": seeds, "gp_ahead_on_all": summary, "runs": results}))
    return 0


def row(r: dict) -> str:
    f = r["final"]
    q = f" modes {f['modes']}/{f['n_modes']} HQ {100 * f['hq']:4.1f}%" if "modes" in f else ""
    met = f"bar met from {r['bar_met_at_s']:.0f} s" if r["bar_met_at_s"] is not None else "bar NOT met"
    return (f"{r['case']:<17} {r['loss']:<8} seed {r['seed']}: {r['steps']:6d} steps,{q} W1/floor "
            f"{f['w1_ratio']:.2f} -> {met}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--losses", nargs="+", default=["gan", "wgan", "wgan-gp"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--budget", type=float, default=None, help="seconds of training (default: the case's)")
    ap.add_argument("--check-every", type=float, default=None, help="seconds between checks (default budget/12)")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="override recommended fields")
    ap.add_argument("--presets", action="store_true", help="Compare's presets in lock-step instead")
    args = ap.parse_args()
    configure(threads=1)
    if args.presets:
        return presets_main(args.seeds, args.budget or 60.0)
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = typed_value(ToyConfig(), key, value)
    print(f"{os.cpu_count()} cores, 1 thread; overrides {overrides or 'none'}")
    results = []
    for case in args.cases:
        budget = args.budget or CASES[case][3]
        every = args.check_every or budget / 12
        dataset, spread = CASES[case][:2]
        published = PUBLISHED_QUALITY.get((dataset, spread))
        if published:
            print(f"  published, {case}: {published}")
        for loss in args.losses:
            for seed in args.seeds:
                results.append(run(case, loss, seed, budget, every, overrides))
                print(row(results[-1]), flush=True)
    summary = {}
    for case in args.cases:
        for loss in args.losses:
            rs = [r for r in results if r["case"] == case and r["loss"] == loss]
            summary[f"{case}/{loss}"] = {"met": sum(r["bar_met_at_s"] is not None for r in rs), "runs": len(rs),
                                         "median_w1_ratio": statistics.median(r["final"]["w1_ratio"] for r in rs)}
    print(json.dumps({"summary": summary, "runs": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
