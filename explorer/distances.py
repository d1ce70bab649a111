"""Distances between two histograms: TV, KL, JS and the exact Earth Mover's Distance.

Every function takes 1-D array-likes of bin masses, checks them at the boundary (ValueError with
a plain sentence) and normalizes them to sum 1, except `rubner_emd`, which is about unequal mass.
Logs are natural (nats) unless `base` says otherwise (base=2 gives bits).

EMD is solved exactly with POT: its 1-D solver for the convex ground costs |x-y| and (x-y)^2
(where the monotone "sorted" plan is optimal), its network simplex for Rubner's saturating
1 - exp(-alpha |x-y|), and its partial OT for unequal total mass.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import ot
import ot.partial

from explorer.choices import GROUNDS

ArrayLike = Sequence[float] | np.ndarray

# The network simplex stops after this many pivots; POT's default (1e5) is too few for 1000 bins.
_MAX_ITER = 50_000_000


class NotConverged(RuntimeError):
    """An exact optimal-transport solve stopped before the optimum: its value is not exact."""


def check_converged(log: dict, what: str) -> None:
    """Raise NotConverged if POT's log of a network-simplex solve says it stopped early.

    POT only warns (and returns the plan it has) when it runs out of iterations; a number called
    exact must not come from such a plan."""
    if log.get("warning"):
        raise NotConverged(f"The exact solver for {what} stopped before the optimum ({log['warning']}); "
                           "the value would not be exact.")


# ----------------------------------------------------------------------------- validation
def _masses(values: ArrayLike, name: str) -> np.ndarray:
    """Return `values` as a float64 vector of non-negative, finite masses, not all zero."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must contain only numbers.") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat list of bin masses, got an array of shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: give at least one bin.")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name} has {arr[bad[0]]} at bin {bad[0]}: every bin mass must be a finite number.")
    bad = np.flatnonzero(arr < 0)
    if bad.size:
        raise ValueError(f"{name} has a negative mass ({arr[bad[0]]:g}) at bin {bad[0]}: masses must be >= 0.")
    with np.errstate(over="ignore"):
        total = arr.sum()
    if not total > 0:
        raise ValueError(f"{name} is all zero: a histogram needs some mass to normalize.")
    if not np.isfinite(total):
        raise ValueError(f"{name} sums to more than the largest float: scale its masses down.")
    return arr


def check_masses(values: ArrayLike, name: str = "P") -> np.ndarray:
    """`values` as a float64 vector of bin masses (not normalized), or ValueError with a sentence
    naming `name` and the first bad bin (negative, NaN/inf, empty, all zero, not numbers)."""
    return _masses(values, name)


def _pair(p: ArrayLike, q: ArrayLike, names: tuple[str, str] = ("P", "Q"),
          normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    a, b = _masses(p, names[0]), _masses(q, names[1])
    if a.size != b.size:
        raise ValueError(f"{names[0]} and {names[1]} must have the same length (number of bins); "
                         f"got {a.size} and {b.size}.")
    if normalize:
        a, b = a / a.sum(), b / b.sum()
    return a, b


def _log_base(base: float) -> float:
    if not (isinstance(base, (int, float)) and math.isfinite(base) and base > 0 and base != 1):
        raise ValueError(f"The log base must be a positive number other than 1 (e or 2); got {base!r}.")
    return math.log(base)


def _positions(positions: ArrayLike | None, n: int, of: str = "the histograms") -> np.ndarray:
    if positions is None:
        return np.arange(n, dtype=np.float64)
    try:
        x = np.asarray(positions, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("Bin positions must contain only numbers.") from None
    if x.ndim != 1 or x.size != n:
        raise ValueError(f"Bin positions must have the same length as {of} ({n}); got {x.size}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("Bin positions contain NaN or infinity: every position must be a finite number.")
    return x


def _check_ground(ground: str, alpha: float) -> None:
    if ground not in GROUNDS:
        raise ValueError(f"Unknown ground distance {ground!r}: choose one of {', '.join(GROUNDS)}.")
    if ground != "saturated":
        return
    number = isinstance(alpha, (int, float, np.integer, np.floating)) and not isinstance(alpha, bool)
    if not (number and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha of the saturated ground distance must be a finite number > 0; got {alpha!r}.")


def ground_matrix(x: np.ndarray, y: np.ndarray, ground: str = "abs", alpha: float = 1.0) -> np.ndarray:
    """Cost of moving unit mass from x_i to y_j, shape (len(x), len(y)).

    abs: |x - y|    sq: (x - y)^2    saturated: 1 - exp(-alpha |x - y|)  (Rubner et al. 2000)
    >>> ground_matrix(np.array([0.0]), np.array([0.0, 2.0]))
    array([[0., 2.]])
    """
    _check_ground(ground, alpha)
    d = np.abs(np.asarray(x, dtype=np.float64)[:, None] - np.asarray(y, dtype=np.float64)[None, :])
    return _ground(d, ground, alpha)


def _ground(d: np.ndarray, ground: str, alpha: float) -> np.ndarray:
    """The ground cost as a function of the distance d = |x - y| (elementwise)."""
    if ground == "sq":
        return d * d
    if ground == "saturated":
        return -np.expm1(-alpha * d)   # 1 - exp(-a d), accurate for small a d
    return d


# ----------------------------------------------------------------------------- divergences
def tv(p: ArrayLike, q: ArrayLike) -> float:
    """Total variation distance: TV(P, Q) = 1/2 * sum_i |p_i - q_i| = sup over sets A of |P(A) - Q(A)|.

    In [0, 1]; 1 exactly when the supports are disjoint. (Not the max over single bins.)
    >>> tv([1, 0], [0, 1])
    1.0
    """
    a, b = _pair(p, q)
    return float(0.5 * np.abs(a - b).sum())


def _kl(a: np.ndarray, b: np.ndarray) -> float:
    """KL in nats on validated, normalized vectors (0 log 0 = 0; inf where b_i = 0 < a_i)."""
    on = a > 0
    if np.any(b[on] == 0):
        return math.inf
    return float(max(0.0, np.sum(a[on] * np.log(a[on] / b[on]))))   # clamp rounding below 0


def kl(p: ArrayLike, q: ArrayLike, base: float = math.e) -> float:
    """Kullback-Leibler divergence KL(P || Q) = sum_i p_i log(p_i / q_i), in log `base`.

    Terms with p_i = 0 count 0 (0 log 0 = 0). It is `math.inf` as soon as some q_i = 0 < p_i:
    Q says an outcome is impossible that P produces. Not symmetric.
    >>> kl([0.5, 0.5], [0.5, 0.5])
    0.0
    """
    a, b = _pair(p, q)
    return _kl(a, b) / _log_base(base)


def js(p: ArrayLike, q: ArrayLike, base: float = math.e) -> float:
    """Jensen-Shannon divergence JS(P, Q) = 1/2 KL(P || M) + 1/2 KL(Q || M), M = (P + Q) / 2.

    Symmetric, always finite, at most log(2) (= 1 bit), reached for disjoint supports.
    sqrt(JS) is a metric (the JS distance). Some notes drop the 1/2; that version reaches 2 log 2.
    >>> round(js([1, 0], [0, 1], base=2), 12)
    1.0
    """
    a, b = _pair(p, q)
    return _js(a, b) / _log_base(base)


def _js(a: np.ndarray, b: np.ndarray) -> float:
    """JS in nats, with m = (a + b)/2 and t = (a - b)/(a + b): log(a/m) = log1p(t), log(b/m) = log1p(-t).

    log1p keeps nearly equal bins accurate (plain logs leave ~1e-17 of noise, whose square root
    would show as a JS distance of ~1e-8 between identical histograms); where |t| is not small,
    plain logs are used, because t rounds to +-1 when one mass is tiny next to the other."""
    s = a + b
    on = s > 0
    a, b, s = a[on], b[on], s[on]
    t = (a - b) / s
    small = np.abs(t) < 0.5
    with np.errstate(divide="ignore"):   # log(0) terms are multiplied by a zero mass below
        log_a = np.where(small, np.log1p(t), np.log(2 * a / s))
        log_b = np.where(small, np.log1p(-t), np.log(2 * b / s))
    total = np.sum(a[a > 0] * log_a[a > 0]) + np.sum(b[b > 0] * log_b[b > 0])
    return min(math.log(2.0), max(0.0, 0.5 * float(total)))   # clamp rounding into [0, log 2]


# ----------------------------------------------------------------------------- optimal transport
def _transport(a: np.ndarray, b: np.ndarray, x: np.ndarray, ground: str,
               alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal plan between masses a, b of equal total at positions x, as its non-zero entries
    (rows i, columns j, masses f): a vertex solution has at most 2n - 1 of them, so no dense n x n.

    Zero-mass bins are dropped before solving (no flow can touch them), which keeps shifted,
    zero-padded histograms cheap.
    """
    ia, ib = np.flatnonzero(a), np.flatnonzero(b)
    if ground in ("abs", "sq"):
        # Convex cost of x - y: the monotone (quantile) coupling is optimal, O(n log n).
        metric = "cityblock" if ground == "abs" else "sqeuclidean"
        sub = ot.emd_1d(x[ia], x[ib], a[ia], b[ib], metric=metric, dense=False, check_marginals=False)
        r, c, f = sub.row, sub.col, sub.data
    else:
        dense, log = ot.emd(a[ia], b[ib], ground_matrix(x[ia], x[ib], ground, alpha),
                            numItermax=_MAX_ITER, check_marginals=False, log=True)
        check_converged(log, "the EMD")
        r, c = np.nonzero(dense)
        f = dense[r, c]
    keep = f > 0
    return ia[r[keep]], ib[c[keep]], f[keep]


def _cost(i: np.ndarray, j: np.ndarray, f: np.ndarray, x: np.ndarray, ground: str, alpha: float) -> float:
    return float(np.sum(f * _ground(np.abs(x[i] - x[j]), ground, alpha)))


def emd_plan(p: ArrayLike, q: ArrayLike, positions: ArrayLike | None = None,
             ground: str = "abs", alpha: float = 1.0) -> np.ndarray:
    """Optimal flow matrix F (n x n) of the EMD between normalized P and Q.

    F minimizes sum_ij F_ij d(x_i, x_j) subject to F >= 0, sum_j F_ij = p_i, sum_i F_ij = q_j.
    F_ij is the mass moved from bin i of P to bin j of Q.
    >>> emd_plan([1, 0], [0, 1])
    array([[0., 1.],
           [0., 0.]])
    """
    a, b = _pair(p, q)
    _check_ground(ground, alpha)
    i, j, f = _transport(a, b, _positions(positions, a.size), ground, alpha)
    plan = np.zeros((a.size, b.size))
    np.add.at(plan, (i, j), f)
    return plan


def emd(p: ArrayLike, q: ArrayLike, positions: ArrayLike | None = None,
        ground: str = "abs", alpha: float = 1.0) -> float:
    """Exact Earth Mover's Distance EMD(P, Q) = min_F sum_ij F_ij d(x_i, x_j) (see emd_plan).

    Positions x default to the bin indices 0, 1, ..., n-1. Ground distance d:
    "abs" |x-y| gives W1; "sq" (x-y)^2 gives W2 squared (not W2); "saturated" 1 - exp(-alpha|x-y|).
    >>> emd([1, 0, 0], [0, 0, 1])
    2.0
    """
    a, b = _pair(p, q)
    _check_ground(ground, alpha)
    x = _positions(positions, a.size)
    return _cost(*_transport(a, b, x, ground, alpha), x, ground, alpha)


def rubner_emd(g: ArrayLike, h: ArrayLike, positions: ArrayLike | None = None,
               ground: str = "abs", alpha: float = 1.0, positions_h: ArrayLike | None = None) -> float:
    """Rubner's EMD between two signatures: masses at positions, of any sizes and unequal totals.

    EMD(g, h) = min_F sum_ij F_ij d(x_i, y_j) / sum_ij F_ij, with F >= 0, sum_j F_ij <= g_i,
    sum_i F_ij <= h_j and total flow sum_ij F_ij = min(sum g, sum h): the lighter signature is
    matched completely, the surplus of the heavier one stays put. Solved by POT's partial OT.
    g sits at `positions` (default 0, 1, ..., len(g) - 1), h at `positions_h` (default: `positions`
    when g and h have the same size, else 0, 1, ..., len(h) - 1).
    >>> rubner_emd([1, 1, 0, 0], [0, 0, 0, 0.5])   # half a unit moves from bin 1 to bin 3
    2.0
    >>> round(rubner_emd([.5, 0, .3, .2], [0, .4, .1]), 12)   # 4 bins against 3: .4 moves by 1, .1 stays
    0.8
    """
    a, b = _masses(g, "g"), _masses(h, "h")
    _check_ground(ground, alpha)
    x = _positions(positions, a.size, "g")
    if positions_h is None:
        y = x if (positions is not None and a.size == b.size) else _positions(None, b.size)
    else:
        y = _positions(positions_h, b.size, "h")
    flow = min(a.sum(), b.sum())
    ia, ib = np.flatnonzero(a), np.flatnonzero(b)
    cost = ground_matrix(x[ia], y[ib], ground, alpha)
    try:
        plan, log = ot.partial.partial_wasserstein(a[ia], b[ib], cost, m=flow, numItermax=_MAX_ITER, log=True)
    except ValueError:   # POT's way of saying its network simplex stopped early
        raise NotConverged("The exact solver for Rubner's EMD stopped before the optimum; "
                           "the value would not be exact.") from None
    check_converged(log, "Rubner's EMD")
    return float(np.sum(plan * cost) / flow)


# ----------------------------------------------------------------------------- all at once
def summary(p: ArrayLike, q: ArrayLike, base: float = math.e, ground: str = "abs",
            alpha: float = 1.0, positions: ArrayLike | None = None) -> dict:
    """Every distance at once (validates and normalizes once), as plain floats.

    Keys: tv, kl_pq = KL(P||Q), kl_qp = KL(Q||P), js, js_distance = sqrt(js), emd.
    KL and JS are in log `base` (e: nats, 2: bits); KL may be math.inf.
    """
    a, b = _pair(p, q)
    _check_ground(ground, alpha)
    ln_base = _log_base(base)
    x = _positions(positions, a.size)
    js_value = _js(a, b) / ln_base
    return {
        "tv": float(0.5 * np.abs(a - b).sum()),
        "kl_pq": _kl(a, b) / ln_base,
        "kl_qp": _kl(b, a) / ln_base,
        "js": js_value,
        "js_distance": math.sqrt(js_value),
        "emd": _cost(*_transport(a, b, x, ground, alpha), x, ground, alpha),
    }
