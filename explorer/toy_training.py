"""The 2-D run: its config, its trainer, its snapshot (what the pages draw) and its headless run.

    >>> t = make_toy_trainer(ToyConfig(seed=1, width=16, depth=1, batch_size=32))
    >>> t.step(10)["step"]
    10
"""
from __future__ import annotations

import csv
import json
import textwrap
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from explorer.checkpoints import load_checkpoint, save_checkpoint
from explorer.choices import TOY_DATASETS, TOY_OFFER
from explorer.critic_field import lattice, lattice_field, values_and_grads
from explorer.headless import run_headless
from explorer.lipschitz import lipschitz_stats
from explorer.losses import interpolates
from explorer.metrics import mode_stats, w1_exact, w1_floor
from explorer.models import MLPCritic, MLPGenerator, init_linear
from explorer.toy_data import make_source, parse_points_csv
from explorer.training import TrainConfig, Trainer, gaussian_noise, resolve_device
from explorer.upload_checks import check_contents, largest_checkpoint_bytes, meta_networks, upload_config, upload_limits

FINAL_SAMPLES = 1024   # samples for a headless run's final W1 / modes / high-quality numbers
# A live snapshot (measure=None) re-measures its numbers at most this often: on the 2-D page's
# defaults (64 x 64 lattice, 256 points, one CPU thread) a frame costs ~12 ms, its numbers ~16 ms more.
NUMBERS_EVERY_S = 1.0
# Published mode-collapse results on the same data (dataset, spread): what the page and
# bench/toy_quality.py print beside a run's own modes and high-quality share.
PUBLISHED_QUALITY = {
    ("25gaussians", 0.05): "PacGAN (Lin et al. 2018), Table 1, this grid: GAN 17.3 of 25 modes, 94.8% high quality; "
                           "PacGAN4 24.8 / 93.6%. VEEGAN (Srivastava et al. 2017), Table 1: 24.6 / 40%.",
    ("8gaussians", 0.02): "PacGAN, Table 1, the ring of 8 (std 1% of the radius): GAN 6.3 of 8 modes, 98.2% high "
                          "quality; PacGAN2 7.9 / 95.6%.",
}
# What ToyConfig.recommended proposes: for every run, then by loss, then by dataset (later wins).
# Measured with bench/toy_quality.py on one core of the project's 2-core CPU; the README has the table.
# Measured this session, seed 0 unless said (bench/toy_quality.py, one core, training time):
# - EMA 0.999 of the generator (Yazici et al. 2019) for every loss: on 25 Gaussians it took WGAN-GP from
#   11 to 14 modes at 60 s (lambda 1), and it helps every loss alike, so comparisons stay about the loss.
# - WGAN-GP lambda 1 with 2 critic steps at lr 1e-3: 8 Gaussians 8/8 modes, 83-89% high quality after 5 s
#   (seeds 0-2); lambda 10 needs more critic steps: with 5 it reached 8/8, 89% after 30 s.
# - 25 Gaussians wants the lecture notes' lambda 0.1: 25/25 modes, 94% high quality, W1 1.07x its floor
#   after 60 s (lambda 1: 14/25 and 1%; lambda 10 with 5 critic steps: 16/25 and 1%); swiss roll and
#   ring reach W1 <= 1.05x floor within 10 s at lambda 0.1.
# - Weight clipping gets the WGAN paper's 5 critic steps (c 0.01: 6/8 modes, 2% high quality after 30 s).
# - 8 Gaussians at the page's spread learns fastest on a smaller, quicker network: width 64, batch 128,
#   lr 2e-3 make 1,200-2,100 steps in 5 s instead of 500-550 and reach 90-95% high quality there (seeds
#   0-4; width 128 / batch 256 / lr 1e-3: 80-85%), 95-97% with W1 1.2-1.4x its floor after 30 s. lr 3e-3
#   gains a point of high quality at 5 s and loses W1 (1.35-1.6x), and on the tight ring (spread 0.02)
#   it fell back to 50-90% high quality after 25 s, so the tight ring keeps the larger, slower network.
RECOMMENDED: dict[str, dict] = {
    "all": {"ema": 0.999},
    "wgan-gp": {"lam": 1.0},
    "wgan": {"n_critic": 5},
    "8gaussians": {"width": 64, "batch_size": 128, "lr_g": 2e-3, "lr_c": 2e-3},
    "8gaussians, tight": {"width": 128, "batch_size": 256, "lr_g": 1e-3, "lr_c": 1e-3},
    "25gaussians": {"lam": 0.1},
    "swissroll": {"lam": 0.1},
    "ring": {"lam": 0.1},
}
TIGHT_SPREAD = 0.05   # a spread at most this takes the dataset's "<name>, tight" entry too


@dataclass
class ToyConfig(TrainConfig):
    # Toy defaults reach 8/8 modes, >= 90% high-quality samples and W1 <= 1.5 x the noise floor on
    # 8 Gaussians in about 800-1100 generator steps (bench/toy_convergence.py). lam = 10 (the paper)
    # had not reached 90% high quality after 2000 steps; the notes' lam 0.1 / lr 1e-4 / 512 units is far slower.
    lam: float = 1.0             # gradient-penalty weight lambda
    n_critic: int = 2            # critic steps per generator step
    lr_g: float = 1e-3           # generator learning rate
    lr_c: float = 1e-3           # critic learning rate
    dataset: str = "8gaussians"  # one of choices.TOY_DATASETS
    spread: float | None = None  # noise scale of the source; None = the source's default (8 Gaussians: 0.1)
    width: int = 128             # hidden units per layer (lecture notes: 512)
    depth: int = 3               # hidden ReLU layers (lecture notes: 3)
    noise_dim: int = 2           # dimension of the generator's Gaussian noise z

    @classmethod
    def recommended(cls, dataset: str = "8gaussians", loss: str = "wgan-gp", spread: float | None = None,
                    **settings) -> "ToyConfig":
        """The settings the app proposes for a dataset and loss (the pages, Compare's presets and the
        command line start from them); `settings` on top. See RECOMMENDED for what they are and why."""
        tight = RECOMMENDED.get(f"{dataset}, tight", {}) if spread is not None and spread <= TIGHT_SPREAD else {}
        base = {**RECOMMENDED["all"], **RECOMMENDED.get(loss, {}), **RECOMMENDED.get(dataset, {}), **tight}
        return cls(**{**base, "dataset": dataset, "loss": loss, "spread": spread, **settings})

    def validate(self) -> None:
        super().validate()
        if self.dataset not in TOY_DATASETS:
            raise ValueError(f"Unknown dataset {self.dataset!r}; choose one of {', '.join(TOY_DATASETS)}.")
        for name, top in (("width", 4096), ("depth", 16), ("noise_dim", 256)):
            value = getattr(self, name)
            if not (isinstance(value, int) and 1 <= value <= top):
                raise ValueError(f"{name} must be a whole number from 1 to {top}; got {value!r}.")


# ----------------------------------------------------------------------------- the trainer
def make_toy_trainer(cfg: ToyConfig, points: np.ndarray | None = None) -> Trainer:
    """An MLP generator/critic Trainer on a 2-D source; `points` are the user's (n, 2) data.

    Weights, data and noise all come from generators seeded with cfg.seed (never the global RNG).
    The networks are built on the CPU (one seed, the same weights on any device), then moved.
    The source is kept as `trainer.source`.
    """
    cfg.validate()
    source = make_source(cfg.dataset, cfg.spread, points, seed=cfg.seed)
    init_rng = torch.Generator("cpu").manual_seed(cfg.seed)
    with torch.device("cpu"):
        G, C = (init_linear(net, init_rng) for net in _networks(cfg))
    device = resolve_device(cfg.device)
    rng = torch.Generator(device).manual_seed(cfg.seed)
    # Partials of methods and functions, not closures: a copy of the trainer (explorer/fork.py) then
    # copies the generator they draw from.
    sample_noise = partial(gaussian_noise, dim=cfg.noise_dim, generator=rng, device=device)
    trainer = Trainer(cfg, G, C, partial(source.sample, generator=rng), sample_noise, rng=rng)
    trainer.source = source
    return trainer


def toy_trainer_from_checkpoint(d: dict, points: np.ndarray | None = None, device: str = "auto") -> Trainer:
    """Rebuild a toy Trainer from load_checkpoint()'s dict and restore its state, on `device` (the
    app's choice, never the file's).

    check_toy_checkpoint runs first, so a file declaring more than the 2-D page offers is refused
    before any network is built. Cost bound: the networks of the page's largest settings (width 512,
    depth 6: 1.3 M weights each, 32 MB with Adam's moments, 37 MB with the averaged generator, about twice that with the trainer's last good
    copy) and a history of at most 10,000 records: about 0.4 s and 110 MB (bench/upload_limits.py).
    """
    return _resume(d, points, device)[0]


def _resume(d: dict, points: np.ndarray | None, device: str) -> tuple[Trainer, str | None]:
    cfg, note = check_toy_checkpoint(d, device)
    trainer = make_toy_trainer(cfg, points)
    trainer.load_state_dict(d)
    return trainer, note


def check_toy_checkpoint(d: dict, device: str = "auto") -> tuple[ToyConfig, str | None]:
    """(the run's config, a sentence if its history was thinned) if a 2-D checkpoint dict holds
    nothing larger than the 2-D page offers, finite weights of the right shapes and progress in range;
    ValueError otherwise. Builds nothing: the shapes come from networks on the meta device."""
    saved = d.get("config") if isinstance(d, dict) else None
    if not isinstance(saved, dict) or "width" not in saved:
        raise ValueError("The checkpoint holds no 2-D GAN configuration.")
    cfg = upload_config(ToyConfig, saved, UPLOAD_LIMITS, device)
    return cfg, check_contents(d, cfg, _networks)


def _networks(cfg: ToyConfig) -> tuple[MLPGenerator, MLPCritic]:
    return MLPGenerator(cfg.noise_dim, cfg.width, cfg.depth), MLPCritic(2, cfg.width, cfg.depth)


# The largest toy run an upload may declare: the 2-D page's largest settings and the app's history
# cap; and the size of its checkpoint (37 MB), above which a file is refused before it is read.
UPLOAD_LIMITS = upload_limits(TOY_OFFER, ("width", "depth", "noise_dim", "batch_size", "n_critic"),
                              history_cap=TrainConfig.history_cap)
UPLOAD_BYTES = largest_checkpoint_bytes(*meta_networks(_networks, ToyConfig(
    width=UPLOAD_LIMITS["width"], depth=UPLOAD_LIMITS["depth"], noise_dim=UPLOAD_LIMITS["noise_dim"])))


def toy_trainer_from_bytes(data: bytes, points: np.ndarray | None = None, device: str = "auto") -> Trainer:
    """toy_trainer_from_checkpoint on a checkpoint file's bytes (a factory a worker process can run);
    a file larger than UPLOAD_BYTES is refused before it is read."""
    return toy_trainer_from_checkpoint(load_checkpoint(data, UPLOAD_BYTES), points, device)


def describe_toy_checkpoint(data: bytes, points: np.ndarray | None = None, device: str = "auto") -> dict:
    """{"config": the run's settings, "step": its step, "note": a sentence or None} if the file resumes
    a toy run; else ValueError.

    The trainer is rebuilt to check that every weight fits, then dropped: run it in a worker."""
    trainer, note = _resume(load_checkpoint(data, UPLOAD_BYTES), points, device)
    return {"config": asdict(trainer.cfg), "step": trainer.step_count, "note": note}


# ----------------------------------------------------------------------------- snapshots
@dataclass
class ToySnapshot:
    """What the 2-D page draws: plain NumPy arrays and floats (no tensors, no models)."""

    step: int
    real: np.ndarray             # (n, 2) real samples (fixed per trainer, so frames are comparable)
    fake: np.ndarray             # (n, 2) generated samples from fixed noise (points move smoothly)
    field: np.ndarray            # (grid, grid) critic values on [-lim, lim]^2, axis 0 = y
    grad_norm_field: np.ndarray  # (grid, grid) ||grad f|| on the same lattice
    push: np.ndarray             # (n, 2) grad f at the fake points
    lim: float                   # half-width of the box
    history: list                # trainer.history up to this step (a new list; records are shared)
    metrics: dict                # w1_exact, w1_floor, modes, n_modes, hq, w_est, gp_grad_norm_mean/std
    centres: np.ndarray | None = field(default=None)  # (k, 2) mode centres, if the source has them
    lipschitz: dict | None = None  # explorer/lipschitz.py's lipschitz_stats: per-layer norms, weights, diagnosis
    fake_raw: np.ndarray | None = None  # (n, 2) the trained generator's points when `fake` is the averaged one's
    measured_at: int | None = None  # the step at which `metrics` and `lipschitz` were measured (None: `step`)

    def as_frame(self) -> "ToySnapshot":
        """This snapshot without its history: what Session keeps per GIF frame (~130 KB, not MBs)."""
        return replace(self, history=[])


def toy_snapshot(trainer, source=None, n: int = 256, grid: int = 128, lipschitz: bool = True,
                 measure: bool | None = True) -> ToySnapshot:
    """Everything one frame needs: the critic's lattice in chunks, then one pass at 2n points (3n
    when the numbers are measured), and (lipschitz) the critic's Lipschitz health from one more
    pass at 2n (explorer/lipschitz.py).

    source: the run's data source (default trainer.source), so partial(toy_snapshot, grid=64) is a
    snapshot function that pickles (what a worker process needs).
    measure: True measures the numbers (W1, modes, HQ, the critic's estimate, the norms on
    interpolates, Lipschitz health) for this frame; None measures them when NUMBERS_EVERY_S have
    passed since they last were (a live view: the picture changes every frame, the numbers, about
    half of a frame's cost, once a second), otherwise the snapshot repeats the last ones and says
    at which step they were measured (`measured_at`); False never measures if there are some.

    The real points and the noise are drawn once per trainer from a private generator, so taking
    snapshots never changes the training's random stream.
    """
    # What is drawn and measured is trainer.eval_generator: the averaged generator when cfg.ema > 0.
    G, C, device = trainer.eval_generator, trainer.critic, trainer.device
    source = trainer.source if source is None else source
    key = ("toy_snapshot", n)
    if key not in trainer.extras:
        g = torch.Generator().manual_seed(trainer.cfg.seed + 7919)
        real = source.sample(n, g).to(device)
        z = torch.randn(n, getattr(trainer.cfg, "noise_dim", 2), generator=g, device="cpu").to(device)
        eps_g = torch.Generator().manual_seed(trainer.cfg.seed + 104729)
        trainer.extras[key] = (real, z, eps_g.get_state())
    real, z, eps_state = trainer.extras[key]
    last = trainer.extras.get(("toy_numbers", n, lipschitz))   # (monotonic time, step, metrics, health)
    if measure is None:
        measure = last is None or time.monotonic() - last[0] >= NUMBERS_EVERY_S
    measure = measure or last is None
    with torch.no_grad():
        fake = G(z)
        raw = trainer.generator(z).cpu().numpy() if G is not trainer.generator else None
    field_vals, grad_norms = lattice_field(C, lattice(source.lim, grid, device), grid)
    if measure:
        eps_g = torch.Generator().set_state(eps_state)
        x_hat = interpolates(real.cpu(), fake.cpu(), eps_g).to(device)
        vals, grads = values_and_grads(C, torch.cat((real, fake, x_hat)))
    else:   # the picture only needs the push at the generated points
        vals, grads = values_and_grads(C, torch.cat((real, fake)))
    real_np, fake_np = real.cpu().numpy(), fake.cpu().numpy()
    if measure:
        metrics, health = _numbers(trainer, source, real, fake, real_np, fake_np, vals, grads, n, lipschitz)
        last = (time.monotonic(), trainer.step_count, metrics, health)
        trainer.extras[("toy_numbers", n, lipschitz)] = last
    _, measured_at, metrics, health = last
    return ToySnapshot(
        step=trainer.step_count, real=real_np, fake=fake_np,
        field=field_vals, grad_norm_field=grad_norms,
        push=grads[n:2 * n].cpu().numpy(), lim=float(source.lim),
        # A shallow copy: trainers never change a record once appended, and copying 10,000 dicts
        # per snapshot cost ~10 MB of short-lived memory each time.
        history=list(trainer.history), metrics=dict(metrics),
        centres=None if source.centres is None else np.array(source.centres), lipschitz=health, fake_raw=raw,
        measured_at=measured_at,
    )


def _numbers(trainer, source, real, fake, real_np, fake_np, vals, grads, n: int,
             lipschitz: bool) -> tuple[dict, dict | None]:
    """The snapshot's numbers, from its pass at real, fake and interpolated points (3n)."""
    f_real, f_fake = vals[:n], vals[n:2 * n]
    hat_norms = grads[2 * n:].norm(dim=1)
    fake_ok = bool(np.isfinite(fake_np).all())
    metrics = {
        "w1_exact": w1_exact(fake_np, real_np) if fake_ok else float("nan"),
        "w1_floor": w1_floor(source, n),   # the distribution's, whatever the run's seed
        "modes": None, "n_modes": None, "hq": None,
        "w_est": float(f_real.mean() - f_fake.mean()),
        "gp_grad_norm_mean": float(hat_norms.mean()), "gp_grad_norm_std": float(hat_norms.std()),
    }
    if source.centres is not None and fake_ok:
        metrics["modes"], metrics["hq"] = mode_stats(fake_np, source.centres, source.std)
        metrics["n_modes"] = len(source.centres)
    cfg = trainer.cfg
    health = lipschitz_stats(trainer.critic, real, fake, hat_norms.cpu().numpy(), cfg.loss, cfg.lam,
                             cfg.clip) if lipschitz else None
    return metrics, health


# ----------------------------------------------------------------------------- tables
def metrics_table(history: list[dict], metrics_log: list[dict]) -> pd.DataFrame:
    """One row per recorded step: losses and the critic estimate, then the measured metrics (exact
    W1, floor, modes, HQ) of the latest snapshot at or before that step, and that snapshot's step
    in `measured_at` (snapshots are rarer than steps: no blank cells, and no number passed off as
    measured where it was not)."""
    left = pd.DataFrame(list(history))
    right = pd.DataFrame(list(metrics_log))
    if right.empty:
        return left
    right = right.drop(columns=[c for c in right.columns if c in left.columns and c != "step"])
    for col in ("modes", "n_modes"):      # counts: whole numbers, not 8.0
        if col in right:
            right[col] = right[col].astype("Int64")
    right = right.rename(columns={"step": "measured_at"}).sort_values("measured_at")
    if left.empty:
        return right
    table = pd.merge_asof(left.sort_values("step"), right, left_on="step", right_on="measured_at")
    table["measured_at"] = table["measured_at"].astype("Int64")
    return table


# ----------------------------------------------------------------------------- headless
def train_toy(cfg: ToyConfig, steps: int, out_dir: str | None = None, points_csv: str | None = None,
              progress: Callable[[str], None] | None = None) -> dict:
    """Train `steps` generator steps; return the final metrics, and write outputs to `out_dir`.

    out_dir receives checkpoint.pt, metrics.csv (one row per recorded step), final.png (the
    critic's landscape with real '+' and generated 'x' points), training.gif, config.json,
    layer_grad_norms.csv (the gradient of the critic's loss at each hidden layer, at every GIF frame's
    step) and lipschitz.png (the final per-layer chart beside the critic's weight histogram).
    A diverged run still writes its last good state, then raises Diverged.

    >>> result = train_toy(ToyConfig(seed=0, width=16, depth=1, batch_size=32), steps=50)
    >>> sorted(result)[:3]
    ['dataset', 'device', 'engine']
    """
    from explorer.plots import field_frame, figure_png, figure_rgb, frames_to_gif, lipschitz_figure
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be at least 1; got {steps}.")
    points = None
    if points_csv is not None:
        if cfg.dataset != "points":
            raise ValueError("--points goes with --dataset points.")
        points = parse_points_csv(Path(points_csv).read_bytes())
    elif cfg.dataset == "points":
        raise ValueError("--dataset points needs --points FILE.csv (one x,y pair a line).")
    out = Path(out_dir) if out_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)

    def say(trainer: Trainer) -> None:
        rec = trainer.history[-1] if trainer.history else {}
        progress(f"step {trainer.step_count:>6}/{steps}  critic loss {rec.get('loss_c', float('nan')):+.4f}"
                 f"  W estimate {rec.get('w_est', float('nan')):.4f}")

    layer_rows: list[list[float]] = []

    def frame(trainer: Trainer) -> np.ndarray:
        snap = toy_snapshot(trainer)
        layer_rows.append([trainer.step_count, *snap.lipschitz["layers"]])
        return figure_rgb(field_frame(snap))

    trainer = make_toy_trainer(cfg, points)
    run = run_headless(trainer, steps, frame if out else None, say if progress else None)
    final = toy_snapshot(trainer, n=FINAL_SAMPLES)
    last = trainer.history[-1] if trainer.history else {}
    result = {
        "steps": trainer.step_count, "seconds": run.seconds,
        "steps_per_s": trainer.step_count / run.seconds if run.seconds > 0 else float("nan"),
        "w1_exact": final.metrics["w1_exact"], "w1_floor": final.metrics["w1_floor"],
        "modes": final.metrics["modes"], "n_modes": final.metrics["n_modes"], "hq": final.metrics["hq"],
        "w_est": final.metrics["w_est"], "grad_norm_mean": final.metrics["gp_grad_norm_mean"],
        "loss_c": last.get("loss_c"), "loss_g": last.get("loss_g"),
        "loss": cfg.loss, "dataset": cfg.dataset, "device": str(trainer.device), "engine": trainer.engine,
    }
    if out:
        picture = field_frame(final)
        (out / "final.png").write_bytes(figure_png(picture))
        (out / "training.gif").write_bytes(frames_to_gif(run.frames + [figure_rgb(picture)], fps=8))
        save_checkpoint(trainer, out / "checkpoint.pt")
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        _write_history(trainer.history, out / "metrics.csv")
        layer_rows.append([trainer.step_count, *final.lipschitz["layers"]])
        _write_layer_norms(layer_rows, out / "layer_grad_norms.csv")
        title = textwrap.fill(f"{cfg.loss}, step {trainer.step_count}: {final.lipschitz['diagnosis']}", 100)
        (out / "lipschitz.png").write_bytes(figure_png(lipschitz_figure(final.lipschitz, title)))
        result["out"] = str(out)
    if run.failure:
        raise run.failure
    return result


def _write_layer_norms(rows: list[list[float]], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step"] + [f"layer_{i}" for i in range(1, len(rows[0]))])
        writer.writerows(rows)


def _write_history(history: list[dict], path: Path) -> None:
    columns = ["step", "loss_c", "loss_g", "w_est", "gp"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
