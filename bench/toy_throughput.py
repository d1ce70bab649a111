"""Generator steps per second: the app's Trainer vs a loop written the way the lecture notes write it.

Same maths (WGAN-GP, lambda 0.1, 5 critic steps, batch 256, Adam 1e-4 (0.5, 0.9), 3 hidden layers),
same networks, CPU, measured side by side in one run (alternating rounds, median reported).
The reference loop: NumPy data drawn point by point in a Python loop, separate forward/backward for
E f(real), E f(fake) and the penalty, fakes through an autograd-tracked generator, .item() every step.

Where the app's loop saves work: on CPU the Trainer's closed-form engine takes explorer/fast_mlp.py's
hand-derived gradients (no double backward: the products autograd spends pushing zeros through
ReLU'' = 0 are skipped; one generator forward for all critic iterations; Adam's fused kernel; glibc
keeps freed memory mapped), and losses stay on the device (checked every 25 steps). "autograd" is the
same Trainer with engine="autograd" (real and fake share one critic forward, fakes made under no_grad, the critic's
weight gradients skipped in the generator step).

The ablation row (on by default, at the first thread count; --no-ablation skips it) switches off the
closed-form engine's one private torch entry point, aten's threshold_backward for the ReLU masks
(fast_mlp.FUSED_RELU_MASK), to show what it buys on this CPU.

    python bench/toy_throughput.py                   # widths 128 and 512, threads 1 and 2
    python bench/toy_throughput.py --widths 128 --threads 1 --rounds 5
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from explorer import fast_mlp  # noqa: E402
from explorer.models import MLPCritic, MLPGenerator  # noqa: E402
from explorer.process import keep_freed_memory  # noqa: E402
from explorer.toy_training import ToyConfig, make_toy_trainer  # noqa: E402

B, LAM, N_CRITIC, LR = 256, 0.1, 5, 1e-4
ABLATIONS = {"FUSED_RELU_MASK": "aten.threshold_backward"}   # fast_mlp's switches for its private entry points


class LectureLoop:
    """WGAN-GP on 8 Gaussians as in wgan_for_point_distros.py (own code, same structure)."""

    def __init__(self, width: int, seed: int = 0):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        self.G, self.C = MLPGenerator(2, width, 3), MLPCritic(2, width, 3)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=(0.5, 0.9))
        self.opt_c = torch.optim.Adam(self.C.parameters(), lr=LR, betas=(0.5, 0.9))
        self.data = self._source()
        self.log: list[tuple[float, float, float]] = []

    @staticmethod
    def _source():
        s = 1 / np.sqrt(2)
        centres = [(2 * x, 2 * y) for x, y in [(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]]
        while True:
            batch = []
            for _ in range(B):
                point = np.random.randn(2) * 0.1
                cx, cy = random.choice(centres)
                point[0] += cx
                point[1] += cy
                batch.append(point)
            yield np.array(batch, dtype="float32") / 1.414

    def _penalty(self, real, fake):
        eps = torch.rand(B, 1).expand(real.size())
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        out = self.C(x_hat)
        grad = torch.autograd.grad(out, x_hat, grad_outputs=torch.ones(out.size()),
                                   create_graph=True, retain_graph=True, only_inputs=True)[0]
        return ((grad.norm(2, dim=1) - 1) ** 2).mean() * LAM

    def step(self) -> None:
        one, minus_one = torch.ones(1), -torch.ones(1)
        for p in self.C.parameters():
            p.requires_grad = True
        for _ in range(N_CRITIC):
            real = torch.Tensor(next(self.data)).requires_grad_(True)
            self.C.zero_grad()
            d_real = self.C(real).mean().unsqueeze(0)
            d_real.backward(minus_one)
            noise = torch.randn(B, 2).requires_grad_(True)
            fake = self.G(noise)
            d_fake = self.C(fake).mean().unsqueeze(0)
            d_fake.backward(one)
            gp = self._penalty(real, fake.data)
            gp.backward()
            loss_c = d_fake - d_real + gp
            w = d_real - d_fake
            self.opt_c.step()
        for p in self.C.parameters():
            p.requires_grad = False
        self.G.zero_grad()
        d_g = self.C(self.G(torch.randn(B, 2).requires_grad_(True))).mean().unsqueeze(0)
        d_g.backward(minus_one)
        self.opt_g.step()
        self.log.append((loss_c.item(), w.item(), -d_g.item()))


class AppLoop:
    """The app's Trainer with the same maths and settings, on one engine; `off` names a fast_mlp
    switch to turn off while this loop trains (an ablation row)."""

    def __init__(self, width: int, seed: int = 0, engine: str = "closed_form", off: str | None = None):
        cfg = ToyConfig(loss="wgan-gp", lam=LAM, n_critic=N_CRITIC, batch_size=B, lr_g=LR, lr_c=LR,
                        width=width, depth=3, seed=seed, engine=engine)
        self.trainer = make_toy_trainer(cfg)
        assert self.trainer.engine == engine, f"the {engine} engine did not apply"
        self.off = off

    def train(self, steps: int) -> None:
        if self.off is None:
            self.trainer.step(steps)
            return
        before = getattr(fast_mlp, self.off)
        setattr(fast_mlp, self.off, False)
        try:
            self.trainer.step(steps)
        finally:
            setattr(fast_mlp, self.off, before)


def rate(loop, steps: int) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second of this process). On a shared machine the CPU
    figure is the steadier one; with more than one thread it counts every thread's time."""
    t0, c0 = time.perf_counter(), time.process_time()
    if isinstance(loop, AppLoop):
        loop.train(steps)  # how the app drives it: many steps per call
    else:
        for _ in range(steps):
            loop.step()
    return steps / (time.perf_counter() - t0), steps / (time.process_time() - c0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int, nargs="+", default=[128, 512])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0, help="target seconds per measurement")
    p.add_argument("--no-ablation", dest="ablation", action="store_false", help="skip the ablation rows")
    args = p.parse_args()
    keep_freed_memory()   # what a worker process does at its start (explorer/process.py)
    print(f"torch {torch.__version__}, cores {os.cpu_count()}, load avg {os.getloadavg()}")
    print(f"WGAN-GP, batch {B}, n_critic {N_CRITIC}, depth 3, lambda {LAM}; generator steps/s, median of "
          f"{args.rounds} alternating rounds")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for width in args.widths:
            loops = {"lecture": LectureLoop(width), "autograd": AppLoop(width, engine="autograd"), "app": AppLoop(width)}
            ablate = args.ablation and threads == args.threads[0]
            if ablate:
                for switch in ABLATIONS:
                    loops[switch] = AppLoop(width, off=switch)
            steps = {k: max(2, int(args.seconds * rate(v, 2)[0])) for k, v in loops.items()}  # warm-up, sizing
            rates: dict[str, list[tuple[float, float]]] = {k: [] for k in loops}
            for _ in range(args.rounds):
                for k, loop in loops.items():
                    rates[k].append(rate(loop, steps[k]))
            (ref, ref_cpu), (auto, _), (app, app_cpu) = [
                tuple(statistics.median(r[i] for r in rates[k]) for i in (0, 1))
                for k in ("lecture", "autograd", "app")]
            print(f"threads {threads} width {width:4d}: wall: lecture {ref:7.1f}  autograd {auto:7.1f} "
                  f"({auto / ref:4.2f}x)  app {app:7.1f}  ratio {app / ref:5.2f}x | per CPU second: "
                  f"lecture {ref_cpu:7.1f}  app {app_cpu:7.1f}  ratio {app_cpu / ref_cpu:5.2f}x")
            for switch in ABLATIONS if ablate else ():
                without = statistics.median(r[0] for r in rates[switch])
                print(f"    ablation: app without {ABLATIONS[switch]:<32} {without:7.1f} steps/s: "
                      f"the entry point buys {app / without:5.2f}x")
    print(f"load avg at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
