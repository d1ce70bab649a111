"""Run configs and the generic GAN Trainer: `trainer.step(n)` runs n generator steps.

The Trainer knows nothing about threads, pages or 2-D points: it takes a generator, a critic and
two samplers, so tests, the CLI, the page's session thread and the image GANs all drive it alike.

    >>> t = make_toy_trainer(ToyConfig(seed=1))
    >>> t.step(10)["step"]
    10
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields
from typing import Callable

import numpy as np
import torch
from torch import nn

from explorer.fast_mlp import FastStep, keep_freed_memory
from explorer.checkpoints import CHECKPOINT_FORMAT, checkpoint_bytes, load_checkpoint, save_checkpoint  # noqa: F401
from explorer.losses import KINDS, OPTIMIZERS, clip_weights, critic_terms, generator_loss, make_optimizer
from explorer.models import MLPCritic, MLPGenerator, init_linear
from explorer.toy_data import NAMES, make_source

HOT_FIELDS = ("lam", "clip", "n_critic", "lr_g", "lr_c")  # changeable while running
DEVICES = ("auto", "cpu", "cuda", "mps")
FAST_CPU = True          # use explorer/fast_mlp.py where it applies (tests and benches switch it off)
CHECK_EVERY = 25         # generator steps between finiteness checks (and last-good snapshots)


@dataclass
class TrainConfig:
    loss: str = "wgan-gp"        # "gan" (BCE), "wgan" (weight clipping) or "wgan-gp" (gradient penalty)
    lam: float = 10.0            # gradient-penalty weight lambda (wgan-gp); the WGAN-GP paper uses 10
    clip: float = 0.01           # weight-clipping bound c (wgan): every critic weight kept in [-c, c]
    n_critic: int = 5            # critic steps per generator step
    lr_g: float = 1e-4           # generator learning rate
    lr_c: float = 1e-4           # critic learning rate
    optimizer: str = "adam"      # "adam" or "rmsprop" (the WGAN paper's choice with clipping)
    beta1: float = 0.5           # Adam beta1 (WGAN-GP: 0.5)
    beta2: float = 0.9           # Adam beta2 (WGAN-GP: 0.9)
    batch_size: int = 256        # samples per batch, real and fake alike
    non_saturating: bool = True  # gan only: generator minimizes -log D(G(z)) instead of log(1 - D(G(z)))
    seed: int = 0                # seeds weights, data and noise: same seed, same run
    device: str = "auto"         # "auto" (cuda, then mps, then cpu), "cpu", "cuda" or "mps"
    history_cap: int = 10_000    # at most this many history records (older ones are thinned)
    cpu_threads: int = 0         # torch intra-op threads on CPU (process-wide!); 0 = leave torch's setting
    # False: the generator step draws fresh noise (WGAN-GP paper, Algorithm 1). True: it reuses the fakes
    # of the last critic iteration (the DCGAN formulation of pytorch/examples and the lecture notes),
    # which saves one generator forward per step; same maths, other noise draws.
    reuse_fakes: bool = False

    def validate(self) -> None:
        """Raise ValueError with a readable sentence for any out-of-range field."""
        if self.loss not in KINDS:
            raise ValueError(f"Unknown loss {self.loss!r}; choose one of {', '.join(KINDS)}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")
        if self.device not in DEVICES:
            raise ValueError(f"Unknown device {self.device!r}; choose one of {', '.join(DEVICES)}.")
        for name in HOT_FIELDS:
            check_hot(name, getattr(self, name))
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam betas must lie in [0, 1); got {self.beta1}, {self.beta2}.")
        if not (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536):
            raise ValueError(f"batch_size must be a whole number from 1 to 65536; got {self.batch_size}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a whole number >= 0; got {self.seed!r}.")
        if not (isinstance(self.cpu_threads, int) and 0 <= self.cpu_threads <= 256):
            raise ValueError(f"cpu_threads must be a whole number from 0 to 256; got {self.cpu_threads!r}.")
        if not isinstance(self.reuse_fakes, bool):
            raise ValueError(f"reuse_fakes must be True or False; got {self.reuse_fakes!r}.")
        if not (isinstance(self.history_cap, int) and self.history_cap >= 2):
            raise ValueError(f"history_cap must be a whole number >= 2; got {self.history_cap}.")


@dataclass
class ToyConfig(TrainConfig):
    # Toy defaults reach 8/8 modes, >= 90% high-quality samples and W1 <= 1.5 x the noise floor on
    # 8 Gaussians in about 800-1100 generator steps (bench/toy_convergence.py). lam = 10 (the paper)
    # had not reached 90% high quality after 2000 steps; the notes' lam 0.1 / lr 1e-4 / 512 units is far slower.
    lam: float = 1.0             # gradient-penalty weight lambda
    n_critic: int = 2            # critic steps per generator step
    lr_g: float = 1e-3           # generator learning rate
    lr_c: float = 1e-3           # critic learning rate
    dataset: str = "8gaussians"  # one of toy_data.NAMES
    spread: float | None = None  # noise scale of the source; None = the source's default (8 Gaussians: 0.1)
    width: int = 128             # hidden units per layer (lecture notes: 512)
    depth: int = 3               # hidden ReLU layers (lecture notes: 3)
    noise_dim: int = 2           # dimension of the generator's Gaussian noise z
    cpu_threads: int = 1         # small MLPs gain little from more threads, and runs sharing cores lose a lot

    def validate(self) -> None:
        super().validate()
        if self.dataset not in NAMES:
            raise ValueError(f"Unknown dataset {self.dataset!r}; choose one of {', '.join(NAMES)}.")
        for name, top in (("width", 4096), ("depth", 16), ("noise_dim", 256)):
            value = getattr(self, name)
            if not (isinstance(value, int) and 1 <= value <= top):
                raise ValueError(f"{name} must be a whole number from 1 to {top}; got {value!r}.")


def check_hot(name: str, value) -> None:
    """Validate one hot field: lam >= 0, clip > 0, n_critic a whole number >= 1, learning rates > 0."""
    if name == "n_critic":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 100:
            raise ValueError(f"n_critic must be a whole number from 1 to 100; got {value!r}.")
        return
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}.") from None
    ok = math.isfinite(v) and (v >= 0 if name == "lam" else v > 0)
    if not ok or (name.startswith("lr") and v > 1.0):
        rule = "a finite number >= 0" if name == "lam" else ("in (0, 1]" if name.startswith("lr") else "> 0")
        raise ValueError(f"{name} must be {rule}; got {value!r}.")


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda if present, else mps, else cpu; an explicit device must exist."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ValueError(f"Device {name!r} is not available on this machine; use 'auto' or 'cpu'.")
    return torch.device(name)


class Diverged(RuntimeError):
    """A loss or weight became NaN/inf; the trainer has rolled back to its last good state."""


class Trainer:
    """Alternating critic/generator updates for gan, wgan and wgan-gp on any data shape.

    sample_real(n) and sample_noise(n) return (n, ...) tensors on the trainer's device; for
    reproducibility they should draw from `rng` (pass the same torch.Generator here).
    """

    def __init__(self, cfg: TrainConfig, generator: nn.Module, critic: nn.Module,
                 sample_real: Callable[[int], torch.Tensor], sample_noise: Callable[[int], torch.Tensor],
                 rng: torch.Generator | None = None):
        cfg.validate()
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if self.device.type == "cpu":
            keep_freed_memory()
            if cfg.cpu_threads and torch.get_num_threads() != cfg.cpu_threads:
                torch.set_num_threads(cfg.cpu_threads)
        self.generator, self.critic = generator.to(self.device), critic.to(self.device)
        self.sample_real, self.sample_noise = sample_real, sample_noise
        self.rng = rng if rng is not None else torch.Generator(self.device).manual_seed(cfg.seed)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = make_optimizer(cfg.optimizer, self.generator.parameters(), cfg.lr_g, betas)
        self.opt_c = make_optimizer(cfg.optimizer, self.critic.parameters(), cfg.lr_c, betas)
        self.step_count = 0
        self.history: list[dict] = []
        self._stride = 1          # record every _stride-th step (doubles when history is thinned)
        self.extras: dict = {}    # room for callers' per-trainer caches (e.g. snapshot noise)
        # MLPs on CPU: hand-derived gradients (explorer/fast_mlp.py), same maths, same random draws.
        self.fast = FastStep(self.generator, self.critic) if FAST_CPU and FastStep.supports(
            self.generator, self.critic, self.device) else None
        self._good = self._capture()

    # ------------------------------------------------------------------ one generator step
    def _one_step(self) -> torch.Tensor:
        cfg, G, C = self.cfg, self.generator, self.critic
        kind, B = cfg.loss, cfg.batch_size
        # (1) Update the critic n_critic times (fakes are detached: G is fixed here):
        #     wgan-gp: maximize E f(x) - E f(G(z)) - lam * E (||grad f(x_hat)||_2 - 1)^2
        #     wgan:    maximize E f(x) - E f(G(z)), then clip every weight to [-c, c]
        #     gan:     maximize E log D(x) + E log(1 - D(G(z)))
        # With reuse_fakes the last iteration's fakes keep their graph for step (2) (DCGAN: fake = G(z)
        # once, the critic learns on fake.detach(), the generator on fake).
        for i in range(cfg.n_critic):
            real = self.sample_real(B)
            with torch.set_grad_enabled(cfg.reuse_fakes and i == cfg.n_critic - 1):
                fake = G(self.sample_noise(B))
            terms = critic_terms(kind, C, real, fake.detach(), cfg.lam, self.rng)
            self.opt_c.zero_grad(set_to_none=True)
            terms.loss.backward()
            self.opt_c.step()
            if kind == "wgan":
                clip_weights(C, cfg.clip)
        # (2) Update the generator: minimize -E f(G(z))   (gan: -E log D(G(z)), or E log(1 - D(G(z))))
        judged = [p for p in C.parameters() if p.requires_grad]
        for p in judged:  # the critic only judges here: skip gradients for its weights
            p.requires_grad_(False)
        try:
            fake = fake if cfg.reuse_fakes else G(self.sample_noise(B))
            loss_g = generator_loss(kind, C, fake, cfg.non_saturating)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        finally:
            for p in judged:
                p.requires_grad_(True)
        return torch.stack((terms.loss.detach(), loss_g.detach(), terms.w_est, terms.gp))

    def step(self, n: int = 1) -> dict:
        """Run n generator steps (each after cfg.n_critic critic steps); return the last record.

        Losses stay on the device and are checked every CHECK_EVERY steps (no sync per step); on
        NaN/inf the weights and optimizers roll back to the last checked state and Diverged is raised.
        """
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"step(n) needs a whole number n >= 1; got {n!r}.")
        record: dict = {}
        done = 0
        one_step = self._one_step if self.fast is None else lambda: self.fast(self)
        while done < n:
            k = min(CHECK_EVERY, n - done)
            stats = torch.stack([one_step() for _ in range(k)]).cpu()
            self._check(stats)
            for i, (loss_c, loss_g, w_est, gp) in enumerate(stats.tolist(), start=self.step_count + 1):
                record = {"step": i, "loss_c": loss_c, "loss_g": loss_g, "w_est": w_est, "gp": gp}
                if i % self._stride == 0:
                    self._record(record)
            self.step_count += k
            done += k
            self._good = self._capture()
        return record

    def _check(self, stats: torch.Tensor) -> None:
        params = list(self.generator.parameters()) + list(self.critic.parameters())
        weights_ok = bool(torch.isfinite(torch.stack(torch._foreach_norm(params))).all())
        finite = torch.isfinite(stats[:, :3])  # gp is nan by design when not computed
        if weights_ok and bool(finite.all()):
            return
        bad_row = int((~finite.all(dim=1)).nonzero()[0]) if not bool(finite.all()) else len(stats) - 1
        what = "critic loss" if not finite[bad_row, 0] else "generator loss" if not finite[bad_row, 1] else "weights"
        good_step = self._good["step"]
        self._restore(self._good)
        hint = "a smaller learning rate" + (" or another lambda" if self.cfg.loss == "wgan-gp" else "")
        raise Diverged(f"Training diverged at step {self.step_count + bad_row + 1}: the {what} became NaN or "
                       f"infinite. The weights were rolled back to step {good_step}; try {hint}, or reset.")

    def _record(self, record: dict) -> None:
        self.history.append(record)
        if len(self.history) > self.cfg.history_cap:  # thin evenly: keep every other record
            self.history = self.history[1::2]
            self._stride *= 2

    # ------------------------------------------------------------------ hot updates
    def update(self, **hot) -> None:
        """Change lam, clip, n_critic, lr_g or lr_c; takes effect at the next step."""
        for name, value in hot.items():
            if name not in HOT_FIELDS:
                raise ValueError(f"{name!r} cannot change while training (only {', '.join(HOT_FIELDS)}); reset instead.")
            check_hot(name, value)
        for name, value in hot.items():
            setattr(self.cfg, name, int(value) if name == "n_critic" else float(value))
            if name in ("lr_g", "lr_c"):
                for group in (self.opt_g if name == "lr_g" else self.opt_c).param_groups:
                    group["lr"] = float(value)

    # ------------------------------------------------------------------ state
    def _capture(self) -> dict:
        return {"step": self.step_count, "generator": _clone(self.generator.state_dict()),
                "critic": _clone(self.critic.state_dict()),
                "opt_g": _clone_optimizer(self.opt_g), "opt_c": _clone_optimizer(self.opt_c)}

    def _restore(self, good: dict) -> None:
        self.generator.load_state_dict(good["generator"])
        self.critic.load_state_dict(good["critic"])
        self.opt_g.load_state_dict(copy.deepcopy(good["opt_g"]))
        self.opt_c.load_state_dict(copy.deepcopy(good["opt_c"]))
        self.step_count = good["step"]
        self.history = [r for r in self.history if r["step"] <= good["step"]]

    def state_dict(self) -> dict:
        """Config, weights, optimizers, step, history and RNG state (plain types and tensors)."""
        return {"config": asdict(self.cfg), "generator": self.generator.state_dict(),
                "critic": self.critic.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_c": self.opt_c.state_dict(), "step": self.step_count,
                "history": [dict(r) for r in self.history], "stride": self._stride,
                "rng": self.rng.get_state()}

    def load_state_dict(self, d: dict) -> None:
        """Restore a state_dict(); ValueError if it does not fit this trainer's networks/optimizer."""
        missing = {"config", "generator", "critic", "opt_g", "opt_c", "step"} - set(d)
        if missing:
            raise ValueError(f"The checkpoint lacks {', '.join(sorted(missing))}; it is not a trainer state.")
        step, history, stride = _checked_progress(d)  # before touching anything: all or nothing
        saved = d["config"]
        if not isinstance(saved, dict):
            raise ValueError("The checkpoint's configuration is damaged.")
        if saved.get("optimizer") != self.cfg.optimizer:
            raise ValueError(f"The checkpoint used optimizer {saved.get('optimizer')!r}, this run uses "
                             f"{self.cfg.optimizer!r}; pick the same optimizer to resume.")
        backup = self._capture()  # all or nothing: a bad file leaves this trainer as it was
        try:
            self._load_parts(d, saved)
        except ValueError:
            self._restore(backup)
            raise
        self.step_count, self.history, self._stride = step, history, stride
        self._good = self._capture()

    def _load_parts(self, d: dict, saved: dict) -> None:
        try:
            self.generator.load_state_dict(d["generator"])
            self.critic.load_state_dict(d["critic"])
            self.opt_g.load_state_dict(d["opt_g"])
            self.opt_c.load_state_dict(d["opt_c"])
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            arch = {k: saved.get(k) for k in ("width", "depth", "noise_dim") if k in saved}
            raise ValueError(f"The checkpoint's networks do not match this run's ({arch or 'architecture'} "
                             f"in the file): {str(err).splitlines()[0]}") from None
        self.update(**{k: saved[k] for k in HOT_FIELDS if k in saved})
        if "rng" in d:
            try:
                self.rng.set_state(d["rng"])
            except (RuntimeError, TypeError, ValueError):
                raise ValueError("The checkpoint's random-number state is damaged.") from None


def _checked_progress(d: dict) -> tuple[int, list[dict], int]:
    """step, history and stride from a state dict, or ValueError if they were tampered with."""
    step, stride, history = d["step"], d.get("stride", 1), d.get("history", [])
    if not (isinstance(step, int) and step >= 0 and isinstance(stride, int) and stride >= 1):
        raise ValueError("The checkpoint's step counter is damaged (expected whole numbers >= 0).")
    keys = ("step", "loss_c", "loss_g", "w_est", "gp")
    ok = isinstance(history, list) and all(
        isinstance(r, dict) and all(isinstance(r.get(k), (int, float)) for k in keys) for r in history)
    if not ok:
        raise ValueError("The checkpoint's loss history is damaged (expected records of numbers).")
    return step, [dict(r) for r in history], stride


def _clone(state: dict) -> dict:
    return {k: v.detach().clone() for k, v in state.items()}


def _clone_optimizer(opt: torch.optim.Optimizer) -> dict:
    """A copy of opt.state_dict() that shares nothing with the optimizer: its tensors cloned, the
    rest copied. (copy.deepcopy does the same at ten times the cost: 1 ms a call, about a tenth of a
    training step at width 128, paid at every trainer.step call.)"""
    sd = opt.state_dict()
    state = {k: {name: v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
                 for name, v in per_param.items()} for k, per_param in sd["state"].items()}
    return {"state": state, "param_groups": copy.deepcopy(sd["param_groups"])}


# ---------------------------------------------------------------------- toy trainers
def make_toy_trainer(cfg: ToyConfig, points: np.ndarray | None = None) -> Trainer:
    """An MLP generator/critic Trainer on a 2-D source; `points` are the user's (n, 2) data.

    Weights, data and noise all come from generators seeded with cfg.seed (never the global RNG).
    The source is kept as `trainer.source`.
    """
    cfg.validate()
    source = make_source(cfg.dataset, cfg.spread, points, seed=cfg.seed)
    init_rng = torch.Generator().manual_seed(cfg.seed)
    G = init_linear(MLPGenerator(cfg.noise_dim, cfg.width, cfg.depth), init_rng)
    C = init_linear(MLPCritic(2, cfg.width, cfg.depth), init_rng)
    device = resolve_device(cfg.device)
    rng = torch.Generator(device).manual_seed(cfg.seed)
    dim = cfg.noise_dim

    def sample_noise(n: int) -> torch.Tensor:
        return torch.randn(n, dim, generator=rng, device=device)

    trainer = Trainer(cfg, G, C, lambda n: source.sample(n, rng), sample_noise, rng=rng)
    trainer.source = source
    return trainer


def toy_trainer_from_checkpoint(d: dict, points: np.ndarray | None = None) -> Trainer:
    """Rebuild a toy Trainer from load_checkpoint()'s dict and restore its state."""
    known = {f.name for f in fields(ToyConfig)}
    try:
        cfg = ToyConfig(**{k: v for k, v in d["config"].items() if k in known})
    except (KeyError, TypeError, AttributeError):
        raise ValueError("The checkpoint holds no 2-D GAN configuration.") from None
    trainer = make_toy_trainer(cfg, points)
    trainer.load_state_dict(d)
    return trainer


def toy_trainer_from_bytes(data: bytes, points: np.ndarray | None = None) -> Trainer:
    """toy_trainer_from_checkpoint on a checkpoint file's bytes (a factory a worker process can run)."""
    return toy_trainer_from_checkpoint(load_checkpoint(data), points)


def describe_toy_checkpoint(data: bytes, points: np.ndarray | None = None) -> dict:
    """{"config": the run's settings, "step": its step} if the file resumes a toy run; else ValueError.

    The trainer is rebuilt to check that every weight fits, then dropped: run it in a worker."""
    trainer = toy_trainer_from_bytes(data, points)
    return {"config": asdict(trainer.cfg), "step": trainer.step_count}
