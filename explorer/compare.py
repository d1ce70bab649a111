"""Runs side by side: 2-4 toy GANs in lock-step, Figure 1's critic-only setup, snapshot strips.

(Grids of up to 16 runs live in explorer/grid.py.)

"Identical" here means: every run is built from the same ToyConfig (dataset, architecture, batch,
seed) with only the compared fields changed, so all runs start from the same weights and each run
draws from its own torch.Generator seeded alike. Runs with the same n_critic therefore see exactly
the same real batches, noise and interpolation points; a run with more critic steps reads further
along the same stream each generator step.

    >>> runs = make_runs(preset_config("WGAN-GP vs weight clipping", ToyConfig(width=16, depth=1)))
    >>> runs.step(3); [t.step_count for t in runs.trainers]
    [3, 3]
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable

import numpy as np
import torch

from explorer.checkpoints import load_checkpoint
from explorer.choices import TOY_DATASET_NAMES
from explorer.critic_field import critic_field, critic_push
from explorer.lipschitz import lipschitz_stats
from explorer.losses import clip_weights, critic_terms, input_grad_norms, interpolates, make_optimizer
from explorer.metrics import w1_exact
from explorer.models import MLPCritic, init_linear
from explorer.toy_data import make_source
from explorer.toy_training import NUMBERS_EVERY_S, ToyConfig, ToySnapshot, make_toy_trainer, toy_snapshot
from explorer.training import Diverged, check_hot, resolve_device

VARIED = ("loss", "lam", "clip", "n_critic", "lr_g", "lr_c", "optimizer")   # what a run may change
SHARED = ("width", "depth", "batch_size", "seed", "device", "noise_dim")    # what every run takes from the base
PRESETS: dict[str, list[tuple[str, dict]]] = {
    # The papers' settings for both: lambda 10, c 0.01, 5 critic steps (with 2, lambda 10 falls behind).
    "WGAN-GP vs weight clipping": [("WGAN-GP (λ = 10)", {"loss": "wgan-gp", "lam": 10.0, "n_critic": 5}),
                                   ("weight clipping (c = 0.01)", {"loss": "wgan", "clip": 0.01, "n_critic": 5})],
    "lambda 0.1 vs 1 vs 10": [(f"λ = {v:g}", {"loss": "wgan-gp", "lam": v}) for v in (0.1, 1.0, 10.0)],
    "clip 0.1 vs 0.01 vs 0.001": [(f"c = {v:g}", {"loss": "wgan", "clip": v}) for v in (0.1, 0.01, 0.001)],
    "1 vs 5 critic iterations": [(f"{v} critic step{'s' * (v > 1)}", {"loss": "wgan-gp", "n_critic": v})
                                 for v in (1, 5)],
    "GAN vs WGAN-GP": [("GAN (BCE, non-saturating)", {"loss": "gan", "n_critic": 1}),
                       ("WGAN-GP (λ = {lam:g})", {"loss": "wgan-gp"})],   # the dataset's recommended lambda
}

# What a preset shows after a minute of lock-step training, as measured (bench/toy_quality.py
# --presets, one core of a 2-core CPU, seeds 0-4; the README has the table): the page says this
# instead of promising more.
PRESET_NOTES = {
    "WGAN-GP vs weight clipping": "What a minute shows, measured on one CPU core (seeds 0-4): on 8 Gaussians "
        "WGAN-GP pulls ahead on every seed (W1 1.3-1.6x its noise floor and 91-92% good samples on three seeds, "
        "3.7-4.7x and 12-20% on the other two, where it is still finding its modes, against clipping's 5.6-6.2x "
        "and 8-12%). On 25 Gaussians and the swiss roll the paper's λ = 10 is slow: after a minute the penalty "
        "is usually ahead on W1 but not yet on modes, and both runs are still far from the data; the λ preset "
        "shows λ = 0.1 learning them.",
    "GAN vs WGAN-GP": "What a minute shows, measured on one CPU core (seeds 0-4): with the same generator "
        "averaging WGAN-GP finds every mode of 8 and 25 Gaussians and gets close to the data (W1 1.3-1.6x the "
        "noise floor on 8 Gaussians, 0.8-1.1x on 25), while the GAN's samples sit on the modes but pile onto "
        "a few of them (W1 6.9-10.6x on 8 Gaussians, where a mode it counts may hold a handful of samples, "
        "2.3-2.5x on 25). How many modes the GAN keeps is luck here; on the swiss roll the two are nearly level.",
}


@dataclass
class CompareConfig:
    base: ToyConfig = field(default_factory=ToyConfig)  # shared by every run: data, networks, seed, batch
    runs: list = field(default_factory=lambda: [dict(o) for _, o in PRESETS["WGAN-GP vs weight clipping"]])
    labels: list = field(default_factory=list)   # one caption per run (default: its overrides)
    strip_every: int = 500       # snapshot-strip frame every this many generator steps (0: no strip)
    strip_max: int = 8           # at most this many strip frames per run (the interval doubles beyond)
    n: int = 256                 # samples per snapshot (exact W1, modes)
    grid: int = 96               # critic-field lattice per side
    live_grid: int | None = None  # the lattice of the frames drawn while training (None: grid)
    # True: each run starts from ToyConfig.recommended for the base's dataset and the run's own loss
    # (its network, batch, seed and data from the base), then its overrides; False: from the base itself.
    recommended: bool = False

    def run_configs(self) -> list[ToyConfig]:
        """The config of every run, in order."""
        if not self.recommended:
            return [replace(self.base, **over) for over in self.runs]
        shared = {k: getattr(self.base, k) for k in SHARED}
        return [replace(ToyConfig.recommended(self.base.dataset, over.get("loss", self.base.loss), self.base.spread,
                                              **shared), **over) for over in self.runs]

    def validate(self) -> None:
        if not 2 <= len(self.runs) <= 4:
            raise ValueError(f"Compare two to four runs; got {len(self.runs)}.")
        for over in self.runs:
            bad = sorted(set(over) - set(VARIED))
            if bad:
                raise ValueError(f"A run may change only {', '.join(VARIED)}; not {', '.join(bad)}.")
        for run in self.run_configs():
            run.validate()
        if self.labels and len(self.labels) != len(self.runs):
            raise ValueError(f"Give one label per run ({len(self.runs)}), or none.")
        if not (isinstance(self.strip_every, int) and 0 <= self.strip_every <= 1_000_000):
            raise ValueError(f"strip_every must be a whole number >= 0; got {self.strip_every!r}.")
        if not (isinstance(self.strip_max, int) and 2 <= self.strip_max <= 64):
            raise ValueError(f"strip_max must be a whole number from 2 to 64; got {self.strip_max!r}.")
        if not (16 <= self.n <= 4096 and 8 <= self.grid <= 512):
            raise ValueError(f"n must lie in 16..4096 and grid in 8..512; got {self.n}, {self.grid}.")
        if self.live_grid is not None and not (isinstance(self.live_grid, int) and 8 <= self.live_grid <= 512):
            raise ValueError(f"live_grid must be a whole number from 8 to 512, or None; got {self.live_grid!r}.")


def preset_config(name: str, base: ToyConfig | None = None, **kw) -> CompareConfig:
    """The named preset on top of `base` (default ToyConfig())."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    labels, runs = zip(*PRESETS[name])
    return CompareConfig(base=base or ToyConfig(), runs=[dict(r) for r in runs], labels=list(labels), **kw)


@dataclass
class CompareSnapshot:
    """One frame of every run at one common step (what the page draws; plain arrays and floats)."""
    step: int                   # the common step count
    labels: list                # one caption per panel
    panels: list                # one ToySnapshot per run
    diverged: list              # per run: None, or why it stopped (it stays frozen at its last good state)
    metrics: dict               # per-run lists: w1_exact, w1_floor (for the session's log and chart)
    measured_at: int | None = None  # the step at which the panels' numbers were measured (None: `step`)

    def as_frame(self) -> "CompareSnapshot":
        """This snapshot without the panels' loss histories: a kept frame (the strip, a timeline, a replay)."""
        return replace(self, panels=[p.as_frame() for p in self.panels])


class Lockstep:
    """Several trainers advanced together: step(n) steps each by n, so every frame shares one step.

    Has what a Session drives (.step, .update, .step_count, .cfg); keeps the snapshot strip.
    """

    def __init__(self, trainers: list, labels: list[str], snapshot_fn: Callable[..., ToySnapshot],
                 strip_every: int = 0, strip_max: int = 8, numbers_every_s: float = 0.0,
                 live_grid: int | None = None):
        self.trainers, self.labels, self.snapshot_fn = trainers, list(labels), snapshot_fn
        # The lattice of live frames (snapshot_fn's `grid`; None: snapshot_fn's own): a 48 x 48 lattice
        # costs the worker ~0.55 of a 64 x 64 one, each frame, and the live picture shows no difference.
        self.live_grid = live_grid
        # 0: every snapshot measures its numbers; otherwise snapshot_fn takes toy_snapshot's `measure`,
        # and every panel is measured in the same snapshot, at most this often (see snapshot()).
        # When the numbers were last measured: in a dict, so that a snapshot_view's snapshot (a shallow
        # copy, drawn in another thread) sets the clock of the runs it views.
        self.numbers_every_s, self._measured = float(numbers_every_s), {"t": -float("inf")}
        self.cfg = trainers[0].cfg
        self.step_count = 0
        self.diverged: list[str | None] = [None] * len(trainers)
        self.strip_every, self.strip_max = strip_every, strip_max
        self.strip: list[CompareSnapshot] = [self._strip_frame()] if strip_every else []

    def step(self, n: int = 1) -> None:
        """n steps for every run still healthy; strip frames at exact multiples of strip_every."""
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"step(n) needs a whole number n >= 1; got {n!r}.")
        left = n
        while left:
            k = left
            if self.strip_every:
                k = min(k, self.strip_every - self.step_count % self.strip_every)
            for i, t in enumerate(self.trainers):
                if self.diverged[i] is None:
                    try:
                        t.step(k)
                    except Diverged as err:
                        self.diverged[i] = str(err)
            self.step_count += k
            left -= k
            if all(d is not None for d in self.diverged):
                raise Diverged("Every run diverged: " + " | ".join(self.diverged))
            if self.strip_every and self.step_count % self.strip_every == 0:
                self._add_strip_frame()

    def _strip_frame(self) -> CompareSnapshot:
        """A snapshot without the panels' loss histories: the strip draws fields only."""
        return self.snapshot(measure=False).as_frame()

    def _add_strip_frame(self) -> None:
        self.strip.append(self._strip_frame())
        if len(self.strip) > self.strip_max:   # keep every other frame: still evenly spaced
            self.strip = self.strip[::2]
            self.strip_every *= 2

    def snapshot_view(self) -> "Lockstep | None":
        """The runs as they stand now, for a snapshot drawn in another thread while they train on
        (Trainer.snapshot_view for each; None if a run's trainer has none: draw in this thread)."""
        if not all(hasattr(t, "snapshot_view") for t in self.trainers):
            return None
        view = copy.copy(self)
        view.trainers, view.diverged = [t.snapshot_view() for t in self.trainers], list(self.diverged)
        return view

    def update(self, **hot) -> None:
        """Hot change for every run (lam, clip, n_critic, lr_g, lr_c)."""
        for t in self.trainers:
            t.update(**hot)

    def state_dict(self) -> dict:
        """Every run's Trainer.state_dict (weights, optimizers, history, random state), the common step
        and which runs diverged: what checkpoints.checkpoint_bytes saves of the runs."""
        return {"runs": [t.state_dict() for t in self.trainers], "step": self.step_count,
                "diverged": list(self.diverged), "strip_every": self.strip_every}

    def load_state_dict(self, d: dict) -> None:
        """Restore a state_dict() of the same comparison; ValueError if it holds other runs. The strip
        starts again at the restored step."""
        runs, diverged = d.get("runs"), d.get("diverged")
        n = len(self.trainers)
        if not (isinstance(runs, list) and isinstance(diverged, list) and len(runs) == len(diverged) == n):
            raise ValueError(f"The checkpoint does not hold the {n} runs of this comparison.")
        for trainer, state in zip(self.trainers, runs):
            trainer.load_state_dict(state)
        self.step_count, self.diverged = int(d["step"]), [None if why is None else str(why) for why in diverged]
        self.strip_every = int(d.get("strip_every", self.strip_every))
        self.strip = [self._strip_frame()] if self.strip_every else []

    def snapshot(self, measure: bool | None = None, live: bool = False) -> CompareSnapshot:
        """Every panel's snapshot. With numbers_every_s, measure=None measures the numbers when that
        long has passed (True: now; False: only where a panel has none yet), for all panels at once,
        so that their numbers always come from one step. live: a frame drawn while training (on the
        live_grid lattice, if one was given)."""
        fn = self.snapshot_fn
        if live and self.live_grid is not None:
            fn = partial(fn, grid=self.live_grid)
        if not self.numbers_every_s:
            panels = [fn(t) for t in self.trainers]
        else:
            now = time.monotonic()
            if measure is None:
                measure = now - self._measured["t"] >= self.numbers_every_s
            if measure:
                self._measured["t"] = now
            panels = [fn(t, measure=measure) for t in self.trainers]
        metrics = {k: [p.metrics.get(k) for p in panels] for k in ("w1_exact", "w1_floor", "w_est")}
        measured = min(p.step if p.measured_at is None else p.measured_at for p in panels)
        return CompareSnapshot(self.step_count, list(self.labels), panels, list(self.diverged), metrics,
                               measured_at=measured)


def take_snapshot(runs: Lockstep) -> CompareSnapshot:
    """runs.snapshot(live=True), as a function that pickles (the Compare page's live snapshot function)."""
    return runs.snapshot(live=True)


def take_still_snapshot(runs: Lockstep) -> CompareSnapshot:
    """A snapshot with every number measured now (the run stands still: a step, a pause, the end)."""
    return runs.snapshot(measure=True)


def strip_frames(runs: Lockstep) -> list[CompareSnapshot]:
    """The snapshot strip kept so far (what the page fetches from the worker for a download)."""
    return list(runs.strip)


def strip_steps(runs: Lockstep) -> list[int]:
    """The steps of the strip's frames: what the page says of the strip on every run, without the
    frames themselves (a lattice per panel per frame, sent from the worker only for a download)."""
    return [frame.step for frame in runs.strip]


def run_labels(cfg: CompareConfig) -> list[str]:
    """The panels' captions: the labels given, with {field} filled from each run's config, or the overrides."""
    if not cfg.labels:
        return [", ".join(f"{k}={v}" for k, v in over.items()) or "base" for over in cfg.runs]
    out = []
    for label, run in zip(cfg.labels, cfg.run_configs()):
        try:
            out.append(label.format_map(vars(run)))
        except (KeyError, ValueError, IndexError, AttributeError):   # a label of the visitor's own with braces
            out.append(label)
    return out


def make_runs(cfg: CompareConfig, points: np.ndarray | None = None) -> Lockstep:
    """One make_toy_trainer per run (same base config, the run's overrides), in lock-step."""
    cfg.validate()
    trainers = [make_toy_trainer(run, points) for run in cfg.run_configs()]
    snap = partial(toy_snapshot, n=cfg.n, grid=cfg.grid)
    return Lockstep(trainers, run_labels(cfg), snap, cfg.strip_every, cfg.strip_max, numbers_every_s=NUMBERS_EVERY_S,
                    live_grid=cfg.live_grid)


def runs_from_bytes(cfg: CompareConfig, data: bytes) -> Lockstep:
    """make_runs(cfg) restored to a checkpoint of its runs (checkpoint_bytes of a Lockstep: a replay's),
    as a factory a worker can run; it trains on exactly as the runs that were saved."""
    runs = make_runs(cfg)
    runs.load_state_dict(load_checkpoint(data))
    return runs


# ---------------------------------------------------------------------- critic only (WGAN-GP Figure 1)
@dataclass
class CriticOnlyConfig:
    datasets: tuple = ("8gaussians", "25gaussians", "swissroll")  # one column per dataset
    methods: tuple = ("clip", "gp")   # one row per method: weight clipping, gradient penalty
    lam: float = 10.0                 # gradient-penalty weight (gp)
    clip: float = 0.01                # weight-clipping bound c (clip)
    noise_std: float = 1.0            # the fixed "generator": real data + noise_std * N(0, I)
    lr: float = 1e-3                  # critic learning rate (Adam, betas 0.5, 0.9)
    width: int = 128                  # hidden units per layer
    depth: int = 3                    # hidden ReLU layers
    batch_size: int = 256             # real and "fake" samples per critic step
    seed: int = 0                     # same critic weights and data for every panel of a column
    device: str = "auto"
    n: int = 256                      # samples per snapshot
    grid: int = 96                    # critic-field lattice per side

    def validate(self) -> None:
        if not self.datasets or not set(self.datasets) <= {"8gaussians", "25gaussians", "swissroll", "ring"}:
            raise ValueError(f"Pick datasets among 8gaussians, 25gaussians, swissroll, ring; got {self.datasets}.")
        if not self.methods or not set(self.methods) <= {"clip", "gp"}:
            raise ValueError(f"Methods are 'clip' and/or 'gp'; got {self.methods}.")
        check_hot("lam", self.lam), check_hot("clip", self.clip), check_hot("lr_c", self.lr)
        if not (math.isfinite(self.noise_std) and 0 < self.noise_std <= 10):
            raise ValueError(f"noise_std must lie in (0, 10]; got {self.noise_std}.")
        ToyConfig(width=self.width, depth=self.depth, batch_size=self.batch_size, device=self.device).validate()


class CriticOnlyTrainer:
    """A critic trained toward optimality against a fixed "generator": real data + N(0, noise_std^2 I).

    Each step: real ~ data, fake = data' + noise_std * N(0, I) (independent draws), one critic update
    on E f(fake) - E f(real) (+ lam * GP, or then clip to [-c, c]). step_count counts critic steps.
    """

    def __init__(self, cfg: CriticOnlyConfig, dataset: str, method: str):
        self.cfg, self.method = cfg, method
        self.device = resolve_device(cfg.device)
        self.source = make_source(dataset, seed=cfg.seed)
        self.critic = init_linear(MLPCritic(2, cfg.width, cfg.depth), torch.Generator().manual_seed(cfg.seed))
        self.critic.to(self.device)
        self.rng = torch.Generator(self.device).manual_seed(cfg.seed)
        self.opt = make_optimizer("adam", self.critic.parameters(), cfg.lr, (0.5, 0.9))
        self.step_count, self.history, self.extras = 0, [], {}

    def fake(self, n: int, g: torch.Generator) -> torch.Tensor:
        return self.source.sample(n, g) + self.cfg.noise_std * torch.randn(n, 2, generator=g, device=g.device)

    def step(self, n: int = 1) -> dict:
        cfg, B, kind = self.cfg, self.cfg.batch_size, "wgan-gp" if self.method == "gp" else "wgan"
        for _ in range(n):
            real, fake = self.source.sample(B, self.rng), self.fake(B, self.rng)
            terms = critic_terms(kind, self.critic, real, fake, cfg.lam, self.rng)
            self.opt.zero_grad(set_to_none=True)
            terms.loss.backward()
            self.opt.step()
            if kind == "wgan":
                clip_weights(self.critic, cfg.clip)
            self.step_count += 1
            record = {"step": self.step_count, "loss_c": float(terms.loss.detach()), "w_est": float(terms.w_est),
                      "gp": float(terms.gp)}
            if not math.isfinite(record["loss_c"]):
                raise Diverged(f"The {self.method} critic on {self.source.name} diverged at step {self.step_count}.")
            if self.step_count % max(1, self.step_count // 2000 + 1) == 0:
                self.history.append(record)
        return record

    def update(self, **hot) -> None:
        for name, value in hot.items():
            if name not in ("lam", "clip"):
                raise ValueError(f"Only lam and clip change while a critic trains; not {name!r}.")
            check_hot(name, value)
            setattr(self.cfg, name, float(value))


def critic_only_snapshot(t: CriticOnlyTrainer, n: int = 256, grid: int = 96) -> ToySnapshot:
    """The critic's value surface with fixed real / noisy samples; metrics: w_est vs exact W1, grad norms."""
    if "fixed" not in t.extras:
        g = torch.Generator().manual_seed(t.cfg.seed + 7919)
        t.extras["fixed"] = (t.source.sample(n, g), t.fake(n, g), g.get_state())
    real, fake, eps_state = t.extras["fixed"]
    x_hat = interpolates(real, fake, torch.Generator().set_state(eps_state)).to(t.device)
    norms = input_grad_norms(t.critic, x_hat).detach().cpu()
    with torch.no_grad():
        w_est = float(t.critic(real.to(t.device)).mean() - t.critic(fake.to(t.device)).mean())
    values, grad_norm = critic_field(t.critic, t.source.lim, grid)
    metrics = {"w_est": w_est, "w1_exact": w1_exact(fake, real), "w1_floor": None, "modes": None,
               "n_modes": None, "hq": None, "gp_grad_norm_mean": float(norms.mean()),
               "gp_grad_norm_std": float(norms.std())}
    kind = "wgan-gp" if t.method == "gp" else "wgan"
    health = lipschitz_stats(t.critic, real.to(t.device), fake.to(t.device), norms.numpy(), kind, t.cfg.lam, t.cfg.clip)
    return ToySnapshot(t.step_count, real.numpy(), fake.numpy(), values, grad_norm,
                       critic_push(t.critic, fake), t.source.lim, list(t.history), metrics, lipschitz=health)


def make_critic_only(cfg: CriticOnlyConfig) -> Lockstep:
    """Panels row-major: method outer (clip, gp), dataset inner, as in the paper's Figure 1."""
    cfg.validate()
    names = {"clip": f"weight clipping (c = {cfg.clip:g})", "gp": f"gradient penalty (λ = {cfg.lam:g})"}
    pairs = [(m, d) for m in cfg.methods for d in cfg.datasets]
    trainers = [CriticOnlyTrainer(replace(cfg), d, m) for m, d in pairs]
    return Lockstep(trainers, [f"{TOY_DATASET_NAMES[d]} · {names[m]}" for m, d in pairs],
                    lambda t: critic_only_snapshot(t, cfg.n, cfg.grid))
