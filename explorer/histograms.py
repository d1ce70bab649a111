"""Histograms for the Histograms page: presets, generators, shifting, parsing and plan summaries.

Pure NumPy; the page only lays these out. Bins sit at integer positions (unit spacing), so EMD
with the |x-y| ground distance is measured in bins.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.special import ndtr

from explorer.distances import check_masses, ground_matrix, summary

MAX_BINS = 1000
MAX_TEXT_CHARS = 64 * MAX_BINS   # pasted text: MAX_BINS numbers of up to 63 characters, each with a separator


# ----------------------------------------------------------------------------- generators
def gaussian_mixture(n: int, means: Sequence[float], widths: Sequence[float],
                     weights: Sequence[float]) -> np.ndarray:
    """Mass of each of n unit bins under sum_k w_k N(mu_k, sigma_k^2) (normalized to sum 1).

    Bin i covers [i - 1/2, i + 1/2]; its mass is sum_k w_k (Phi((i+1/2-mu_k)/sigma_k) - Phi((i-1/2-mu_k)/sigma_k)).
    >>> gaussian_mixture(3, [1.0], [0.01], [1.0]).round(6)
    array([0., 1., 0.])
    """
    _check_bins(n)
    if not (len(means) == len(widths) == len(weights)) or len(means) == 0:
        raise ValueError("Give one mean, one width and one weight per Gaussian component.")
    if any(not (math.isfinite(w) and w > 0) for w in widths):
        raise ValueError("Every Gaussian width must be a number > 0 (in bins).")
    if any(not (math.isfinite(w) and w >= 0) for w in weights) or sum(weights) <= 0:
        raise ValueError("Gaussian weights must be >= 0 and not all zero.")
    edges = np.arange(n + 1) - 0.5
    mass = np.zeros(n)
    for mu, sigma, w in zip(means, widths, weights):
        z = (edges - mu) / sigma
        # Right of the mean use the upper tail, Phi(-z_lo) - Phi(-z_hi): differences of values near 1
        # would round far-tail bins to exactly 0 (and make KL infinite for no reason).
        mass += w * np.where(z[:-1] > 0, ndtr(-z[:-1]) - ndtr(-z[1:]), ndtr(z[1:]) - ndtr(z[:-1]))
    if not mass.sum() > 0:
        raise ValueError(f"The mixture puts no mass on bins 0..{n - 1}: move a mean inside that range.")
    return mass / mass.sum()


def uniform(n: int, lo: int, hi: int) -> np.ndarray:
    """Equal mass on bins lo..hi (inclusive), zero elsewhere.
    >>> uniform(4, 1, 2)
    array([0. , 0.5, 0.5, 0. ])
    """
    _check_bins(n)
    if not 0 <= lo <= hi < n:
        raise ValueError(f"The uniform range must satisfy 0 <= from <= to <= {n - 1}; got {lo}..{hi}.")
    mass = np.zeros(n)
    mass[lo:hi + 1] = 1.0
    return mass / mass.sum()


def spikes(n: int, positions: Sequence[int], masses: Sequence[float]) -> np.ndarray:
    """Point masses at the given bins (normalized to sum 1); repeated bins add up.
    >>> spikes(4, [0, 3], [1, 3])
    array([0.25, 0.  , 0.  , 0.75])
    """
    _check_bins(n)
    if len(positions) != len(masses) or not positions:
        raise ValueError("Give one mass per spike position.")
    if any(not 0 <= int(i) < n for i in positions):
        raise ValueError(f"Spike positions must be bins between 0 and {n - 1}.")
    mass = np.zeros(n)
    np.add.at(mass, np.asarray(positions, dtype=int), np.asarray(masses, dtype=float))
    return check_masses(mass, "The spikes") / mass.sum()


def _check_bins(n: int) -> None:
    if not 2 <= n <= MAX_BINS:
        raise ValueError(f"The number of bins must be between 2 and {MAX_BINS}; got {n}.")


# ----------------------------------------------------------------------------- presets
PRESETS: dict[str, str] = {
    "Two bumps": "Two Gaussian bumps of different widths on 80 bins: slide Q and watch the numbers.",
    "Textbook: three bins": "P uniform on three bins, Q = (0.2, 0.5, 0.3): the worked example of the notes.",
    "Rubner 1: spikes moved one bin": "Rubner's grey-level signatures h1, k1: half the mass in a spike at "
        "each end (bins 1 and 13); Q is P moved one bin right. Looks the same to a person, yet the supports "
        "are disjoint: TV = 1, EMD = 1 bin.",
    "Rubner 2: one spike moved far": "Rubner's h2, k2: the same P; in Q the right spike moved all the way "
        "to the left one. Looks very different, yet TV is only 0.5; EMD = 6 bins says 'far'.",
    "Disjoint supports": "Two uniform blocks that do not overlap: TV = 1, JS = log 2, KL infinite; "
        "only EMD says how far apart they are.",
    "Identical": "The same mixture twice: every distance is zero.",
    "Large: 1000 bins": "Two three-component mixtures on 1000 bins (the plan heatmap is aggregated).",
}
# Each preset as the page's generators make it, so that their fields show the preset in use:
# (bins, P's spec, Q's spec); a spec is ("mixture", ((mean, width, weight), ...)) with weights in
# [0, 1] (they are normalized), ("uniform", (from, to)) or ("spikes", "bin:mass, ...").
PRESET_SPECS: dict[str, tuple] = {
    "Two bumps": (80, ("mixture", ((25, 3, 1),)), ("mixture", ((35, 6, 1),))),
    "Textbook: three bins": (3, ("uniform", (0, 2)), ("spikes", "0:0.2, 1:0.5, 2:0.3")),
    "Rubner 1: spikes moved one bin": (16, ("spikes", "1:1, 13:1"), ("spikes", "2:1, 14:1")),
    "Rubner 2: one spike moved far": (16, ("spikes", "1:1, 13:1"), ("spikes", "1:1")),
    "Disjoint supports": (40, ("uniform", (3, 12)), ("uniform", (25, 34))),
    "Identical": (60, ("mixture", ((15, 4, 0.5), (40, 6, 1))), ("mixture", ((15, 4, 0.5), (40, 6, 1)))),
    "Large: 1000 bins": (1000, ("mixture", ((150, 30, 0.5), (400, 60, 1), (700, 20, 0.5))),
                         ("mixture", ((250, 50, 1), (600, 40, 0.5), (850, 30, 0.5)))),
}


def from_spec(bins: int, spec: tuple) -> np.ndarray:
    """The histogram a generator spec (see PRESET_SPECS) makes on `bins` bins.

    >>> from_spec(4, ("spikes", "0:1, 3:3"))
    array([0.25, 0.  , 0.  , 0.75])
    """
    kind, args = spec
    if kind == "mixture":
        return gaussian_mixture(bins, *zip(*args))
    if kind == "uniform":
        return uniform(bins, *args)
    if kind == "spikes":
        return spikes(bins, *parse_spikes(args))
    raise ValueError(f"Unknown generator {kind!r}: choose mixture, uniform or spikes.")


def preset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(P, Q) of the named preset (see PRESETS), both normalized."""
    if name not in PRESET_SPECS:
        raise ValueError(f"Unknown preset {name!r}: choose one of {', '.join(PRESETS)}.")
    bins, p, q = PRESET_SPECS[name]
    return from_spec(bins, p), from_spec(bins, q)


def cut_tails(h: np.ndarray, share: float) -> tuple[np.ndarray, float]:
    """(h with every bin below share * total set to 0, renormalized; the mass removed, as a share).

    Gaussian tails put ~1e-16 of mass in far bins; KL is infinite wherever one histogram has such a
    speck and the other none. Cutting them shows that the jump is real, and about invisible mass.
    >>> cut_tails(np.array([1e-12, 0.5, 0.5]), 1e-9)[1] < 1e-11
    True
    """
    h = np.asarray(h, dtype=np.float64)
    total = h.sum()
    cut = h < share * total
    kept = np.where(cut, 0.0, h)
    if not kept.any():
        return h / total, 0.0
    return kept / kept.sum(), float(h[cut].sum() / total)


def mass_where_missing(p: np.ndarray, q: np.ndarray) -> float:
    """The share of P's mass on bins where Q is 0: what makes KL(P || Q) infinite."""
    p = np.asarray(p, dtype=np.float64)
    return float(p[np.asarray(q) == 0].sum() / p.sum())


# ----------------------------------------------------------------------------- table / text input
def parse_column(values: Sequence, name: str) -> np.ndarray:
    """Bin masses from a table column or pasted text (cells may be None, '', text or numbers).

    Raises ValueError naming the first bad cell; then checks masses (negative, NaN, all zero).
    """
    if len(values) < 2 or len(values) > MAX_BINS:
        raise ValueError(f"{name} needs between 2 and {MAX_BINS} bins; got {len(values):,}.")
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v)):
            raise ValueError(f"{name}, bin {i} is empty: type a number (0 for no mass).")
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}, bin {i} is {str(v)[:40]!r}, which is not a number.") from None
    return check_masses(out, name)


def parse_text(text: str, name: str) -> np.ndarray:
    """Bin masses from text such as "0.2, 0.5, 0.3" (commas, spaces, semicolons or new lines).

    Cost bound: text over MAX_TEXT_CHARS (64,000 characters) is refused before it is split, so at
    most that many cells are made (well under 1 MB, about a millisecond); then parse_column's MAX_BINS.
    """
    _check_text(text, name)
    cells = [c for c in text.replace(";", ",").replace("\n", ",").replace(" ", ",").split(",") if c]
    if not cells:
        raise ValueError(f"{name} is empty: paste numbers separated by commas, such as 0.2, 0.5, 0.3.")
    return parse_column(cells, name)


def _check_text(text: str, name: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{name} is {len(text):,} characters long; at most {MAX_TEXT_CHARS:,} are read "
                         f"({MAX_BINS} numbers).")



# ----------------------------------------------------------------------------- shifting
def shifted(p: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, Q moved k bins right, positions) on an axis widened by |k| bins, so no mass falls off.

    P keeps bins 0..n-1; Q occupies k..n-1+k; positions run from min(0, k) to n-1+max(0, k).
    >>> shifted(np.array([1.0, 0.0]), np.array([0.0, 1.0]), 1)
    (array([1., 0., 0.]), array([0., 0., 1.]), array([0., 1., 2.]))
    """
    n, pad = len(p), abs(k)
    zeros = np.zeros(pad)
    if k >= 0:
        return np.concatenate([p, zeros]), np.concatenate([zeros, q]), np.arange(n + pad, dtype=float)
    return np.concatenate([zeros, p]), np.concatenate([q, zeros]), np.arange(k, n, dtype=float)


def sweep_shifts(n: int, max_points: int) -> np.ndarray:
    """At most max_points integer shifts from -n to n, always including 0 and both ends."""
    ks = np.unique(np.round(np.linspace(-n, n, min(2 * n + 1, max_points))).astype(int))
    return np.union1d(ks, [0])


def shift_sweep(p: np.ndarray, q: np.ndarray, ks: Sequence[int], base: float = math.e,
                ground: str = "abs", alpha: float = 1.0) -> list[dict]:
    """summary() of P against Q shifted by each k (one record per k, with key "k")."""
    rows = []
    for k in ks:
        a, b, x = shifted(p, q, int(k))
        rows.append({"k": int(k), **summary(a, b, base=base, ground=ground, alpha=alpha, positions=x)})
    return rows


# ----------------------------------------------------------------------------- the plan, for display
def top_moves(plan: np.ndarray, positions: np.ndarray, ground: str = "abs", alpha: float = 1.0,
              limit: int = 15) -> tuple[list[dict], float]:
    """The `limit` costliest moves of a plan, and the share of the total cost they make up.

    Each row: from (bin of P), to (bin of Q), mass, distance |x_i - x_j|, cost = mass * d(x_i, x_j).
    """
    i, j = np.nonzero(plan)
    mass = plan[i, j]
    dist = np.abs(positions[i] - positions[j])
    cost = mass * ground_matrix(np.zeros(1), dist, ground, alpha)[0]
    order = np.lexsort((-mass, -cost))[:limit]   # costliest first; ties (e.g. zero cost) by mass
    rows = [{"from": _label(positions[i[t]]), "to": _label(positions[j[t]]), "mass": float(mass[t]),
             "distance": float(dist[t]), "cost": float(cost[t])} for t in order]
    total = float(cost.sum())
    share = float(cost[order].sum() / total) if total > 0 else 1.0
    return rows, share


def _label(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def aggregate_plan(plan: np.ndarray, max_cells: int = 100) -> tuple[np.ndarray, int]:
    """Sum the plan over square blocks so it has at most max_cells rows and columns.

    Returns (block sums, block size in bins); block size 1 means no aggregation. Mass is kept:
    the blocks sum to the same total as the plan.
    """
    n, m = plan.shape
    size = max(1, math.ceil(max(n, m) / max_cells))
    if size == 1:
        return plan, 1
    rows, cols = math.ceil(n / size), math.ceil(m / size)
    padded = np.zeros((rows * size, cols * size))
    padded[:n, :m] = plan
    return padded.reshape(rows, size, cols, size).sum(axis=(1, 3)), size


NEGLIGIBLE = 1e-9   # flows below this share of the total mass are not drawn (Gaussian-tail dust)


def visible_plan(plan: np.ndarray, negligible: float = NEGLIGIBLE) -> tuple[np.ndarray, int]:
    """The plan with every flow F_ij < negligible * sum(F) set to 0, and how many flows that hid.

    An exact solver also moves the 1e-20 tails of two Gaussians, often the whole way across the
    axis; drawn at full length such a flow looks as important as the bulk. Numbers use the full plan.
    """
    plan = np.asarray(plan, dtype=float)
    tiny = (plan > 0) & (plan < negligible * plan.sum())
    return np.where(tiny, 0.0, plan), int(np.count_nonzero(tiny))


def largest_flows(plan: np.ndarray, positions: np.ndarray, limit: int = 150) -> list[dict]:
    """The `limit` largest flows (from, to, mass), for drawing bands between P's and Q's bars."""
    i, j = np.nonzero(plan)
    order = np.argsort(-plan[i, j], kind="stable")[:limit]
    return [{"from": float(positions[i[t]]), "to": float(positions[j[t]]), "mass": float(plan[i[t], j[t]])}
            for t in order]


# ----------------------------------------------------------------------------- notes for the page
def parse_spikes(text: str) -> tuple[list[int], list[float]]:
    """Spikes written as "bin:mass, bin:mass" (e.g. "10:1, 30:2"); a bare "bin" has mass 1.
    Text over MAX_TEXT_CHARS is refused before it is split."""
    _check_text(text, "The spikes")
    positions, masses = [], []
    for part in (s.strip() for s in text.replace(";", ",").split(",")):
        if not part:
            continue
        where, _, how_much = part.partition(":")
        try:
            positions.append(int(where))
            masses.append(float(how_much) if how_much.strip() else 1.0)
        except ValueError:
            raise ValueError(f"Spikes are written as bin:mass, such as 10:1, 30:2; could not read {part!r}.") from None
    if not positions:
        raise ValueError("Give at least one spike, such as 10:1.")
    return positions, masses


def kl_infinite_at(p: np.ndarray, q: np.ndarray) -> int | None:
    """First bin where q is 0 but p is not (the reason KL(P||Q) is infinite), or None."""
    where = np.flatnonzero((np.asarray(q) == 0) & (np.asarray(p) > 0))
    return int(where[0]) if where.size else None


def notes_forms(p: np.ndarray, q: np.ndarray) -> dict:
    """What the lecture notes' non-standard formulas would give, to show next to the standard ones:
    TV as the max over single bins, max_i |p_i - q_i|, on normalized P and Q."""
    a, b = check_masses(p, "P"), check_masses(q, "Q")
    return {"tv_max_bin": float(np.max(np.abs(a / a.sum() - b / b.sum())))}
