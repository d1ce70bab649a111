"""Hand-derived gradients for the toy MLPs: one GAN step without autograd (the CPU fast path).

For a ReLU MLP  a_0 = x,  a_l = relu(a_{l-1} W_l^T + b_l) (l < L),  f = a_{L-1} W_L^T + b_L,
the derivative of the score with respect to every hidden layer has a closed form (ReLU' is a 0/1 mask
and ReLU'' = 0):

    c_{L-1} = W_L * [a_{L-1} > 0],    c_{l-1} = (c_l W_l) * [a_{l-1} > 0],    grad_x f = c_1 W_1.

So with dLoss/df = s (one number per sample), the backward pass is  delta_l = s * c_l  and
dW_l = delta_l^T a_{l-1}.  The gradient penalty lam * mean (||grad_x f|| - 1)^2 is differentiated
through the same chain: with u = dP/d(grad_x f), e_1 = (u W_1^T) * mask_1, e_l = (e_{l-1} W_l^T) * mask_l,

    dW_1 += c_1^T u,    dW_l += c_l^T e_{l-1},    dW_L += sum_rows e_{L-1}     (biases: no penalty term).

That is the same maths as autograd's double backward, minus the products autograd spends pushing
zeros back through the forward pass (ReLU'' = 0), minus its bookkeeping. tests/test_fast_mlp.py checks
every gradient against autograd.

The Trainer uses this step when TrainConfig.engine is "closed_form" or "auto" and the run is one it
can do (FastStep.refusal says why not otherwise). The losses and their derivatives with respect to
the critic's scores come from explorer/losses.py, as the autograd step's do; the torch optimizers
are kept (this only fills p.grad), so checkpoints, hot updates and clipping are unchanged.

One torch entry point outside the public API is used, aten's threshold_backward for the ReLU masks,
for what bench/toy_throughput.py's ablation row shows it buys (FUSED_RELU_MASK switches it off).
Two others were dropped when their rows showed nothing on this project's CPU: oneDNN's private
linear (0.93x at width 128, 1.08x at 512) and calling Adam's fused kernel directly (0.98-0.99x).
"""
from __future__ import annotations

import torch
from torch import nn

from explorer.choices import LOSSES
from explorer.losses import (clip_weights, critic_objective, critic_objective_grad, generator_objective,
                             generator_objective_grad)

FUSED_RELU_MASK = True     # aten.threshold_backward: g where a > 0, in one pass and without a mask tensor


def relu_grad(g: torch.Tensor, a: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """g * [a > 0], the gradient through a ReLU whose output is a (written into `out` if given)."""
    if FUSED_RELU_MASK:
        if out is None:
            return torch.ops.aten.threshold_backward(g, a, 0)
        return torch.ops.aten.threshold_backward.grad_input(g, a, 0, grad_input=out)
    return torch.mul(g, a > 0, out=out) if out is not None else g * (a > 0)


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, relu: bool = False) -> torch.Tensor:
    """x (n, k) @ w^T (k, m) [+ b] [then relu] -> (n, m). `w` (and x) may be transposed views."""
    y = x @ w.T if b is None else torch.addmm(b, x, w.T)
    return y.relu_() if relu else y


def mlp_layers(net: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of an nn.Sequential of Linear, ReLU, ..., Linear; None for anything else."""
    mods = list(net.children()) if isinstance(net, nn.Sequential) else []
    if len(mods) < 3 or len(mods) % 2 == 0:
        return None
    ok = all(isinstance(m, nn.Linear if i % 2 == 0 else nn.ReLU) for i, m in enumerate(mods))
    return [m for m in mods[::2]] if ok else None


def forward(layers: list[nn.Linear], x: torch.Tensor) -> list[torch.Tensor]:
    """[a_0 = x, a_1, ..., a_{L-1}, f]: every layer's output, kept for the backward pass."""
    acts = [x]
    for i, lin in enumerate(layers):
        acts.append(linear(acts[-1], lin.weight, lin.bias, relu=i < len(layers) - 1))
    return acts


def score_chain(layers: list[nn.Linear], acts: list[torch.Tensor], from_row: int = 0,
                scale: torch.Tensor | None = None) -> list[torch.Tensor]:
    """[c_1, ..., c_{L-1}, grad_x f]: d f(x_i) / d a_l for every hidden layer, and for the input
    (the input's only for rows from `from_row` on). Needs a scalar output (critics); row i of c_l
    is the gradient of f(x_i) alone. With `scale` (from_row, 1), the rows before `from_row` are
    those of  scale_i * f(x_i)  (the chain is linear, so the factor is applied once, at its start).
    """
    n, top = acts[0].shape[0], layers[-1].weight
    if scale is None:
        c = relu_grad(top.expand(n, top.shape[1]), acts[-2])
    else:
        c = torch.empty(n, top.shape[1], dtype=top.dtype)
        torch.mul(scale, top, out=c[:from_row])
        c[from_row:] = top
        relu_grad(c, acts[-2], out=c)
    chain = [c]
    for l in range(len(layers) - 2, 0, -1):  # layers[l] maps a_l -> a_{l+1}
        c = relu_grad(linear(c, layers[l].weight.T), acts[l])
        chain.insert(0, c)
    chain.append(linear(c[from_row:], layers[0].weight.T))
    return chain


def backward(layers: list[nn.Linear], acts: list[torch.Tensor], d_out: torch.Tensor) -> None:
    """Accumulate parameter gradients for dLoss/d(output) = d_out (n, out)."""
    delta = d_out
    for l in range(len(layers) - 1, -1, -1):
        lin = layers[l]
        _set_grad(lin.weight, linear(delta.T, acts[l].T))
        _set_grad(lin.bias, delta.sum(0))
        if l > 0:  # the input's own gradient is not needed
            delta = relu_grad(linear(delta, lin.weight.T), acts[l])


def _set_grad(p: torch.Tensor, g: torch.Tensor) -> None:
    p.grad = g  # every parameter gets exactly one gradient per pass: no zero_grad, no accumulation


def critic_grads(layers: list[nn.Linear], x: torch.Tensor, s, n_pen: int = 0,
                 lam: float = 0.0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fill the critic's p.grad for  Loss = sum_i s_i f(x_i) [+ lam * mean_pen (||grad f|| - 1)^2].

    x (n, d): the m = n - n_pen scored rows, then the n_pen interpolates of the penalty (overwritten
    here); s (m, 1), or a function of the scored rows' f (m, 1) that returns it. Returns (f over all
    rows (n, 1), the penalty without lam, or None).
    """
    acts = forward(layers, x)
    m = x.shape[0] - n_pen
    s = s(acts[-1][:m]) if callable(s) else s
    # chain[l] = s * df/da_{l+1} on the scored rows (their delta), df/da_{l+1} on the penalty rows.
    chain = score_chain(layers, acts, m, scale=s)
    top = len(layers) - 1
    gp = None
    if n_pen:
        gx = chain[-1]
        norms = gx.norm(dim=1, keepdim=True)
        gp = ((norms - 1) ** 2).mean()
        scale = torch.where(norms > 0, (2 * lam / n_pen) * (norms - 1) / norms, 0.0)
        torch.mul(gx, scale, out=acts[0][m:])  # u = dP/d(grad_x f), over the interpolates: no longer needed
    # From here on acts[l] holds a_l on the scored rows and e_l (u for l = 0) on the penalty rows, so
    # that one product  chain[l]^T acts[l]  gives both parts of dW_l.
    for l, lin in enumerate(layers):  # lin maps a_l -> a_{l+1}
        a = acts[l]
        if l == top:
            g = s.T @ a[:m]
            _set_grad(lin.weight, g + a[m:].sum(0, keepdim=True) if n_pen else g)
            _set_grad(lin.bias, s.sum(0))
            break
        if l == 0:  # narrow input: the product with the narrow operand first, then one transpose
            _set_grad(lin.weight, linear(a.T, chain[l].T).T.contiguous())
        else:
            _set_grad(lin.weight, linear(chain[l].T, a.T))
        _set_grad(lin.bias, chain[l][:m].sum(0))
        if n_pen:  # e_{l+1}, written over the interpolates' activations (their masks were used above)
            nxt = acts[l + 1][m:]
            relu_grad(linear(a[m:], lin.weight), nxt, out=nxt)
    return acts[-1], gp


def score_weights(kind: str, f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """d critic_objective / df for the rows [real; fake] (explorer/losses.py), as one (n, 1) column."""
    return torch.cat(critic_objective_grad(kind, f_real, f_fake))


class FastStep:
    """Trainer._one_step for MLP networks with hand-derived gradients (see the module docstring).

    Draws random numbers in the same order as the autograd path (real, noise, interpolation weights;
    then noise for the generator), so both paths follow the same run up to rounding.
    """

    def __init__(self, generator: nn.Module, critic: nn.Module):
        self.g_layers, self.c_layers = mlp_layers(generator.net), mlp_layers(critic.net)
        self._weights: torch.Tensor | None = None

    def _wgan_weights(self, B: int, dtype: torch.dtype) -> torch.Tensor:
        """score_weights for wgan(-gp): they depend on the batch size only, so they are kept."""
        w = self._weights
        if w is None or len(w) != 2 * B or w.dtype != dtype:
            half = torch.empty((B, 1), dtype=dtype)
            w = self._weights = score_weights("wgan", half, half)
        return w

    @staticmethod
    def refusal(generator: nn.Module, critic: nn.Module, device: torch.device, kind: str) -> str | None:
        """Why this step cannot train these networks (None: it can, with the autograd step's result)."""
        if device.type != "cpu":
            return f"it runs on the CPU only, not on {device.type}"
        if kind not in LOSSES:
            return f"it knows the losses {', '.join(LOSSES)}, not {kind!r}"
        nets = [getattr(m, "net", None) for m in (generator, critic)]
        if not all(n is not None and mlp_layers(n) for n in nets):
            return "it knows MLPs of Linear and ReLU layers only"
        if mlp_layers(nets[1])[-1].out_features != 1:
            return "the critic must give one score per sample"
        frozen = [name for m in (generator, critic) for name, p in m.named_parameters() if not p.requires_grad]
        if frozen:
            return f"it trains every parameter, and {', '.join(frozen)} is frozen (requires_grad=False)"
        return None

    @torch.no_grad()
    def __call__(self, trainer) -> torch.Tensor:
        cfg, kind, B = trainer.cfg, trainer.cfg.loss, trainer.cfg.batch_size
        gl, cl = self.g_layers, self.c_layers
        # (1) Update the critic n_critic times (the maths of losses.critic_terms: the objective's
        #     derivative with respect to the scores from losses.critic_objective_grad).
        # The draws come in the autograd path's order (per critic iteration: real, noise, eps); drawing
        # does not depend on the networks, so all of them come first and G runs once on all the noise.
        draws = []
        for _ in range(cfg.n_critic):
            real, z = trainer.sample_real(B), trainer.sample_noise(B)
            eps = torch.rand((B, 1), generator=trainer.rng, dtype=real.dtype) if kind == "wgan-gp" else None
            draws.append((real, z, eps))
        g_acts = forward(gl, torch.cat([z for _, z, _ in draws]))
        if kind == "gan":  # they depend on the critic's scores
            weights = lambda f: score_weights(kind, f[:B], f[B:])  # noqa: E731
        else:
            weights = self._wgan_weights(B, g_acts[-1].dtype)
        for i, (real, _, eps) in enumerate(draws):
            fake = g_acts[-1][i * B:(i + 1) * B]
            rows, n_pen = [real, fake], 0
            if eps is not None:
                rows.append(torch.lerp(fake, real, eps))
                n_pen = B
            f, gp = critic_grads(cl, torch.cat(rows), weights, n_pen, cfg.lam)
            trainer.opt_c.step()
            if kind == "wgan":
                clip_weights(trainer.critic, cfg.clip)
        f_real, f_fake = f[:B], f[B:2 * B]  # the last critic iteration's numbers are reported
        w_est = f_real.mean() - f_fake.mean()
        loss_c = critic_objective(kind, f_real, f_fake) + (cfg.lam * gp if gp is not None else 0)
        # (2) Update the generator: minimize losses.generator_objective (-E f(G(z)) for the WGANs).
        if cfg.reuse_fakes:  # the last critic iteration's fakes (see TrainConfig.reuse_fakes)
            g_acts = [a[-B:] for a in g_acts]
        else:
            g_acts = forward(gl, trainer.sample_noise(B))
        c_acts = forward(cl, g_acts[-1])
        f = c_acts[-1]
        grad_x = score_chain(cl, c_acts)[-1]
        d_f = generator_objective_grad(kind, f, cfg.non_saturating)
        loss_g = generator_objective(kind, f, cfg.non_saturating)
        backward(gl, g_acts, d_f * grad_x)
        trainer.opt_g.step()
        nan, never_skipped = torch.full((), float("nan")), torch.zeros(())   # no loss scaling here
        return torch.stack((loss_c, loss_g, w_est, gp if gp is not None else nan, never_skipped))
