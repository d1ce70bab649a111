"""Measured quality of a GAN: exact W1 on samples, modes captured, high-quality %, critic fields.

Toy part (2-D points) first; the image section is appended at the end by the image-GAN owner.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import ot
import torch
from torch import nn

from explorer.distances import check_converged
from explorer.losses import interpolates

NUM_ITER_MAX = 10_000_000  # network-simplex iterations for exact OT (POT's 100k default can stop early)
# Lattice points per critic forward/backward. A 128x128 lattice in one batch makes ~24 MB of short-lived
# activations per snapshot; the small arrays kept between snapshots then pin that freed heap, and RSS
# grew by ~1 GB per run. Chunks keep every temporary small (and cost no measurable speed).
FIELD_CHUNK = 2048


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


def w1_floor(source, n: int, seed: int = 0) -> float:
    """Noise floor: W1 between two independent real samples of size n (cached on the source).

    A generator whose W1 to real data is near this floor is as close as n samples can tell.
    """
    key = (int(n), int(seed))
    if key not in source.floor_cache:
        g = torch.Generator().manual_seed(seed)
        source.floor_cache[key] = w1_exact(source.sample(n, g), source.sample(n, g))
    return source.floor_cache[key]


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


def _grid(lim: float, grid: int, device) -> torch.Tensor:
    axis = torch.linspace(-lim, lim, grid, device=device)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")  # row i = y_i, column j = x_j
    return torch.stack((xx.reshape(-1), yy.reshape(-1)), dim=1)


def _values_and_grads(critic: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) (n,) and grad_x f(x) (n, 2) in one forward/backward; no critic weight gradients."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = critic(x).reshape(-1)
        (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def _lattice_field(critic: nn.Module, lattice: torch.Tensor, grid: int,
                   chunk: int = FIELD_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """f and ||grad f|| at the grid * grid lattice points, as two float32 (grid, grid) arrays."""
    vals, norms = np.empty(len(lattice), np.float32), np.empty(len(lattice), np.float32)
    for i in range(0, len(lattice), chunk):
        v, g = _values_and_grads(critic, lattice[i:i + chunk])
        vals[i:i + chunk], norms[i:i + chunk] = v.cpu().numpy(), g.norm(dim=1).cpu().numpy()
    return vals.reshape(grid, grid), norms.reshape(grid, grid)


def critic_field(critic: nn.Module, lim: float = 3.0, grid: int = 128, device=None) -> tuple[np.ndarray, np.ndarray]:
    """Critic values and ||grad f|| on a grid x grid lattice over [-lim, lim]^2 (axis 0 = y).

    Forward and backward in chunks of FIELD_CHUNK points, so no large temporaries are made.
    """
    device = device or next(critic.parameters()).device
    return _lattice_field(critic, _grid(lim, grid, device), grid)


def critic_push(critic: nn.Module, points) -> np.ndarray:
    """grad_x f at each point, (n, 2): the direction the generator loss -f(G(z)) moves a fake point."""
    device = next(critic.parameters()).device
    x = torch.as_tensor(np.asarray(points) if not isinstance(points, torch.Tensor) else points,
                        dtype=torch.float32, device=device)
    return _values_and_grads(critic, x)[1].cpu().numpy()


@dataclass
class ToySnapshot:
    """What the 2-D page draws: plain NumPy arrays and floats (no tensors, no models)."""

    step: int
    real: np.ndarray             # (n, 2) real samples (fixed per trainer, so frames are comparable)
    fake: np.ndarray             # (n, 2) generated samples from fixed noise (points move smoothly)
    field: np.ndarray            # (grid, grid) critic values on [-lim, lim]^2, axis 0 = y
    grad_norm_field: np.ndarray  # (grid, grid) ||grad f|| on the same lattice
    push: np.ndarray             # (n, 2) grad f at the fake points
    lim: float                   # half-width of the box
    history: list                # trainer.history up to this step (a new list; records are shared)
    metrics: dict                # w1_exact, w1_floor, modes, n_modes, hq, w_est, gp_grad_norm_mean/std
    centres: np.ndarray | None = field(default=None)  # (k, 2) mode centres, if the source has them

    def as_frame(self) -> "ToySnapshot":
        """This snapshot without its history: what Session keeps per GIF frame (~130 KB, not MBs)."""
        return replace(self, history=[])


def toy_snapshot(trainer, source=None, n: int = 256, grid: int = 128) -> ToySnapshot:
    """Everything one frame needs: the critic's lattice in chunks, then one pass at 3n points.

    source: the run's data source (default trainer.source), so partial(toy_snapshot, grid=64) is a
    snapshot function that pickles (what a worker process needs).

    The real points and the noise are drawn once per trainer from a private generator, so taking
    snapshots never changes the training's random stream.
    """
    G, C, device = trainer.generator, trainer.critic, trainer.device
    source = trainer.source if source is None else source
    key = ("toy_snapshot", n)
    if key not in trainer.extras:
        g = torch.Generator().manual_seed(trainer.cfg.seed + 7919)
        real = source.sample(n, g).to(device)
        z = torch.randn(n, getattr(trainer.cfg, "noise_dim", 2), generator=g).to(device)
        eps_g = torch.Generator().manual_seed(trainer.cfg.seed + 104729)
        trainer.extras[key] = (real, z, eps_g.get_state())
    real, z, eps_state = trainer.extras[key]
    with torch.no_grad():
        fake = G(z)
    eps_g = torch.Generator().set_state(eps_state)
    x_hat = interpolates(real.cpu(), fake.cpu(), eps_g).to(device)
    field_vals, grad_norms = _lattice_field(C, _grid(source.lim, grid, device), grid)
    vals, grads = _values_and_grads(C, torch.cat((real, fake, x_hat)))
    f_real, f_fake = vals[:n], vals[n:2 * n]
    hat_norms = grads[2 * n:].norm(dim=1)
    real_np, fake_np = real.cpu().numpy(), fake.cpu().numpy()
    fake_ok = bool(np.isfinite(fake_np).all())
    metrics = {
        "w1_exact": w1_exact(fake_np, real_np) if fake_ok else float("nan"),
        "w1_floor": w1_floor(source, n, trainer.cfg.seed),
        "modes": None, "n_modes": None, "hq": None,
        "w_est": float(f_real.mean() - f_fake.mean()),
        "gp_grad_norm_mean": float(hat_norms.mean()), "gp_grad_norm_std": float(hat_norms.std()),
    }
    if source.centres is not None and fake_ok:
        metrics["modes"], metrics["hq"] = mode_stats(fake_np, source.centres, source.std)
        metrics["n_modes"] = len(source.centres)
    return ToySnapshot(
        step=trainer.step_count, real=real_np, fake=fake_np,
        field=field_vals, grad_norm_field=grad_norms,
        push=grads[n:2 * n].cpu().numpy(), lim=float(source.lim),
        # A shallow copy: trainers never change a record once appended, and copying 10,000 dicts
        # per snapshot cost ~10 MB of short-lived memory each time.
        history=list(trainer.history), metrics=metrics,
        centres=None if source.centres is None else np.array(source.centres),
    )


# ============================================================================ image metrics
# (sliced W and friends: appended below by the image-GAN owner)


# --- sliced W and diversity (images) ---
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
    x = torch.as_tensor(_as_flat(images))
    if len(x) < 2:
        raise ValueError("diversity needs at least two images.")
    return float(torch.pdist(x).mean() / np.sqrt(x.shape[1]))


def _as_flat(x) -> np.ndarray:
    a = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.dtype == np.uint8:
        a = a / 127.5 - 1.0
    return a.reshape(len(a), -1).astype(np.float64)
