"""GAN losses: gan (BCE on logits), wgan (weight clipping), wgan-gp (gradient penalty); optimizers.

Every critic here outputs one score per sample, shape (B, 1). Conventions (f = critic, G = generator):

    gan      critic:    E softplus(-f(x)) + E softplus(f(G(z)))    = BCE(D(x), 1) + BCE(D(G(z)), 0)
             generator: E softplus(-f(G(z)))  (non-saturating, -log D(G(z)))
                        -E softplus(f(G(z)))  (minimax, log(1 - D(G(z))))
    wgan     critic:    E f(G(z)) - E f(x), then clip every weight to [-c, c]
             generator: -E f(G(z))
    wgan-gp  critic:    E f(G(z)) - E f(x) + lam * E (||grad f(x_hat)||_2 - 1)^2
             generator: -E f(G(z))

The lecture notes' slip (||g||^2 - 1)^2 is not used: the penalty is (||g||_2 - 1)^2 as in the paper.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from explorer.choices import LOSSES, OPTIMIZERS


def interpolates(real: torch.Tensor, fake: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """x_hat = eps * real + (1 - eps) * fake, one eps ~ U[0, 1] per sample; any shape (B, ...)."""
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator,
                     device=real.device, dtype=real.dtype)
    return torch.lerp(fake, real, eps)  # fake + eps * (real - fake)


def input_grad_norms(critic: nn.Module, x: torch.Tensor, create_graph: bool = False,
                     scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """||grad_x f(x)||_2 per sample, shape (B,), in float32, for inputs of any shape (B, ...).

    Summing the scores before differentiating is exact because sample i's score depends on x_i only.
    scale: fp16's loss scale S (explorer/precision.py). The gradient is taken of S * sum f and then
    divided by S, so gradients too small for float16 survive the critic's backward pass (PyTorch's
    recipe for a gradient penalty under loss scaling); the division and the norm are in float32.
    """
    with torch.enable_grad():  # also under no_grad (e.g. metrics)
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum() * scale, x, create_graph=create_graph)
        grad = grad.to(torch.promote_types(grad.dtype, torch.float32))   # float32 at least (float64 stays)
        return (grad / scale).flatten(1).norm(2, dim=1)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """GP = E_x_hat (||grad f(x_hat)||_2 - 1)^2 on random interpolates (no lambda inside), in float32.

    real, fake: (B, ...) of equal shape. Returns a scalar that is differentiable w.r.t. the critic.
    scale: the critic's fp16 loss scale (see input_grad_norms); 1 without loss scaling.
    Example: for f(x) = w . x the gradient is w everywhere, so GP = (||w|| - 1)^2.
    """
    norms = input_grad_norms(critic, interpolates(real, fake, generator), create_graph=True, scale=scale)
    return ((norms - 1.0) ** 2).mean()


def _has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def critic_scores(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(real), f(fake)). One batched forward when the critic treats samples independently;
    separate forwards when it has batch norm (mixing real and fake would change its statistics)."""
    if _has_batch_norm(critic):
        return critic(real), critic(fake)
    scores = critic(torch.cat((real, fake)))
    return scores[: len(real)], scores[len(real):]


# ----------------------------------------------------------------------------- the objectives, once
# Each loss as a function of the critic's scores f, and its derivative with respect to them: the
# autograd step differentiates the first, the closed-form step (explorer/fast_mlp.py) uses the second.
def critic_objective(kind: str, f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """What the critic minimizes, without the penalty (see the module docstring), from its scores."""
    _check_kind(kind)
    if kind == "gan":
        return F.softplus(-f_real).mean() + F.softplus(f_fake).mean()
    return f_fake.mean() - f_real.mean()


def critic_objective_grad(kind: str, f_real: torch.Tensor, f_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """d critic_objective / d f, per row: (n_real, 1) and (n_fake, 1) for scores of those shapes.

    gan: -sigmoid(-f)/n on real, sigmoid(f)/n on fake (softplus' = sigmoid); wgan(-gp): -1/n and +1/n.
    """
    _check_kind(kind)
    n_r, n_f = len(f_real), len(f_fake)
    if kind == "gan":
        return torch.sigmoid(-f_real).neg_() / n_r, torch.sigmoid(f_fake) / n_f
    return torch.full_like(f_real, -1.0 / n_r), torch.full_like(f_fake, 1.0 / n_f)


def generator_objective(kind: str, f_fake: torch.Tensor, non_saturating: bool = True) -> torch.Tensor:
    """What the generator minimizes, from the critic's scores of its fakes."""
    _check_kind(kind)
    if kind == "gan":
        return F.softplus(-f_fake).mean() if non_saturating else -F.softplus(f_fake).mean()
    return -f_fake.mean()


def generator_objective_grad(kind: str, f_fake: torch.Tensor, non_saturating: bool = True) -> torch.Tensor:
    """d generator_objective / d f, per row: gan -sigmoid(-f)/B (non-saturating) or -sigmoid(f)/B; else -1/B."""
    _check_kind(kind)
    B = len(f_fake)
    if kind == "gan":
        return (torch.sigmoid(-f_fake) if non_saturating else torch.sigmoid(f_fake)).neg_() / B
    return torch.full_like(f_fake, -1.0 / B)


def _check_kind(kind: str) -> None:
    if kind not in LOSSES:
        raise ValueError(f"Unknown loss {kind!r}; choose one of {', '.join(LOSSES)}.")


# ----------------------------------------------------------------------------- with the networks
class CriticTerms(NamedTuple):
    loss: torch.Tensor   # the critic minimizes this
    w_est: torch.Tensor  # E f(real) - E f(fake), detached: the critic's own estimate of W
    gp: torch.Tensor     # gradient penalty without lambda (nan when not computed), detached


def critic_terms(kind: str, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, lam: float = 0.0,
                 generator: torch.Generator | None = None, scale: torch.Tensor | float = 1.0) -> CriticTerms:
    """The critic's loss with its parts; `fake` should be detached from the generator. scale: the
    critic's fp16 loss scale, for the penalty's inner backward pass (see input_grad_norms)."""
    _check_kind(kind)
    f_real, f_fake = critic_scores(critic, real, fake)
    w_est = (f_real.mean() - f_fake.mean()).detach()
    loss = critic_objective(kind, f_real, f_fake)
    if kind != "wgan-gp":
        return CriticTerms(loss, w_est, torch.full((), float("nan"), device=real.device))
    gp = gradient_penalty(critic, real, fake, generator, scale)
    return CriticTerms(loss + lam * gp, w_est, gp.detach())


def critic_loss(kind: str, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, lam: float = 0.0,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to minimize, w_est = E f(real) - E f(fake)) for kind in {"gan", "wgan", "wgan-gp"}."""
    terms = critic_terms(kind, critic, real, fake, lam, generator)
    return terms.loss, terms.w_est


def generator_loss(kind: str, critic: nn.Module, fake: torch.Tensor, non_saturating: bool = True) -> torch.Tensor:
    """The generator's loss on fakes G(z) (not detached): see the module docstring."""
    _check_kind(kind)
    return generator_objective(kind, critic(fake), non_saturating)


@torch.no_grad()
def clip_weights(critic: nn.Module, c: float) -> None:
    """Clamp every trained parameter of the critic to [-c, c] in place (WGAN's crude Lipschitz bound).

    A frozen parameter (requires_grad False) is left as it was set: it is not being trained."""
    for p in critic.parameters():
        if p.requires_grad:
            p.clamp_(-c, c)


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float,
                   betas: tuple[float, float] = (0.5, 0.9)) -> torch.optim.Optimizer:
    """Adam(lr, betas) (WGAN-GP default betas 0.5, 0.9) or RMSprop(lr) (the WGAN paper's choice)."""
    params = list(params)
    if name == "adam":  # fused: one kernel for all of Adam's arithmetic (about 2.5x faster on CPU here)
        fused = bool(params) and params[0].device.type in ("cpu", "cuda")
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused, foreach=None if fused else True)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=True)
    raise ValueError(f"Unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}.")
