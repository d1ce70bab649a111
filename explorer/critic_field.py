"""The critic seen as a landscape: its values and gradient norms on a lattice, and its pull on points.

What the 2-D pages draw under the samples (the lecture notes' 128 x 128 picture), computed in small
chunks so no large temporaries are made.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from explorer.fast_mlp import forward, mlp_layers, score_chain

# Lattice points per critic forward/backward. A 128x128 lattice in one batch makes ~24 MB of short-lived
# activations per snapshot; the small arrays kept between snapshots then pin that freed heap, and RSS
# grew by ~1 GB per run. Chunks keep every temporary small (and cost no measurable speed).
FIELD_CHUNK = 2048


def lattice(lim: float, grid: int, device) -> torch.Tensor:
    """The grid x grid points of [-lim, lim]^2, row by row from the bottom: shape (grid * grid, 2)."""
    axis = torch.linspace(-lim, lim, grid, device=device)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")  # row i = y_i, column j = x_j
    return torch.stack((xx.reshape(-1), yy.reshape(-1)), dim=1)


def values_and_grads(critic: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) (n,) and grad_x f(x) (n, 2) in one forward/backward; no critic weight gradients.

    A plain ReLU MLP (the toy critics) takes the closed form of explorer/fast_mlp.py: the same
    products autograd computes, without its graph (a 64 x 64 lattice of the 2-D page's critic:
    7.6 ms against 12.0 ms on one CPU thread, the same values and gradients to the last bit there;
    tests/test_critic_field.py checks them against autograd). Anything else goes through autograd.
    """
    layers = mlp_layers(getattr(critic, "net", critic))
    if layers is not None and layers[-1].out_features == 1:
        with torch.no_grad():
            acts = forward(layers, x.detach())
            return acts[-1].reshape(-1), score_chain(layers, acts)[-1]
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = critic(x).reshape(-1)
        (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def lattice_field(critic: nn.Module, points: torch.Tensor, grid: int,
                  chunk: int = FIELD_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """f and ||grad f|| at the grid * grid points of lattice(), as two float32 (grid, grid) arrays."""
    vals, norms = np.empty(len(points), np.float32), np.empty(len(points), np.float32)
    for i in range(0, len(points), chunk):
        v, g = values_and_grads(critic, points[i:i + chunk])
        vals[i:i + chunk], norms[i:i + chunk] = v.cpu().numpy(), g.norm(dim=1).cpu().numpy()
    return vals.reshape(grid, grid), norms.reshape(grid, grid)


def critic_field(critic: nn.Module, lim: float = 3.0, grid: int = 128, device=None) -> tuple[np.ndarray, np.ndarray]:
    """Critic values and ||grad f|| on a grid x grid lattice over [-lim, lim]^2 (axis 0 = y).

    Forward and backward in chunks of FIELD_CHUNK points, so no large temporaries are made.
    """
    device = device or next(critic.parameters()).device
    return lattice_field(critic, lattice(lim, grid, device), grid)


def critic_push(critic: nn.Module, points) -> np.ndarray:
    """grad_x f at each point, (n, 2): the direction the generator loss -f(G(z)) moves a fake point."""
    device = next(critic.parameters()).device
    x = torch.as_tensor(np.asarray(points) if not isinstance(points, torch.Tensor) else points,
                        dtype=torch.float32, device=device)
    return values_and_grads(critic, x)[1].cpu().numpy()
