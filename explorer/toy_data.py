"""2-D point sources for the toy GANs: 8 Gaussians, 25 Gaussians, swiss roll, ring, user points.

Every source draws with a caller's `torch.Generator`, so several trainers in one process stay
reproducible, and knows its mode centres and per-axis standard deviation where it has them
(for the mode / high-quality metrics).

    >>> src = make_source("8gaussians")
    >>> src.sample(4, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 2])
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from explorer.choices import TOY_DATASETS

# Default spread of each source (its noise scale before any rescaling).
DEFAULT_SPREAD = {"8gaussians": 0.1, "25gaussians": 0.05, "swissroll": 0.25, "ring": 0.05, "points": 0.0}

MAX_POINTS = 100_000  # an uploaded CSV may hold at most this many rows
MIN_POINTS = 10       # ... and at least this many: fewer cannot be told apart from noise
MAX_ABS = 1_000.0     # coordinates beyond this are almost surely a unit mistake
# What a CSV upload may be before a line is read: two 25-character numbers, a separator and a new
# line fit 64 bytes; one blank line between rows (and a header) at most.
MAX_CSV_BYTES = 64 * MAX_POINTS
MAX_CSV_LINES = 2 * MAX_POINTS + 1
MAX_LINE_CHARS = 200

# The lecture notes (and the WGAN-GP code) divide the 8-Gaussians batch by 1.414 ("stdev"):
# centres at radius 2 / 1.414 and per-axis std spread / 1.414.
_EIGHT_SCALE = 1.414
# The WGAN-GP paper divides its 25-Gaussians grid (step 2, centres -4..4) by 2.828.
_GRID_SCALE = 2.828
# The swiss roll is scaled down by 7.5 to fit the [-3, 3] box, as in the WGAN-GP toy code.
_ROLL_SCALE = 7.5


@dataclass
class ToySource:
    """A 2-D distribution to learn. `sample(n, generator)` -> (n, 2) float32 tensor.

    centres: (k, 2) mode centres or None; std: per-axis standard deviation of each mode or None;
    lim: half-width of the square box that shows the data (plots and critic field).
    """

    name: str
    spread: float
    centres: np.ndarray | None
    std: float | None
    lim: float = 3.0
    points: np.ndarray | None = None  # user points (name == "points")
    seed: int = 0
    _rng: torch.Generator | None = field(default=None, repr=False)
    _tensors: dict = field(default_factory=dict, repr=False)  # cached per-device constants
    floor_cache: dict = field(default_factory=dict, repr=False)  # (n, seed, pairs) -> W1 floor of points

    def _const(self, key: str, array: np.ndarray, device: torch.device) -> torch.Tensor:
        k = (key, str(device))
        if k not in self._tensors:
            self._tensors[k] = torch.as_tensor(array, dtype=torch.float32, device=device)
        return self._tensors[k]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n points on the generator's device (one torch call per random quantity)."""
        if generator is None:  # a private stream: the source's own seed
            if self._rng is None:
                self._rng = torch.Generator().manual_seed(self.seed)
            generator = self._rng
        g, dev = generator, generator.device
        if self.centres is not None:
            # mixture of isotropic Gaussians: pick a centre, add std * N(0, I)
            centres = self._const("centres", self.centres, dev)
            idx = torch.randint(len(centres), (n,), generator=g, device=dev)
            return centres[idx] + self.std * torch.randn(n, 2, generator=g, device=dev)
        if self.name == "swissroll":
            # t ~ 1.5 pi (1 + 2U); x = (t cos t, t sin t) + spread * N(0, I), then / 7.5
            t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, device=dev))
            xy = torch.stack((t * torch.cos(t), t * torch.sin(t)), dim=1)
            return (xy + self.spread * torch.randn(n, 2, generator=g, device=dev)) / _ROLL_SCALE
        if self.name == "ring":
            # angle ~ U(0, 2 pi) on the 8-Gaussians circle, plus spread * N(0, I)
            a = 2 * math.pi * torch.rand(n, generator=g, device=dev)
            r = 2.0 / _EIGHT_SCALE
            xy = torch.stack((r * torch.cos(a), r * torch.sin(a)), dim=1)
            return xy + self.spread * torch.randn(n, 2, generator=g, device=dev)
        # user points: resample rows with replacement, optionally jittered by spread
        pts = self._const("points", self.points, dev)
        idx = torch.randint(len(pts), (n,), generator=g, device=dev)
        out = pts[idx]
        return out + self.spread * torch.randn(n, 2, generator=g, device=dev) if self.spread > 0 else out


def eight_centres() -> np.ndarray:
    """The 8 centres on the circle of radius 2 (before the / 1.414 rescaling), 45 degrees apart."""
    angles = np.arange(8) * (np.pi / 4)
    return 2.0 * np.stack((np.cos(angles), np.sin(angles)), axis=1)


def make_source(name: str, spread: float | None = None, points: np.ndarray | None = None,
                seed: int = 0) -> ToySource:
    """Build a named source. spread=None uses the source's default (8 Gaussians: 0.1).

    8gaussians: centres 2 (cos k pi/4, sin k pi/4) / 1.414, std spread / 1.414.
    25gaussians: centres (2i, 2j) / 2.828 for i, j in -2..2, std spread / 2.828.
    swissroll, ring: no modes (centres None). points: the user's (n, 2) array, resampled.
    """
    if name not in TOY_DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {', '.join(TOY_DATASETS)}.")
    spread = DEFAULT_SPREAD[name] if spread is None else float(spread)
    if not (math.isfinite(spread) and 0 <= spread <= 10):
        raise ValueError(f"The spread must be a number between 0 and 10; got {spread}.")
    if name == "8gaussians":
        return ToySource(name, spread, eight_centres() / _EIGHT_SCALE, spread / _EIGHT_SCALE, seed=seed)
    if name == "25gaussians":
        grid = np.array([(2.0 * i, 2.0 * j) for i in range(-2, 3) for j in range(-2, 3)])
        return ToySource(name, spread, grid / _GRID_SCALE, spread / _GRID_SCALE, seed=seed)
    if name in ("swissroll", "ring"):
        return ToySource(name, spread, None, None, seed=seed)
    if points is None:
        raise ValueError("The 'points' dataset needs points: upload a CSV file of x,y rows.")
    pts = _check_points(np.asarray(points, dtype=np.float64))
    lim = max(3.0, float(np.ceil(1.1 * np.abs(pts).max())))
    return ToySource(name, spread, None, None, lim=lim, points=pts.astype(np.float32), seed=seed)


def _check_points(pts: np.ndarray) -> np.ndarray:
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"Points must be an (n, 2) array of x, y; got shape {pts.shape}.")
    if len(pts) < MIN_POINTS:
        raise ValueError(f"Need at least {MIN_POINTS} points to learn from; got {len(pts)}.")
    if len(pts) > MAX_POINTS:
        raise ValueError(f"At most {MAX_POINTS:,} points are accepted; got {len(pts):,}.")
    if not np.isfinite(pts).all():
        raise ValueError("Points must be finite numbers (no NaN or infinity).")
    if np.abs(pts).max() > MAX_ABS:
        raise ValueError(f"Coordinates must lie within +-{MAX_ABS:g}; rescale the data first.")
    return pts


def parse_points_csv(data: bytes | str) -> np.ndarray:
    """Parse "x,y" rows (header line optional, blank lines skipped) into an (n, 2) float array.

    Raises ValueError naming the first bad line: wrong column count, a non-number, NaN/inf,
    fewer than MIN_POINTS or more than MAX_POINTS rows.

    Cost bound: a file over MAX_CSV_BYTES (6.4 MB) or MAX_CSV_LINES lines is refused before a line is
    read, a line over MAX_LINE_CHARS before it is split; the largest accepted file takes about 0.3 s
    and 60 MB (tests/test_upload_bounds.py measures the bound, bench/upload_limits.py times it).

        >>> parse_points_csv("x,y\\n0,1\\n" + "2,3\\n" * 9).shape
        (10, 2)
    """
    if len(data) > MAX_CSV_BYTES:
        raise ValueError(f"The file is {len(data) / 1e6:.1f} MB; {MAX_POINTS:,} x,y rows fit in "
                         f"{MAX_CSV_BYTES / 1e6:g} MB.")
    lines = data.count(b"\n" if isinstance(data, bytes) else "\n")
    if lines > MAX_CSV_LINES:
        raise ValueError(f"The file has {lines:,} lines; at most {MAX_POINTS:,} rows of x,y are accepted.")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("The file is not UTF-8 text; save it as a plain CSV of x,y rows.") from None
    data = data.lstrip("\ufeff")  # a byte-order mark left by a plain utf-8 decode
    rows: list[tuple[float, float]] = []
    for lineno, line in enumerate(io.StringIO(data), start=1):
        line = line.strip()
        if not line:
            continue
        if len(line) > MAX_LINE_CHARS:
            raise ValueError(f"Line {lineno} is {len(line):,} characters long; a row is just two numbers, x,y.")
        cells = [c.strip() for c in line.replace(";", ",").replace("\t", ",").split(",")]
        if len(cells) != 2:
            raise ValueError(f"Line {lineno} has {len(cells)} columns; every row must be exactly x,y.")
        try:
            x, y = float(cells[0]), float(cells[1])
        except ValueError:
            if not rows and lineno == _first_line(data) and not any(map(_is_number, cells)):
                continue  # a header such as "x,y": words only, never a damaged data row
            raise ValueError(f"Line {lineno} is not two numbers: {line[:60]!r}.") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"Line {lineno} holds a non-finite value (NaN or infinity): {line[:60]!r}.")
        rows.append((x, y))
        if len(rows) > MAX_POINTS:
            raise ValueError(f"At most {MAX_POINTS:,} points are accepted; the file has more.")
    if len(rows) < MIN_POINTS:
        raise ValueError(f"Need at least {MIN_POINTS} x,y rows; the file has {len(rows)}.")
    return _check_points(np.array(rows, dtype=np.float64))


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _first_line(text: str) -> int:
    """Number of the first non-blank line (a header may only stand there)."""
    for lineno, line in enumerate(io.StringIO(text), start=1):
        if line.strip():
            return lineno
    return 0
