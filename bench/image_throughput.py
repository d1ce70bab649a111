"""Images per second of our image-GAN training step against the lecture notes' plain loop.

Both sides train the same DCGAN pair (same sizes, same initial weights, same batch) on Shapes;
the baseline is measured in the same run, alternating rounds so machine noise hits both alike.

    python bench/image_throughput.py                     # CPU, gan and wgan-gp, 28x28
    python bench/image_throughput.py --device cuda --size 64 --amp fp16   # fp16 with loss scaling
    python bench/image_throughput.py --no-channels-last  # our step in the contiguous layout

images/s = generator steps x batch size / seconds (one step = n_critic critic updates + one
generator update, i.e. one iteration of the notes' loop over a data-loader batch).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.choices import PRECISIONS  # noqa: E402
from explorer.image_training import ImageConfig, build_networks, make_image_trainer  # noqa: E402
from explorer.images import make_shapes, to_float  # noqa: E402


# ----------------------------------------------------------------------------- the reference loop
class ReferenceLoop:
    """The training loop as the lecture notes write it (DCGAN DG1 loop; the cat-faces WGAN-GP loop).

    Deliberately plain: labels built with torch.full every batch, a sigmoid + nn.BCELoss, the
    fakes not detached in the WGAN-GP critic loop (backward with retain_graph=True), the gradient
    penalty from autograd.grad with grad_outputs=ones, the real batch copied from a CPU pool to
    the device each iteration (a DataLoader), and the same real batch reused for every critic step.
    """

    def __init__(self, cfg: ImageConfig, device: torch.device, pool: torch.Tensor):
        self.cfg, self.device, self.pool = cfg, device, pool
        G, C = build_networks(cfg)
        self.netG, self.netD = G.to(device), C.to(device)
        self.optG = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.optD = torch.optim.Adam(C.parameters(), lr=cfg.lr_c, betas=(cfg.beta1, cfg.beta2))
        self.criterion = nn.BCELoss()
        self.sigmoid = nn.Sigmoid()

    def _batch(self) -> torch.Tensor:
        idx = torch.randint(0, len(self.pool), (self.cfg.batch_size,))
        return to_float(self.pool[idx]).to(self.device)

    def iteration(self) -> None:
        cfg, dev, nz, b = self.cfg, self.device, self.cfg.latent_dim, self.cfg.batch_size
        real = self._batch()
        if cfg.loss == "gan":
            # Part 1(a): discriminator on reals with target 1
            self.netD.zero_grad()
            label = torch.full((b,), 1.0, dtype=torch.float, device=dev)
            output = self.sigmoid(self.netD(real)).view(-1)
            errD_reals = self.criterion(output, label)
            errD_reals.backward()
            # Part 1(b): discriminator on fakes with target 0
            noise = torch.randn(b, nz, 1, 1, device=dev)
            fakes = self.netG(noise)
            label.fill_(0.0)
            output = self.sigmoid(self.netD(fakes.detach())).view(-1)
            errD_fakes = self.criterion(output, label)
            errD_fakes.backward()
            self.optD.step()
            # Part 2: generator, target 1
            self.netG.zero_grad()
            label.fill_(1.0)
            output = self.sigmoid(self.netD(fakes)).view(-1)
            errG = self.criterion(output, label)
            errG.backward()
            self.optG.step()
            return
        for _ in range(cfg.n_critic):
            noise = torch.randn(b, nz, 1, 1, device=dev)
            fake = self.netG(noise)
            critic_real = self.netD(real).reshape(-1)
            critic_fake = self.netD(fake).reshape(-1)
            gp = self._gradient_penalty(real, fake)
            loss_critic = -(torch.mean(critic_real) - torch.mean(critic_fake)) + cfg.lam * gp
            self.netD.zero_grad()
            loss_critic.backward(retain_graph=True)
            self.optD.step()
        output = self.netD(fake).reshape(-1)
        loss_gen = -torch.mean(output)
        self.netG.zero_grad()
        loss_gen.backward()
        self.optG.step()

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        b, c, h, w = real.shape
        alpha = torch.rand((b, 1, 1, 1), device=self.device).repeat(1, c, h, w)
        interpolated = real * alpha + fake * (1 - alpha)
        mixed_scores = self.netD(interpolated)
        gradient = torch.autograd.grad(inputs=interpolated, outputs=mixed_scores,
                                       grad_outputs=torch.ones_like(mixed_scores),
                                       create_graph=True, retain_graph=True)[0]
        gradient = gradient.view(gradient.shape[0], -1)
        return torch.mean((gradient.norm(2, dim=1) - 1) ** 2)


# ----------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_rounds(run, steps: int, device: torch.device) -> float:
    """Seconds for `steps` iterations of run(k)."""
    _sync(device)
    t0 = time.perf_counter()
    run(steps)
    _sync(device)
    return time.perf_counter() - t0


def bench(loss: str, args: argparse.Namespace) -> dict:
    cfg = ImageConfig.for_loss(loss=loss, image_size=args.size, batch_size=args.batch, g_features=args.features,
                      c_features=args.features, device=args.device, amp=args.amp,
                      channels_last=args.channels_last, seed=0)
    ours = make_image_trainer(cfg)
    device = ours.device
    channels = cfg.channels
    pool = torch.from_numpy(make_shapes(args.pool, cfg.image_size, channels, seed=1))
    ref = ReferenceLoop(ImageConfig(**{**cfg.__dict__, "amp": "off", "channels_last": False}), device, pool)

    def run_ref(k: int) -> None:
        for _ in range(k):
            ref.iteration()

    run_ours = ours.step
    for fn in (run_ref, run_ours):     # warm-up: allocator, cuDNN autotuning, first-call overheads
        time_rounds(fn, args.warmup, device)
    t_ref, t_ours = [], []
    for _ in range(args.rounds):       # alternate so load changes hit both sides alike
        t_ref.append(time_rounds(run_ref, args.steps, device))
        t_ours.append(time_rounds(run_ours, args.steps, device))
    per = args.steps * cfg.batch_size
    ref_ips, ours_ips = per / statistics.median(t_ref), per / statistics.median(t_ours)
    return {"loss": loss, "n_critic": cfg.n_critic, "amp": ours.amp, "reference_images_per_s": ref_ips,
            "ours_images_per_s": ours_ips, "ratio": ours_ips / ref_ips}


def device_name(device: str) -> str:
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return f"cuda ({torch.cuda.get_device_name(0)})"
    from machine import cpu_model
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loss", choices=["gan", "wgan", "wgan-gp", "all"], default="all")
    p.add_argument("--size", type=int, choices=[28, 32, 64], default=28)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--features", type=int, default=32, help="feature maps of both networks")
    p.add_argument("--steps", type=int, default=10, help="generator steps per timed round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--pool", type=int, default=2048, help="real images in the reference's CPU pool")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--amp", default="auto", choices=PRECISIONS,
                   help="ours only (the reference is float32): auto is bf16 on a GPU, off on a CPU; "
                        "fp16 scales its losses")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=ImageConfig.channels_last,
                   help="ours only (default: ImageConfig's default)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    losses = ["gan", "wgan-gp"] if args.loss == "all" else [args.loss]
    rows = [bench(loss, args) for loss in losses]
    name = device_name(args.device)
    print(f"device: {name}; {args.size}x{args.size}, batch {args.batch}, features {args.features}, "
          f"{args.rounds} rounds x {args.steps} steps (median); amp {args.amp}, channels_last {args.channels_last}")
    print(f"{'loss':<9}{'n_critic':>9}{'reference img/s':>18}{'ours img/s':>14}{'ratio':>8}")
    for r in rows:
        print(f"{r['loss']:<9}{r['n_critic']:>9}{r['reference_images_per_s']:>18.1f}"
              f"{r['ours_images_per_s']:>14.1f}{r['ratio']:>7.2f}x")
    if args.json:
        print(json.dumps({"device": name, "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
