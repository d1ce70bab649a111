"""The parallel-lines experiment (WGAN paper, Example 1) and a weight-clipped critic's estimate of W.

P0 is uniform on the segment {0} x [0, 1]; P_theta is uniform on {theta} x [0, 1]. For theta != 0
the two lines are disjoint, so TV = 1, KL = inf and JS = log 2 whatever theta is (no gradient),
while W = |theta| shrinks smoothly as theta -> 0 (gradient sign(theta)).

This module computes the analytic values, the values measured from samples (exact EMD on the
point clouds; TV/KL/JS on a 2-D histogram) and the neural estimate kappa * |theta| of a
weight-clipped critic, trained in chunks so that a caller can show progress between them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import ot
import torch
from torch import nn

from explorer.distances import check_converged, js, kl, tv
from explorer.losses import clip_weights

THETA_MAX = 1.0  # the explorer studies theta in [-1, 1]
N_MAX = 2000  # the exact EMD builds an n x n cost matrix; keep it small enough for a plain CPU


# ----------------------------------------------------------------------------- validation
def _check_theta(theta: float) -> float:
    theta = float(theta)
    if not math.isfinite(theta) or abs(theta) > THETA_MAX:
        raise ValueError(f"theta must be a number between -{THETA_MAX:g} and {THETA_MAX:g}; got {theta!r}.")
    return theta


def _check_n(n: int, name: str = "the sample size n", high: int = N_MAX, low: int = 2) -> int:
    whole = (isinstance(n, (int, np.integer)) and not isinstance(n, bool)) or \
        (isinstance(n, (float, np.floating)) and float(n).is_integer())
    if not whole or not low <= n <= high:
        raise ValueError(f"{name} must be a whole number between {low} and {high}; got {n!r}.")
    return int(n)


def _check_base(base: float) -> float:
    base = float(base)
    if not math.isfinite(base) or base <= 0 or base == 1:
        raise ValueError(f"the logarithm base must be a positive number other than 1 (e for nats, 2 for bits); got {base!r}.")
    return base


def _check_positive(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}.")
    return value


# ----------------------------------------------------------------------------- samples
def sample_lines(theta: float, n: int, seed: int = 0, paired: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Draw n points from P0 and n from P_theta.

    P0 = law of (0, Z), P_theta = law of (theta, Z'), Z, Z' ~ U[0, 1). Returns two (n, 2) arrays.
    paired=True reuses Z for Z' (the generator's view: P_theta's points are P0's shifted by theta),
    so the only difference between the clouds is theta; paired=False draws Z' independently and
    adds sampling noise. Example: sample_lines(0.5, 3)[1][:, 0] -> [0.5, 0.5, 0.5].
    """
    theta, n = _check_theta(theta), _check_n(n)
    rng = np.random.default_rng(seed)
    z0 = rng.random(n)
    z1 = z0 if paired else rng.random(n)
    p0 = np.column_stack([np.zeros(n), z0])
    pt = np.column_stack([np.full(n, theta), z1])
    return p0, pt


# ----------------------------------------------------------------------------- analytic values
def analytic_distances(theta: float, base: float = math.e) -> dict[str, float]:
    """Exact distances between P0 and P_theta.

    theta != 0: TV = 1, KL(P0||P_theta) = inf, JS = log(2) (in the given base), W = |theta|.
    theta == 0: all four are 0. Example: analytic_distances(0.3, base=2) -> tv 1, kl inf, js 1, w 0.3.
    """
    theta, base = _check_theta(theta), _check_base(base)
    if theta == 0:
        return {"tv": 0.0, "kl": 0.0, "js": 0.0, "w": 0.0}
    return {"tv": 1.0, "kl": math.inf, "js": math.log(2) / math.log(base), "w": abs(theta)}


def analytic_gradients(theta: float) -> dict[str, float]:
    """d/dtheta of each analytic distance; nan where the derivative does not exist.

    TV, JS: 0 for theta != 0 (flat), undefined at 0 (a jump). W = |theta|: sign(theta), undefined
    at 0 (a kink). KL: inf on both sides of 0, so no derivative anywhere (nan).
    """
    theta = _check_theta(theta)
    if theta == 0:
        return {"tv": math.nan, "kl": math.nan, "js": math.nan, "w": math.nan}
    return {"tv": 0.0, "kl": math.nan, "js": 0.0, "w": math.copysign(1.0, theta)}


# ----------------------------------------------------------------------------- measured values
def sample_w(p0: np.ndarray, pt: np.ndarray) -> float:
    """Exact W1 between two equal-weight point clouds: min over couplings of sum_ij F_ij ||x_i - y_j||_2.

    Solved by POT's network simplex (ot.emd2) on the Euclidean cost (not ot.dist's default
    squared Euclidean, which would give W2^2). Example: clouds {(0,0)} and {(0.5,0)} -> 0.5.
    """
    cost = ot.dist(p0, pt, metric="euclidean")
    n, m = cost.shape
    value, log = ot.emd2([], [], cost, numItermax=max(100_000, 50 * n * m), log=True)
    check_converged(log, "the EMD of the two lines")
    return float(value)


def histogram_distances(p0: np.ndarray, pt: np.ndarray, bin_width: float,
                        base: float = math.e) -> dict[str, float]:
    """TV, KL(P0||P_theta) and JS between 2-D histograms of the two clouds on square cells.

    Cells have side h = bin_width; columns start at the leftmost line (x = min(0, theta)) and
    rows at y = 0, so both lines share a column exactly when |theta| < h: then the histograms
    cannot see the gap. Only occupied cells are kept (an empty cell adds 0 to TV, KL and JS).
    Example: lines at x=0 and x=0.3 with h=0.5 and paired samples -> all 0; with h=0.1 -> TV 1.
    """
    h = _check_positive(bin_width, "the bin width")
    base = _check_base(base)
    both = np.concatenate([p0, pt])
    x0 = both[:, 0].min()
    # round the ratios so that a line lying exactly on a cell edge (|theta| = h) is not moved to
    # either side by floating-point error; it then starts a new column, as [a, a + h) says
    cols = np.floor(np.round((both[:, 0] - x0) / h, 9)).astype(np.int64)
    rows = np.floor(np.round(both[:, 1] / h, 9)).astype(np.int64)
    cells, index = np.unique(np.column_stack([cols, rows]), axis=0, return_inverse=True)
    index = index.ravel()
    p = np.bincount(index[: len(p0)], minlength=len(cells)).astype(float)
    q = np.bincount(index[len(p0):], minlength=len(cells)).astype(float)
    return {"tv": tv(p, q), "kl": kl(p, q, base=base), "js": js(p, q, base=base)}


# ----------------------------------------------------------------------------- what the page shows
@dataclass
class LinesConfig:
    theta: float = 0.5  # horizontal offset of P_theta's line, in [-1, 1]
    n: int = 200  # points drawn on each line
    bin_width: float = 0.1  # side of the square histogram cells used for TV / KL / JS from samples
    paired: bool = True  # same Z on both lines (P_theta = P0 shifted); False adds sampling noise
    base: float = math.e  # logarithm base of KL and JS: e gives nats, 2 gives bits
    seed: int = 0  # seeds the samples; the same seed gives the same numbers
    n_thetas: int = 41  # grid points over [-1, 1] for the curves (odd, so theta = 0 is on it)


@dataclass
class LinesPoint:
    """What the page shows at the chosen theta."""
    config: LinesConfig
    p0: np.ndarray  # (n, 2) sample of P0
    pt: np.ndarray  # (n, 2) sample of P_theta
    analytic: dict[str, float]  # tv, kl, js, w at config.theta (kl may be inf)
    measured: dict[str, float]  # tv, kl, js from the 2-D histogram, w by exact EMD on the clouds
    gradients: dict[str, float]  # analytic d/dtheta at config.theta (nan where undefined)


@dataclass
class LinesCurves:
    """Curves over theta in [-1, 1]; they do not depend on config.theta, so a page can cache them."""
    thetas: np.ndarray  # (n_thetas,) evenly spaced over [-1, 1]
    analytic: dict[str, np.ndarray]  # tv, kl, js, w -> (n_thetas,); kl holds inf off theta = 0
    measured: dict[str, np.ndarray]  # tv, kl, js (histogram), w (exact EMD) -> (n_thetas,)
    gradients: dict[str, np.ndarray]  # analytic d/dtheta -> (n_thetas,), nan where undefined
    w_slope: np.ndarray  # (n_thetas,) central finite differences of the measured W curve


def _check_config(cfg: LinesConfig) -> None:
    _check_theta(cfg.theta)
    _check_n(cfg.n)
    _check_base(cfg.base)
    _check_positive(cfg.bin_width, "the bin width")
    _check_n(cfg.n_thetas, "the number of curve points", high=201)


def _measure(theta: float, cfg: LinesConfig) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    p0, pt = sample_lines(theta, cfg.n, cfg.seed, cfg.paired)
    values = histogram_distances(p0, pt, cfg.bin_width, cfg.base)
    values["w"] = sample_w(p0, pt)
    return p0, pt, values


def lines_point(cfg: LinesConfig) -> LinesPoint:
    """Samples at cfg.theta, with the analytic and the measured distances and the analytic gradients."""
    _check_config(cfg)
    p0, pt, measured = _measure(cfg.theta, cfg)
    return LinesPoint(cfg, p0, pt, analytic_distances(cfg.theta, cfg.base), measured,
                      analytic_gradients(cfg.theta))


def lines_curves(cfg: LinesConfig) -> LinesCurves:
    """Analytic and measured TV, KL, JS, W and the analytic d/dtheta on a grid over [-1, 1].

    Every theta reuses cfg.seed (common random numbers), so the measured curves move with theta
    only, not with fresh noise. Cost: cfg.n_thetas exact EMDs of size n x n.
    """
    _check_config(cfg)
    thetas = np.linspace(-THETA_MAX, THETA_MAX, int(cfg.n_thetas))

    def stack(rows: list[dict[str, float]]) -> dict[str, np.ndarray]:
        return {k: np.array([r[k] for r in rows]) for k in ("tv", "kl", "js", "w")}

    measured = stack([_measure(t, cfg)[2] for t in thetas])
    return LinesCurves(thetas, stack([analytic_distances(t, cfg.base) for t in thetas]), measured,
                       stack([analytic_gradients(t) for t in thetas]), np.gradient(measured["w"], thetas))


# ----------------------------------------------------------------------------- the clipped critic
class LineCritic(nn.Module):
    """f_w: R^2 -> R, one score per sample: Linear(2, hidden) -> Sigmoid -> Linear(hidden, 1)."""

    def __init__(self, hidden: int, clip: float, generator: torch.Generator):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Sigmoid(), nn.Linear(hidden, 1))
        # start well inside the box [-c, c] so that clipping does not decide the first steps
        with torch.no_grad():
            for layer in (self.net[0], self.net[2]):
                layer.weight.normal_(0.0, 0.1 * clip, generator=generator)
                layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # (B, 2) -> (B,)


@dataclass
class CriticConfig:
    # one fresh critic per theta
    thetas: tuple[float, ...] = (-1.0, -0.8, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    clip: float = 0.5  # c: every weight is clipped to [-c, c] after each step
    iterations: int = 100  # RMSProp steps per theta
    lr: float = 5e-3  # RMSProp learning rate (no momentum, as the WGAN paper recommends)
    batch_size: int = 64  # points from each line per step
    hidden: int = 10  # sigmoid units of the critic
    eval_samples: int = 2000  # points from each line for the final E f(P0) - E f(P_theta)
    seed: int = 0  # seeds initial weights and every sample: same seed, same kappa


@dataclass
class CriticProgress:
    done: int  # RMSProp steps done so far, over all thetas
    total: int  # RMSProp steps the whole run will take
    thetas: list[float]  # thetas whose critic has finished
    estimates: list[float]  # E f(P0) - E f(P_theta) of each finished critic
    kappa: float  # least-squares slope of estimates against |theta| (nan until a theta != 0 is done)

    @property
    def finished(self) -> bool:
        return self.done >= self.total


def fit_kappa(thetas: Sequence[float], estimates: Sequence[float]) -> float:
    """Least-squares slope through the origin: kappa = sum(e_i |t_i|) / sum(t_i^2); nan if all t_i = 0.

    Example: fit_kappa([-1, 0.5], [0.2, 0.1]) -> 0.2.
    """
    a, e = np.abs(np.asarray(thetas, float)), np.asarray(estimates, float)
    denom = float(a @ a)
    return float(a @ e) / denom if denom > 0 else math.nan


def kappa_bound(hidden: int, clip: float) -> float:
    """Largest slope along x the clipped critic can reach: kappa <= hidden * c * max(sigmoid') * c.

    f(x) = sum_j v_j sigmoid(w_j . x + b_j) + b with |v_j|, |w_j1| <= c and sigmoid' <= 1/4, so
    |df/dx_1| <= hidden * c^2 / 4 (0.625 for 10 units and c = 0.5): clipping, not W, sets kappa's scale.
    """
    return hidden * clip * clip / 4


def _check_critic_config(cfg: CriticConfig) -> None:
    if len(cfg.thetas) == 0:
        raise ValueError("give at least one theta for the critic estimate.")
    for t in cfg.thetas:
        _check_theta(t)
    _check_positive(cfg.clip, "the clipping value c")
    _check_positive(cfg.lr, "the learning rate")
    _check_n(cfg.iterations, "the number of iterations", high=1_000_000, low=1)
    _check_n(cfg.batch_size, "the batch size", high=100_000)
    _check_n(cfg.eval_samples, "the number of evaluation samples", high=1_000_000)
    _check_n(cfg.hidden, "the number of hidden units", high=10_000, low=1)


def _line_batch(theta: float, z: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.full_like(z, theta), z], dim=1)  # (B,) -> (B, 2)


def critic_value(critic: nn.Module, theta: float, n: int, generator: torch.Generator) -> float:
    """E f(x ~ P0) - E f(x ~ P_theta) on n points a line (the same Z on both: less noise, same mean)."""
    z = torch.rand(n, generator=generator)
    with torch.no_grad():
        return float(critic(_line_batch(0.0, z)).mean() - critic(_line_batch(theta, z)).mean())


def train_critic(critic: nn.Module, optimizer: torch.optim.Optimizer, theta: float, steps: int,
                 batch_size: int, clip: float, generator: torch.Generator) -> float:
    """Run `steps` updates of the clipped critic between P0 and P_theta; return the last batch's V.

    V(w) = mean f_w(x_i ~ P0) - mean f_w(y_i ~ P_theta) on batch_size fresh points a line.
    """
    value = math.nan
    for _ in range(steps):
        value = _critic_step(critic, optimizer, theta, batch_size, clip, generator)
    return value


def _critic_step(critic: nn.Module, optimizer: torch.optim.Optimizer, theta: float, batch_size: int,
                 clip: float, generator: torch.Generator) -> float:
    real = _line_batch(0.0, torch.rand(batch_size, generator=generator))
    fake = _line_batch(theta, torch.rand(batch_size, generator=generator))
    # (1) maximize V = E f(real) - E f(fake): the optimizer minimizes -V
    v = critic(real).mean() - critic(fake).mean()
    optimizer.zero_grad(set_to_none=True)
    (-v).backward()
    optimizer.step()
    # (2) project back onto the compact set W = [-c, c]^p, which keeps f_w K-Lipschitz
    clip_weights(critic, clip)
    return float(v.detach())


def critic_estimates(cfg: CriticConfig, chunk: int = 50) -> Iterator[CriticProgress]:
    """Train one fresh clipped critic per theta; yield progress after every `chunk` steps.

    Each critic maximizes V(w) = E f_w(x ~ P0) - E f_w(x ~ P_theta) by RMSProp on -V, clipping
    every weight to [-c, c] after each step; its final V estimates kappa * W = kappa * |theta|.
    The last item yielded has finished == True and the fitted kappa.
    """
    _check_critic_config(cfg)
    chunk = max(1, int(chunk))
    gen = torch.Generator().manual_seed(int(cfg.seed))
    total = len(cfg.thetas) * cfg.iterations
    done, thetas, estimates = 0, [], []
    for theta in cfg.thetas:
        critic = LineCritic(int(cfg.hidden), cfg.clip, gen)
        optimizer = torch.optim.RMSprop(critic.parameters(), lr=cfg.lr)
        left = cfg.iterations
        while left > 0:
            steps = min(chunk, left)
            train_critic(critic, optimizer, float(theta), steps, cfg.batch_size, cfg.clip, gen)
            left -= steps
            done += steps
            if left > 0:
                yield CriticProgress(done, total, list(thetas), list(estimates), fit_kappa(thetas, estimates))
        thetas.append(float(theta))
        estimates.append(critic_value(critic, float(theta), cfg.eval_samples, gen))
        yield CriticProgress(done, total, list(thetas), list(estimates), fit_kappa(thetas, estimates))


def run_critic_estimate(cfg: CriticConfig) -> CriticProgress:
    """Run critic_estimates to the end and return its final progress (the fitted kappa)."""
    last = None
    for last in critic_estimates(cfg, chunk=max(1, cfg.iterations)):
        pass
    return last
