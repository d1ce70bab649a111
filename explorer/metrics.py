"""Measured quality of a GAN: exact W1 on samples and its noise floor, modes captured and
high-quality samples (2-D points); sliced Wasserstein distance and diversity (images).
"""
from __future__ import annotations

import numpy as np
import ot
import torch

from explorer.distances import check_converged

FLOOR_PAIRS = 8          # pairs of real samples whose mean W1 is the noise floor
NUM_ITER_MAX = 10_000_000  # network-simplex iterations for exact OT (POT's 100k default can stop early)


def _as_points(x, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = a.astype(np.float64, copy=False)
    if a.ndim != 2 or len(a) == 0:
        raise ValueError(f"{name} must be a non-empty (n, d) array of points; got shape {a.shape}.")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite coordinates.")
    return a


def w1_exact(a, b) -> float:
    """Exact W1 between two point clouds with uniform weights (POT network simplex).

    W1 = min_{P in U(1/n, 1/m)} sum_ij P_ij ||a_i - b_j||_2  (Euclidean ground cost, not squared).
    a: (n, d), b: (m, d). Example: b = a + (3, 4) gives W1 = 5.
    """
    a, b = _as_points(a, "a"), _as_points(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Both point sets need the same dimension; got {a.shape[1]} and {b.shape[1]}.")
    cost = ot.dist(a, b, metric="euclidean")
    value, log = ot.emd2(ot.unif(len(a)), ot.unif(len(b)), cost, numItermax=NUM_ITER_MAX, log=True)
    check_converged(log, "W1")   # never an early stop shown as exact
    return float(value)


_NAMED_FLOORS: dict[tuple, dict] = {}   # (dataset, spread) -> {(n, seed, pairs): floor}


def w1_floor(source, n: int, seed: int = 0, pairs: int | None = None) -> float:
    """Noise floor: the mean W1 between two independent real samples of size n, over `pairs` pairs
    (FLOOR_PAIRS unless given). It is a property of the distribution and n: cached for the process
    for a named source (every run of a sweep on one dataset shares it), on the source for points.

    A generator whose W1 to real data is near this floor is as close as n samples can tell. One pair
    alone is a poor yardstick: on 8 Gaussians at n = 1,000 its W1 scatters by a quarter of its mean
    (0.047 to 0.138 over 40 pairs, mean 0.088), so a ratio to it said as much about that pair's luck as
    about the generator. The mean of 8 pairs scatters by about 9%.
    """
    pairs = FLOOR_PAIRS if pairs is None else int(pairs)
    if pairs < 1:
        raise ValueError(f"The noise floor needs at least one pair of samples; got {pairs}.")
    key = (int(n), int(seed), pairs)
    cache = source.floor_cache if source.points is not None else _NAMED_FLOORS.setdefault(
        (source.name, source.spread), {})
    if key not in cache:
        g = torch.Generator().manual_seed(seed)
        cache[key] = float(np.mean([w1_exact(source.sample(n, g), source.sample(n, g)) for _ in range(pairs)]))
    return cache[key]


def mode_stats(samples, centres, std: float) -> tuple[int, float]:
    """(modes captured, fraction of high-quality samples), as in VEEGAN / PacGAN.

    A sample is high quality when its nearest centre lies within 3 std; a mode is captured when
    it is the nearest centre of at least one high-quality sample.
    """
    x = _as_points(samples, "samples")
    c = _as_points(centres, "centres")
    d = np.linalg.norm(x[:, None, :] - c[None, :, :], axis=2)  # (n, k)
    nearest = d.argmin(axis=1)
    hq = d[np.arange(len(x)), nearest] <= 3.0 * std
    return int(len(np.unique(nearest[hq]))), float(hq.mean())


# ----------------------------------------------------------------------------- images
SLICED_PROJECTIONS = 128   # random directions for the sliced Wasserstein distance
SLICED_SEED = 0            # fixed projections: successive values along a run are comparable


def sliced_w(a, b, n_projections: int = SLICED_PROJECTIONS, seed: int = SLICED_SEED) -> float:
    """Sliced Wasserstein-2 distance between two image sets (POT), images flattened to vectors.

    SW_2(a, b) = ( E_theta W_2^2(theta . a, theta . b) )^(1/2), theta uniform on the unit sphere,
    estimated with n_projections directions drawn from `seed`; in 1-D, W_2 sorts and matches.
    a: (n, ...) and b: (m, ...) arrays or tensors with the same per-sample shape. Pixels in [-1, 1].
    Example: sliced_w(x, x) == 0.
    """
    x, y = (_as_flat(t) for t in (a, b))
    if x.shape[1] != y.shape[1] or len(x) == 0 or len(y) == 0:
        raise ValueError(f"sliced_w needs two non-empty image sets of the same shape; got {x.shape}, {y.shape}.")
    return float(ot.sliced_wasserstein_distance(x, y, n_projections=n_projections, seed=seed))


def diversity(images) -> float:
    """Mean pairwise RMS distance of a batch: 2 / (n (n-1)) * sum_{i<j} ||x_i - x_j||_2 / sqrt(D).

    D = pixels per image. Drops towards 0 when the generator collapses to one picture. Needs n >= 2.
    Example: two images all -1 and all +1 are at distance 2.
    """
    x = torch.from_numpy(_as_flat(images))   # on the CPU: the snapshot's images are there already
    if len(x) < 2:
        raise ValueError("diversity needs at least two images.")
    return float(torch.pdist(x).mean() / np.sqrt(x.shape[1]))


def _as_flat(x) -> np.ndarray:
    a = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.dtype == np.uint8:
        a = a / 127.5 - 1.0
    return a.reshape(len(a), -1).astype(np.float64)
