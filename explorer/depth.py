"""Why clipping fails, shown: the WGAN-GP paper's Figures 1b and 1c, live.

Deep critics (up to 12 hidden ReLU layers, no batch norm) learn to tell a dataset from a fixed
"generator" (the data plus unit Gaussian noise, as in Compare's critic-only mode), side by side in
lock-step: one with weights clipped at each c of `clips` and one with the gradient penalty. Each
snapshot carries, per critic, the norm of the critic's loss gradient at every hidden layer and the
histogram of its weights (explorer/lipschitz.py). With clipping the gradients vanish (small c) or
explode (large c) exponentially with depth and the weights pile up at +-c; with the penalty they
stay level and the weights spread (Gulrajani et al. 2017, section 3).

    >>> runs = make_depth_runs(DepthConfig(depth=4, width=16, batch_size=32, n=32, grid=8))
    >>> runs.step(2); [len(p.lipschitz["layers"]) for p in runs.snapshot().panels]
    [4, 4, 4, 4]
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

from explorer.compare import CriticOnlyConfig, CriticOnlyTrainer, Lockstep, critic_only_snapshot
from explorer.training import check_hot

MAX_DEPTH = 12


@dataclass
class DepthConfig:
    dataset: str = "swissroll"        # the paper's Figure 1b uses the swiss roll
    depth: int = 12                   # hidden ReLU layers of every critic (the paper: 12)
    width: int = 128                  # units per hidden layer
    clips: tuple = (0.1, 0.01, 0.001)  # one clipped critic per bound c (the paper's three)
    lam: float = 10.0                 # gradient-penalty weight of the penalised critic
    lr: float = 1e-3                  # critic learning rate (Adam, betas 0.5, 0.9)
    batch_size: int = 256             # real and "fake" samples per critic step
    noise_std: float = 1.0            # the fixed "generator": real data + noise_std * N(0, I)
    seed: int = 0                     # every critic starts from the same weights and data
    device: str = "auto"
    n: int = 256                      # samples per snapshot
    grid: int = 48                    # critic-field lattice per side

    def critic_config(self) -> CriticOnlyConfig:
        return CriticOnlyConfig(datasets=(self.dataset,), methods=("clip", "gp"), lam=self.lam,
                                clip=self.clips[0] if self.clips else 0.01, noise_std=self.noise_std, lr=self.lr,
                                width=self.width, depth=self.depth, batch_size=self.batch_size, seed=self.seed,
                                device=self.device, n=self.n, grid=self.grid)

    def validate(self) -> None:
        if not (isinstance(self.depth, int) and 1 <= self.depth <= MAX_DEPTH):
            raise ValueError(f"depth must be a whole number from 1 to {MAX_DEPTH}; got {self.depth!r}.")
        if not 1 <= len(self.clips) <= 4:
            raise ValueError(f"Give one to four clipping bounds; got {len(self.clips)}.")
        for c in self.clips:
            check_hot("clip", c)
        self.critic_config().validate()


def make_depth_runs(cfg: DepthConfig) -> Lockstep:
    """One clipped critic per c in cfg.clips, then the penalised one, in lock-step (one step = one
    critic update each)."""
    cfg.validate()
    base = cfg.critic_config()
    trainers = [CriticOnlyTrainer(replace(base, clip=float(c)), cfg.dataset, "clip") for c in cfg.clips]
    trainers.append(CriticOnlyTrainer(replace(base), cfg.dataset, "gp"))
    labels = [f"clipping, c = {c:g}" for c in cfg.clips] + [f"gradient penalty, λ = {cfg.lam:g}"]
    return Lockstep(trainers, labels, partial(critic_only_snapshot, n=cfg.n, grid=cfg.grid))
