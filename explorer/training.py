"""The training settings every run shares, and the generic GAN Trainer: `trainer.step(n)`.

The Trainer knows nothing about processes, pages or 2-D points: it takes a generator, a critic and
two samplers, so tests, the command line, a worker process and the image GANs all drive it alike.
Its step is written once, with autograd, in `_one_step`; on a CPU the toy MLPs may take the same
maths in closed form (explorer/fast_mlp.py), chosen by TrainConfig.engine. The losses themselves
live in explorer/losses.py, which both engines use. The toy and image runs (their configs,
factories and snapshots) are explorer/toy_training.py and explorer/image_training.py.
"""
from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from explorer.choices import DEVICES, ENGINES, HOT_FIELDS, LOSSES, OPTIMIZERS
from explorer.fast_mlp import FastStep
from explorer.losses import clip_weights, critic_terms, generator_loss, make_optimizer
from explorer.precision import LossScaler, resolve_precision

log = logging.getLogger(__name__)
CHECK_EVERY = 25         # generator steps between finiteness checks (and last-good snapshots)
RECORD_KEYS = ("step", "loss_c", "loss_g", "w_est", "gp")   # one history record (gp is NaN where not computed)


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
    engine: str = "auto"         # "autograd", "closed_form" (MLPs on a CPU, explorer/fast_mlp.py) or "auto"
    ema: float = 0.0             # generator weight averaging (Yazici et al. 2019): 0 off, else the decay, e.g. 0.999
    # False: the generator step draws fresh noise (WGAN-GP paper, Algorithm 1). True: it reuses the fakes
    # of the last critic iteration (the DCGAN formulation of pytorch/examples and the lecture notes),
    # which saves one generator forward per step; same maths, other noise draws.
    reuse_fakes: bool = False

    def validate(self) -> None:
        """Raise ValueError with a readable sentence for any out-of-range field."""
        if self.loss not in LOSSES:
            raise ValueError(f"Unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}.")
        if self.engine not in ENGINES:
            raise ValueError(f"Unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}.")
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
        if not isinstance(self.reuse_fakes, bool):
            raise ValueError(f"reuse_fakes must be True or False; got {self.reuse_fakes!r}.")
        if not (isinstance(self.ema, (int, float)) and not isinstance(self.ema, bool) and 0 <= self.ema < 1):
            raise ValueError(f"ema must be a number in [0, 1) (0: no averaging); got {self.ema!r}.")
        if not (isinstance(self.history_cap, int) and self.history_cap >= 2):
            raise ValueError(f"history_cap must be a whole number >= 2; got {self.history_cap}.")


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


def gaussian_noise(n: int, dim: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """z ~ N(0, I): an (n, dim) tensor on `device`, drawn from `generator` (a generator's noise)."""
    return torch.randn(n, dim, generator=generator, device=device)


class Diverged(RuntimeError):
    """A loss or weight became NaN/inf; the trainer has rolled back to its last good state."""


SNAPSHOT_NETS = ("generator", "critic", "ema_generator")   # what Trainer.snapshot_view copies


def _shadow_of(net: nn.Module) -> nn.Module:
    """A copy of `net` to draw from (no gradients kept)."""
    shadow = copy.deepcopy(net)
    for p in shadow.parameters():
        p.grad = None
    return shadow


def _tensors(net: nn.Module):
    """Every parameter and buffer of `net`, in a fixed order."""
    yield from net.parameters()
    yield from net.buffers()


class Trainer:
    """Alternating critic/generator updates for gan, wgan and wgan-gp on any data shape.

    sample_real(n) and sample_noise(n) return (n, ...) tensors on the trainer's device; for
    reproducibility they should draw from `rng` (pass the same torch.Generator here).
    amp: the precision the networks compute in (explorer/precision.py; the caller sets it on the
    networks, as explorer/image_training.py does); "fp16" gives each optimizer a loss scaler.
    """

    def __init__(self, cfg: TrainConfig, generator: nn.Module, critic: nn.Module,
                 sample_real: Callable[[int], torch.Tensor], sample_noise: Callable[[int], torch.Tensor],
                 rng: torch.Generator | None = None, amp: str = "off"):
        cfg.validate()
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.amp = resolve_precision(amp, self.device)
        # One scaler per optimizer: the critic's and the generator's losses overflow at different scales.
        fp16 = self.amp == "fp16"
        self.scaler_c, self.scaler_g = LossScaler(self.device, fp16), LossScaler(self.device, fp16)
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
        self.fast = self._closed_form_step()   # None: the autograd step below
        # The averaged generator (cfg.ema > 0): what snapshots draw and measure, see eval_generator.
        self.ema_generator = copy.deepcopy(self.generator).requires_grad_(False) if cfg.ema > 0 else None
        self._good = self._capture()

    @property
    def eval_generator(self) -> nn.Module:
        """The generator to draw and measure: the averaged one when cfg.ema > 0, else the trained one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def snapshot_view(self) -> "Trainer":
        """This trainer as it stands now, for a snapshot drawn in another thread while it trains on
        (explorer/snapshots.py): its networks copied into shadows kept for the purpose (the same
        weights and batch-norm statistics, bit for bit), its history copied, the rest shared: what a
        snapshot only reads (cfg, the data source, the step count as it was) or fills (extras, the
        snapshot functions' caches). A snapshot of the view equals one of the trainer at this step,
        and one that runs the networks (batch norm in training mode updates its statistics) leaves
        the trained ones alone."""
        nets = {name: getattr(self, name) for name in SNAPSHOT_NETS if getattr(self, name) is not None}
        shadows = self.__dict__.get("_shadows")
        if shadows is None or shadows.keys() != nets.keys():
            shadows = self._shadows = {name: _shadow_of(net) for name, net in nets.items()}
        with torch.no_grad():
            for name, net in nets.items():
                for mine, theirs in zip(_tensors(shadows[name]), _tensors(net)):
                    mine.copy_(theirs)
        view = copy.copy(self)
        view.__dict__.update(shadows, history=list(self.history), _shadows=None)
        return view

    @torch.no_grad()
    def _average(self, t: int) -> None:
        """ema <- d * ema + (1 - d) * theta after generator step t, with d = min(ema, (1 + t) / (10 + t)),
        so the average forgets the random start early on; buffers (batch-norm statistics) are copied."""
        d = min(self.cfg.ema, (1 + t) / (10 + t))
        for avg, p in zip(self.ema_generator.parameters(), self.generator.parameters()):
            avg.lerp_(p, 1 - d)
        for avg, b in zip(self.ema_generator.buffers(), self.generator.buffers()):
            avg.copy_(b)

    @property
    def engine(self) -> str:
        """The engine in use: "closed_form" or "autograd" (cfg.engine "auto" resolved)."""
        return "autograd" if self.fast is None else "closed_form"

    def _closed_form_step(self) -> FastStep | None:
        """The closed-form step where cfg.engine asks for it (or "auto") and it can do this run."""
        if self.cfg.engine == "autograd":
            return None
        why = (f"it has no {self.amp} mixed precision" if self.amp != "off" else
               FastStep.refusal(self.generator, self.critic, self.device, self.cfg.loss))
        if why is None:
            return FastStep(self.generator, self.critic)
        if self.cfg.engine == "closed_form":
            log.info("closed-form engine not used (%s): training with autograd", why)
        return None

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
        # Every backward pass and step goes through a loss scaler (explorer/precision.py): a plain
        # backward and step unless fp16, where it may skip a step whose gradients overflowed.
        for i in range(cfg.n_critic):
            real = self.sample_real(B)
            with torch.set_grad_enabled(cfg.reuse_fakes and i == cfg.n_critic - 1):
                fake = G(self.sample_noise(B))
            terms = critic_terms(kind, C, real, fake.detach(), cfg.lam, self.rng, scale=self.scaler_c.scale())
            skipped_c = self.scaler_c.minimize(terms.loss, self.opt_c)
            if kind == "wgan":
                clip_weights(C, cfg.clip)
        # (2) Update the generator: minimize -E f(G(z))   (gan: -E log D(G(z)), or E log(1 - D(G(z))))
        judged = [p for p in C.parameters() if p.requires_grad]
        for p in judged:  # the critic only judges here: skip gradients for its weights
            p.requires_grad_(False)
        try:
            fake = fake if cfg.reuse_fakes else G(self.sample_noise(B))
            loss_g = generator_loss(kind, C, fake, cfg.non_saturating)
            skipped_g = self.scaler_g.minimize(loss_g, self.opt_g)
        finally:
            for p in judged:
                p.requires_grad_(True)
        # The last column: 1 if a scaler skipped the steps these numbers come from (their overflow).
        return torch.stack((terms.loss.detach(), loss_g.detach(), terms.w_est, terms.gp,
                            torch.maximum(skipped_c, skipped_g)))

    def step(self, n: int = 1) -> dict:
        """Run n generator steps (each after cfg.n_critic critic steps); return the last record.

        Losses stay on the device and are checked every CHECK_EVERY steps (no sync per step); on
        NaN/inf the weights and optimizers roll back to the last checked state and Diverged is raised.
        A step an fp16 loss scaler skipped (its gradients overflowed; it changed no weight) is no
        divergence: it is recorded with NaN for what overflowed.
        """
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"step(n) needs a whole number n >= 1; got {n!r}.")
        record: dict = {}
        done = 0
        one_step = self._one_step if self.fast is None else lambda: self.fast(self)
        while done < n:
            k = min(CHECK_EVERY, n - done)
            rows = []
            for j in range(k):
                rows.append(one_step())
                if self.ema_generator is not None:   # one place for both engines
                    self._average(self.step_count + j + 1)
            stats = torch.stack(rows).cpu()
            self._check(stats)
            for i, (*numbers, skipped) in enumerate(stats.tolist(), start=self.step_count + 1):
                if skipped:   # what overflowed in a step the loss scaler skipped was never a measurement
                    numbers = [v if math.isfinite(v) else math.nan for v in numbers]
                record = {"step": i, **dict(zip(("loss_c", "loss_g", "w_est", "gp"), numbers))}
                if i % self._stride == 0:
                    self._record(record)
            self.step_count += k
            done += k
            self._good = self._capture()
        return record

    def _check(self, stats: torch.Tensor) -> None:
        params = list(self.generator.parameters()) + list(self.critic.parameters())
        weights_ok = bool(torch.isfinite(torch.nn.utils.get_total_norm(params)))   # nan/inf in any: not finite
        # gp is nan by design when not computed; a step a loss scaler skipped (fp16 overflow) changed no weight.
        finite = torch.isfinite(stats[:, :3]) | stats[:, 4:].bool()
        stuck = self.scaler_c.collapsed() or self.scaler_g.collapsed()
        if weights_ok and bool(finite.all()) and not stuck:
            return
        bad_row = int((~finite.all(dim=1)).nonzero()[0]) if not bool(finite.all()) else len(stats) - 1
        what = "critic loss" if not finite[bad_row, 0] else "generator loss" if not finite[bad_row, 1] else "weights"
        good_step = self._good["step"]
        self._restore(self._good)
        if stuck and weights_ok and bool(finite.all()):
            raise Diverged(f"Training stopped at step {self.step_count + len(stats)}: float16 overflowed at every "
                           f"step, so nothing trained since step {good_step}; choose bf16 or no mixed precision.")
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
        good = {"step": self.step_count, "generator": _clone(self.generator.state_dict()),
                "critic": _clone(self.critic.state_dict()),
                "opt_g": _clone_optimizer(self.opt_g), "opt_c": _clone_optimizer(self.opt_c)}
        if getattr(self, "ema_generator", None) is not None:
            good["ema_generator"] = _clone(self.ema_generator.state_dict())
        return good

    def _restore(self, good: dict) -> None:
        self.generator.load_state_dict(good["generator"])
        self.critic.load_state_dict(good["critic"])
        self.opt_g.load_state_dict(copy.deepcopy(good["opt_g"]))
        self.opt_c.load_state_dict(copy.deepcopy(good["opt_c"]))
        if "ema_generator" in good and self.ema_generator is not None:
            self.ema_generator.load_state_dict(good["ema_generator"])
        self.step_count = good["step"]
        self.history = [r for r in self.history if r["step"] <= good["step"]]

    def state_dict(self) -> dict:
        """Config, weights, optimizers, step, history and RNG state (plain types and tensors)."""
        d = {"config": asdict(self.cfg), "generator": self.generator.state_dict(),
             "critic": self.critic.state_dict(), "opt_g": self.opt_g.state_dict(),
             "opt_c": self.opt_c.state_dict(), "step": self.step_count,
             "history": [dict(r) for r in self.history], "stride": self._stride,
             "rng": self.rng.get_state(), "rng_device": self.rng.device.type}
        if self.ema_generator is not None:
            d["ema_generator"] = self.ema_generator.state_dict()
        if self.scaler_c.enabled:
            d["scaler_c"], d["scaler_g"] = self.scaler_c.state_dict(), self.scaler_g.state_dict()
        return d

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
            _load_moments(self.opt_g, d["opt_g"])
            _load_moments(self.opt_c, d["opt_c"])
            if self.ema_generator is not None:   # an older file without it: the average starts from here
                self.ema_generator.load_state_dict(d.get("ema_generator", d["generator"]))
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            arch = {k: saved.get(k) for k in ("width", "depth", "noise_dim") if k in saved}
            raise ValueError(f"The checkpoint's networks do not match this run's ({arch or 'architecture'} "
                             f"in the file): {str(err).splitlines()[0]}") from None
        self.update(**{k: saved[k] for k in HOT_FIELDS if k in saved})
        try:
            self.scaler_c.load_state_dict(d.get("scaler_c", {}))
            self.scaler_g.load_state_dict(d.get("scaler_g", {}))
        except (RuntimeError, TypeError, ValueError, KeyError):
            raise ValueError("The checkpoint's loss-scaler state is damaged.") from None
        # A CPU and a CUDA generator hold different states (and draw different numbers from one seed):
        # a run moved to another kind of device keeps the stream it was seeded with here.
        if "rng" in d and d.get("rng_device", self.rng.device.type) == self.rng.device.type:
            try:
                self.rng.set_state(d["rng"])
            except (RuntimeError, TypeError, ValueError):
                raise ValueError("The checkpoint's random-number state is damaged.") from None
        elif "rng" in d:
            log.info("checkpoint from a %s run: its random-number state does not apply on %s",
                     d.get("rng_device"), self.rng.device.type)


def _checked_progress(d: dict) -> tuple[int, list[dict], int]:
    """step, history and stride from a state dict, or ValueError if they were tampered with."""
    step, stride, history = d["step"], d.get("stride", 1), d.get("history", [])
    if not (isinstance(step, int) and step >= 0 and isinstance(stride, int) and stride >= 1):
        raise ValueError("The checkpoint's step counter is damaged (expected whole numbers >= 0).")
    ok = isinstance(history, list) and all(
        isinstance(r, dict) and all(isinstance(r.get(k), (int, float)) for k in RECORD_KEYS) for r in history)
    if not ok:
        raise ValueError("The checkpoint's loss history is damaged (expected records of numbers).")
    return step, [dict(r) for r in history], stride


def _load_moments(opt: torch.optim.Optimizer, saved: dict) -> None:
    """The optimizer's per-weight state (moments, step) from a file, its settings kept as this trainer
    made them: a file's eps, weight decay or kernel choice (fused, capturable, ...) never applies. The
    learning rates follow the file's config through update(), within check_hot's range."""
    own = [{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups]
    opt.load_state_dict(saved)
    for group, settings in zip(opt.param_groups, own):
        group.update(settings)


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


