"""A critic's Lipschitz health: does its constraint hold, and if not, why (WGAN-GP paper, section 3).

A WGAN's critic must be 1-Lipschitz. Weight clipping makes it Lipschitz with some other constant
and, in a deep critic, makes the gradients explode or vanish exponentially with depth (the paper's
Figure 1b) while the weights pile up at +-c (Figure 1c); the gradient penalty keeps ||grad f|| near 1.
These are the numbers that show it, measured at snapshot time on the snapshot's own fixed samples
(one forward and one backward pass over 2n points, a small part of a snapshot's lattice of
grid x grid points), plus a one-line diagnosis in words.

    >>> from torch import nn
    >>> critic = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1))
    >>> with torch.no_grad():   # a clipped critic (c = 0.01): weights at the bound, biases inside
    ...     _ = critic[0].weight.fill_(0.01), critic[2].weight.fill_(-0.01)
    ...     _ = critic[0].bias.fill_(0.0), critic[2].bias.fill_(0.005)
    >>> fraction_at_bound(critic, 0.01)   # 2 of the 4 parameters sit at +-c
    0.5
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

WEIGHT_BINS = 41          # histogram bins of the critic's weights
AT_BOUND = 1e-6           # |w| >= c (1 - AT_BOUND) counts as sitting at the clipping bound


def layer_grad_norms(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> list[float]:
    """||dL/dh_l||_F for each hidden layer's output h_l (after its activation), input side first.

    L = mean f(fake) - mean f(real), the Wasserstein part of the critic's loss on these rows (the
    part the generator learns from), and the Frobenius norm runs over all rows. For a critic
    without hidden layers (or one that is not an nn.Sequential in .net or itself) the list is empty.
    """
    net = getattr(critic, "net", critic)
    if not isinstance(net, nn.Sequential):
        return []
    with torch.enable_grad():
        h = torch.cat((real, fake)).detach()
        hidden = []
        for i, module in enumerate(net):
            h = module(h)
            # a hidden layer's output: after an activation that follows a Linear layer
            if not isinstance(module, nn.Linear) and i > 0 and isinstance(net[i - 1], nn.Linear):
                h.retain_grad()
                hidden.append(h)
        if not hidden:
            return []
        n = len(real)
        loss = h[n:].mean() - h[:n].mean()
        grads = torch.autograd.grad(loss, hidden, allow_unused=True)
    return [0.0 if g is None else float(g.norm()) for g in grads]


def critic_weights(critic: nn.Module) -> np.ndarray:
    """Every weight of the critic's layers (not biases, not norm scales), as one float64 vector."""
    parts = [m.weight.detach().reshape(-1) for m in critic.modules()
             if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight is not None]
    return torch.cat(parts).double().cpu().numpy() if parts else np.zeros(0)


def fraction_at_bound(critic: nn.Module, c: float) -> float:
    """The share of the critic's weights and biases clamped at the clipping bound: |w| = c."""
    params = [p.detach().reshape(-1) for p in critic.parameters()]
    if not params:
        return 0.0
    flat = torch.cat(params).abs()
    return float((flat >= c * (1 - AT_BOUND)).double().mean())


def weight_histogram(critic: nn.Module, bins: int = WEIGHT_BINS, clip: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the critic's weights; with `clip` the range is [-1.05 c, 1.05 c], so the
    piles at +-c show as the outer bars (Figure 1c), else the weights' own range."""
    w = critic_weights(critic)
    if clip is not None:
        top = 1.05 * clip
    else:
        top = float(np.abs(w).max()) if w.size else 1.0
        top = top if top > 0 else 1.0
    return np.histogram(w, bins=bins, range=(-top, top))


def diagnose(kind: str, lam: float, clip: float, grad_norms: np.ndarray, layers: list[float],
             at_bound: float | None) -> str:
    """One sentence on the critic's Lipschitz health, for the page (see the module docstring)."""
    finite = np.asarray(grad_norms, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return "The critic's gradients are not finite: the run has diverged."
    mean = float(finite.mean())
    if kind == "gan":
        return (f"A plain GAN's discriminator is not asked to be Lipschitz: ||∇f|| on interpolates is "
                f"{mean:.3g} on average, whatever it needs to be.")
    spread = _depth_trend(layers)
    if kind == "wgan":
        piled = f" {100 * at_bound:.0f}% of the weights sit at ±c." if at_bound is not None else ""
        if spread is not None and spread < 1e-2:
            return (f"Gradients vanish with depth ({spread:.1e} from the last hidden layer to the first): "
                    f"c = {clip:g} is too small for this depth.{piled}")
        if spread is not None and spread > 1e2:
            return (f"Gradients explode with depth ({spread:.1e} from the last hidden layer to the first): "
                    f"c = {clip:g} is too large for this depth.{piled}")
        if abs(mean - 1) > 0.5:
            return (f"Clipping makes the critic Lipschitz, but not 1-Lipschitz: ||∇f|| is {mean:.3g}, so its "
                    f"estimate is W1 times an unknown factor.{piled}")
        return f"||∇f|| is {mean:.3g}, near 1 even under clipping (c = {clip:g}).{piled}"
    if abs(mean - 1) <= 0.3:
        return f"The penalty holds ||∇f|| near 1 ({mean:.3g} on average between the two clouds)."
    if lam == 0:
        return f"||∇f|| is far from 1 ({mean:.3g}) under WGAN-GP: is λ 0? Without it there is no penalty."
    return (f"||∇f|| is far from 1 ({mean:.3g}) under WGAN-GP with λ = {lam:g}: the penalty has not caught up "
            "yet; a larger λ or more critic iterations hold it.")


def _depth_trend(layers: list[float]) -> float | None:
    """||dL/dh_first|| / ||dL/dh_last|| over the hidden layers (None with fewer than 3 of them).
    Below 1: gradients shrink on their way back to the input; above 1: they grow."""
    if len(layers) < 3 or not layers[-1] > 0:
        return None
    return layers[0] / layers[-1] if math.isfinite(layers[0]) else math.inf


def lipschitz_stats(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, hat_norms: np.ndarray,
                    kind: str, lam: float, clip: float) -> dict:
    """What a snapshot carries: per-layer gradient norms, the weight histogram, the share of weights
    at the bound (under clipping), ||grad f|| on the interpolates (as given) and the diagnosis."""
    layers = layer_grad_norms(critic, real, fake)
    clipped = kind == "wgan"
    counts, edges = weight_histogram(critic, clip=clip if clipped else None)
    at_bound = fraction_at_bound(critic, clip) if clipped else None
    hat_norms = np.asarray(hat_norms, dtype=np.float32)
    return {"layers": layers, "weight_counts": counts, "weight_edges": edges, "at_bound": at_bound,
            "clip": float(clip) if clipped else None, "grad_norms": hat_norms,
            "diagnosis": diagnose(kind, lam, clip, hat_norms, layers, at_bound)}
