"""Grids of up to 16 small 2-D GANs over one or two hyperparameters, shown as small multiples.

The members of a grid are built exactly as lone runs would be (grid_configs: the base config with
the axis values swapped in), so a member trains the same whether it runs in the batched Ensemble or
as its own Trainer (tests/test_ensemble.py). Which engine trains the grid is a matter of speed:

- "ensemble" (explorer/ensemble.py): weights stacked, one batched matmul per layer. It wins where
  per-kernel overhead dominates, i.e. on a GPU.
- "lone": one Trainer per member, stepped in lock-step. On CPU each Trainer takes the hand-derived
  gradients of explorer/fast_mlp.py, which outrun the batched autograd ensemble here
  (bench/ensemble_throughput.py, K=8, width 128, 1 thread: 262 vs 135 run-steps/s).

"auto" picks lone trainers where the fast path applies (CPU) and the ensemble elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from explorer import training
from explorer.compare import CompareSnapshot, Lockstep
from explorer.ensemble import Ensemble, grid_configs
from explorer.metrics import toy_snapshot
from explorer.training import ToyConfig, make_toy_trainer, resolve_device

MAX_GRID = 16
ENGINES = ("auto", "ensemble", "lone")


@dataclass
class GridConfig:
    base: ToyConfig = field(default_factory=lambda: ToyConfig(width=64))  # shared by every member
    field_a: str = "lam"                 # first axis: one of ensemble.MEMBER_FIELDS
    values_a: tuple = (0.1, 1.0, 10.0)
    field_b: str | None = "n_critic"     # second axis (None: a single row)
    values_b: tuple = (1, 5)
    n: int = 128                         # samples per member snapshot
    grid: int = 48                       # critic-field lattice per side
    engine: str = "auto"                 # "auto", "ensemble" or "lone" (see the module docstring)

    def member_configs(self) -> list[ToyConfig]:
        if self.engine not in ENGINES:
            raise ValueError(f"Unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}.")
        cfgs = grid_configs(self.base, self.field_a, self.values_a, self.field_b, self.values_b)
        if len(cfgs) > MAX_GRID:
            raise ValueError(f"A grid holds at most {MAX_GRID} runs; these axes make {len(cfgs)}.")
        return cfgs

    def labels(self) -> list[str]:
        fb = [self.field_b] if self.field_b else []
        return [", ".join(f"{f}={getattr(c, f):g}" for f in [self.field_a, *fb]) for c in self.member_configs()]

    def resolved_engine(self) -> str:
        """"ensemble" or "lone": what "auto" means on this machine for this base config."""
        if self.engine != "auto":
            return self.engine
        on_cpu = resolve_device(self.base.device) == torch.device("cpu")
        return "lone" if on_cpu and training.FAST_CPU else "ensemble"


class GridRuns:
    """The members of a grid, trained together; every member is a panel of the snapshot."""

    def __init__(self, cfg: GridConfig, points: np.ndarray | None = None):
        self.grid_cfg, self.member_cfgs, self.labels = cfg, cfg.member_configs(), cfg.labels()
        self.engine = cfg.resolved_engine()
        if self.engine == "ensemble":
            self.runs: Ensemble | Lockstep = Ensemble(self.member_cfgs, points)
            self.cfg = self.runs.cfg
        else:
            trainers = [make_toy_trainer(replace(c), points) for c in self.member_cfgs]
            self.runs = Lockstep(trainers, self.labels, lambda t: self._panel(t, t.source))
            self.cfg = trainers[0].cfg

    def _panel(self, member, source):
        return toy_snapshot(member, source, n=self.grid_cfg.n, grid=self.grid_cfg.grid)

    @property
    def step_count(self) -> int:
        return self.runs.step_count

    def step(self, n: int = 1) -> None:
        self.runs.step(n)

    def update(self, **hot) -> None:
        """A hot change (lam, clip, n_critic, lr_g, lr_c) for every member."""
        self.runs.update(**hot)

    def snapshot(self) -> CompareSnapshot:
        if isinstance(self.runs, Lockstep):
            return self.runs.snapshot()
        ens = self.runs
        panels = [self._panel(ens.view(k), ens.source) for k in range(ens.K)]
        metrics = {k: [p.metrics.get(k) for p in panels] for k in ("w1_exact", "w1_floor", "w_est")}
        return CompareSnapshot(ens.step_count, list(self.labels), panels, list(ens.diverged), metrics)


def grid_table(snap: CompareSnapshot, cfgs: list[ToyConfig], fields: list[str]) -> pd.DataFrame:
    """One row per member: its grid values and latest metrics, sorted by exact W1 (best first)."""
    rows = []
    for label, cfg, p, why in zip(snap.labels, cfgs, snap.panels, snap.diverged):
        m = p.metrics
        rows.append({"run": label, **{f: getattr(cfg, f) for f in fields}, "W1 exact": m["w1_exact"],
                     "W1 floor": m["w1_floor"], "modes": m["modes"], "HQ %": None if m["hq"] is None else 100 * m["hq"],
                     "‖∇f‖ mean": m["gp_grad_norm_mean"], "‖∇f‖ std": m["gp_grad_norm_std"],
                     "status": why or "ok"})
    return pd.DataFrame(rows).sort_values("W1 exact", ignore_index=True, na_position="last")
