"""How long until a 2-D WGAN-GP has learned 8 Gaussians? Wall time of the app's defaults vs the lecture notes.

"Learned" = all 8 modes captured, >= 90% high-quality samples (within 3 std of a centre) and exact
W1(fake, real) <= 1.5 x the noise floor W1(real, real'), all on n_eval samples, checked every
`--check-every` generator steps. Training time excludes the checks; both are printed.

    python bench/toy_convergence.py                 # defaults, then the lecture-notes settings
    python bench/toy_convergence.py --seeds 0 1 2 --budget 120
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from explorer.metrics import mode_stats, w1_exact  # noqa: E402
from explorer.process import configure  # noqa: E402
from explorer.toy_training import ToyConfig, make_toy_trainer  # noqa: E402

LECTURE = dict(lam=0.1, width=512, lr_g=1e-4, lr_c=1e-4, n_critic=5)  # the notes' wgan_for_point_distros.py


def converge(cfg: ToyConfig, budget_s: float, check_every: int, n_eval: int) -> dict:
    """Train until the three criteria hold or the training-time budget is spent."""
    trainer = make_toy_trainer(cfg)
    src = trainer.source
    g = torch.Generator().manual_seed(12345)
    real, real2 = src.sample(n_eval, g), src.sample(n_eval, g)
    z = torch.randn(n_eval, cfg.noise_dim, generator=g)
    floor = w1_exact(real, real2)
    train_s = check_s = 0.0
    while True:
        t0 = time.perf_counter()
        trainer.step(check_every)
        t1 = time.perf_counter()
        with torch.no_grad():
            fake = trainer.generator(z.to(trainer.device)).cpu()
        modes, hq = mode_stats(fake, src.centres, src.std)
        w1 = w1_exact(fake, real)
        check_s += time.perf_counter() - t1
        train_s += t1 - t0
        done = modes == 8 and hq >= 0.9 and w1 <= 1.5 * floor
        if done or train_s > budget_s:
            return dict(done=done, steps=trainer.step_count, train_s=train_s, total_s=train_s + check_s,
                        modes=modes, hq=hq, w1=w1, floor=floor)


def main() -> None:
    configure(threads=1)   # as a worker trains: one torch thread (explorer/process.py)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budget", type=float, default=60.0, help="training seconds per run before giving up")
    p.add_argument("--check-every", type=int, default=100)
    p.add_argument("--n-eval", type=int, default=1000)
    p.add_argument("--skip-lecture", action="store_true", help="only the app's defaults")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="override default ToyConfig fields, e.g. --set width=256 lr_g=5e-4")
    args = p.parse_args()
    defaults = {k: type(getattr(ToyConfig(), k))(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    print(f"torch {torch.__version__}, cores {os.cpu_count()}, load avg {os.getloadavg()} "
          f"(a shared machine inflates every time below)")
    runs = [("defaults" + (f" with {defaults}" if defaults else ""), defaults)]
    if not args.skip_lecture:
        runs.append(("lecture notes", LECTURE))
    for label, override in runs:
        cfg0 = ToyConfig(**override)
        print(f"\n{label}: width {cfg0.width}, depth {cfg0.depth}, lam {cfg0.lam}, lr {cfg0.lr_g}, "
              f"n_critic {cfg0.n_critic}, batch {cfg0.batch_size}, {cfg0.optimizer}, torch threads {torch.get_num_threads()}")
        for seed in args.seeds:
            r = converge(ToyConfig(seed=seed, **override), args.budget, args.check_every, args.n_eval)
            status = "reached" if r["done"] else f"NOT reached within {args.budget:g} s"
            print(f"  seed {seed}: {status} at step {r['steps']}: train {r['train_s']:.1f} s "
                  f"(+checks {r['total_s'] - r['train_s']:.1f} s); modes {r['modes']}/8, hq {r['hq']:.1%}, "
                  f"W1 {r['w1']:.4f} vs floor {r['floor']:.4f} ({r['w1'] / r['floor']:.2f}x)")
    print(f"\nload avg at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
