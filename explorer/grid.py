"""Grids of up to 16 small 2-D GANs over one or two hyperparameters, shown as small multiples.

The members of a grid are built exactly as lone runs would be (the base config with the axis values
swapped in) and trained as lone Trainers in lock-step, so a member is the very run the 2-D page
would train with those settings. (A batched ensemble that stacked the members' weights was tried:
on a CPU it ran at half the speed of lone trainers on the closed-form engine, 135 vs 262 run-steps/s
for 8 members at width 128, and it was never measured on a GPU, so it was removed.)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import pandas as pd

from explorer.choices import HOT_FIELDS
from explorer.compare import CompareSnapshot, Lockstep
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot

MAX_GRID = 16
MEMBER_FIELDS = HOT_FIELDS + ("seed",)   # what may differ between the members of a grid


def grid_configs(base: ToyConfig, field_a: str, values_a, field_b: str | None = None, values_b=()) -> list[ToyConfig]:
    """Member configs for a grid over one or two fields (row-major: field_a outer, field_b inner)."""
    for name in (field_a, field_b):
        if name is not None and name not in MEMBER_FIELDS:
            raise ValueError(f"A grid can vary {', '.join(MEMBER_FIELDS)}; not {name!r}.")
    if field_b is not None and field_b == field_a:
        raise ValueError("Pick two different hyperparameters for the grid's two axes.")
    values_a = list(values_a)
    values_b = list(values_b) if field_b is not None else [None]
    if not values_a or not values_b:
        raise ValueError("Each grid axis needs at least one value.")

    def cast(name: str, v):
        if name in ("n_critic", "seed"):
            if float(v) != int(float(v)):
                raise ValueError(f"{name} takes whole numbers; got {v!r}.")
            return int(float(v))
        return float(v)

    out = []
    for a in values_a:
        for b in values_b:
            over = {field_a: cast(field_a, a)}
            if field_b is not None:
                over[field_b] = cast(field_b, b)
            out.append(replace(base, **over))
    for cfg in out:
        cfg.validate()
    return out


@dataclass
class GridConfig:
    base: ToyConfig = field(default_factory=lambda: ToyConfig(width=64))  # shared by every member
    field_a: str = "lam"                 # first axis: one of MEMBER_FIELDS
    values_a: tuple = (0.1, 1.0, 10.0)
    field_b: str | None = "n_critic"     # second axis (None: a single row)
    values_b: tuple = (1, 5)
    n: int = 128                         # samples per member snapshot
    grid: int = 48                       # critic-field lattice per side

    def member_configs(self) -> list[ToyConfig]:
        cfgs = grid_configs(self.base, self.field_a, self.values_a, self.field_b, self.values_b)
        if len(cfgs) > MAX_GRID:
            raise ValueError(f"A grid holds at most {MAX_GRID} runs; these axes make {len(cfgs)}.")
        return cfgs

    def labels(self) -> list[str]:
        fb = [self.field_b] if self.field_b else []
        return [", ".join(f"{f}={getattr(c, f):g}" for f in [self.field_a, *fb]) for c in self.member_configs()]


def make_grid(cfg: GridConfig, points: np.ndarray | None = None) -> Lockstep:
    """The members of a grid as lone trainers in lock-step; every member is a panel of the snapshot."""
    trainers = [make_toy_trainer(replace(c), points) for c in cfg.member_configs()]
    return Lockstep(trainers, cfg.labels(), partial(toy_snapshot, n=cfg.n, grid=cfg.grid))


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
