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
zeros back through the forward pass (ReLU'' = 0), minus its bookkeeping; and the matrix products go to
oneDNN, which runs fp32 at about twice MKL's speed on the AMD CPUs this project is measured on
(bench/toy_throughput.py). tests/test_fast_mlp.py checks every gradient against autograd.

The Trainer uses this path on CPU whenever both networks are MLPGenerator / MLPCritic; it keeps
the torch optimizers (it only fills p.grad), so checkpoints, hot updates and clipping are unchanged.
"""
from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch import nn

from explorer.losses import clip_weights

_relu_grad = torch.ops.aten.threshold_backward  # (g, a, 0) -> g where a > 0, else 0: one pass, no mask


def _probe_onednn() -> bool:
    try:
        x, w = torch.randn(4, 3), torch.randn(5, 3)
        return bool(torch.allclose(torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], ""), x @ w.T,
                                   atol=1e-5))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


ONEDNN = _probe_onednn()


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory mapped (Linux only; process-wide; True if applied).

    A training step allocates a few hundred-KB tensors and frees them again. By default glibc hands
    such blocks back to the kernel (munmap, or trimming the heap once 128 KiB-ish lie free at its top)
    and maps them anew on the next step: a page fault per 4 KiB, which on the virtual machines this
    project runs on cost about as much as the arithmetic (width 128: 46 -> 78 steps/s with this).
    Blocks up to 32 MiB (glibc's own dynamic ceiling) now come from the heap, and up to 64 MiB may lie
    free at its top before it is trimmed; the peak memory of a run does not change.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED is None:
        try:
            libc = ctypes.CDLL("libc.so.6")
            _MALLOC_TUNED = bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20))
        except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
            _MALLOC_TUNED = False
    return _MALLOC_TUNED


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h> parameter numbers
_MALLOC_TUNED: bool | None = None


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, relu: bool = False) -> torch.Tensor:
    """x (n, k) @ w^T (k, m) [+ b] [then relu] -> (n, m). `w` may be a transposed view.

    oneDNN for products that are big in every dimension (it has ~10 us of fixed cost per call);
    torch's own kernel for thin ones such as the 2-D input and the 1-unit score layer.
    """
    if ONEDNN and x.dtype == torch.float32 and min(x.shape[0], x.shape[1], w.shape[0]) >= 32:
        # A transposed x (the weight gradients' delta^T) is copied here: oneDNN's own copy is slower.
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), w, b, "relu" if relu else "none", [], "")
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
        c = _relu_grad(top.expand(n, top.shape[1]), acts[-2], 0)
    else:
        c = torch.empty(n, top.shape[1], dtype=top.dtype)
        torch.mul(scale, top, out=c[:from_row])
        c[from_row:] = top
        _relu_grad.grad_input(c, acts[-2], 0, grad_input=c)
    chain = [c]
    for l in range(len(layers) - 2, 0, -1):  # layers[l] maps a_l -> a_{l+1}
        c = _relu_grad(linear(c, layers[l].weight.T), acts[l], 0)
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
            delta = _relu_grad(linear(delta, lin.weight.T), acts[l], 0)


def _set_grad(p: torch.Tensor, g: torch.Tensor) -> None:
    p.grad = g  # every parameter gets exactly one gradient per pass: no zero_grad, no accumulation


def optimizer_step(opt: torch.optim.Optimizer) -> None:
    """opt.step(); for a fused Adam, the same fused kernel on the same state without the per-call
    bookkeeping of Optimizer.step (about 70 us of its ~120 us here, six times per generator step)."""
    plain = [g for g in opt.param_groups if g.get("fused") and not (g["amsgrad"] or g["maximize"]
             or g.get("decoupled_weight_decay") or g.get("differentiable") or g.get("capturable"))]
    if not isinstance(opt, torch.optim.Adam) or len(plain) != len(opt.param_groups):
        opt.step()
        return
    for group in opt.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        states = [opt.state[p] for p in params]
        for p, st in zip(params, states):
            if not st:  # as torch's Adam initializes fused state
                st.update(step=torch.zeros((), dtype=torch.float32, device=p.device),
                          exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        steps = [st["step"] for st in states]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(params, [p.grad for p in params], [st["exp_avg"] for st in states],
                           [st["exp_avg_sq"] for st in states], [], steps, lr=group["lr"],
                           beta1=group["betas"][0], beta2=group["betas"][1], weight_decay=group["weight_decay"],
                           eps=group["eps"], amsgrad=False, maximize=False, grad_scale=None, found_inf=None)


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
        if l == 0:  # narrow input: copy the narrow operand (oneDNN wants a dense first operand)
            _set_grad(lin.weight, linear(a.T, chain[l].T).T.contiguous())
        else:
            _set_grad(lin.weight, linear(chain[l].T, a.T))
        _set_grad(lin.bias, chain[l][:m].sum(0))
        if n_pen:  # e_{l+1}, written over the interpolates' activations (their masks were used above)
            nxt = acts[l + 1][m:]
            _relu_grad.grad_input(linear(a[m:], lin.weight), nxt, 0, grad_input=nxt)
    return acts[-1], gp


def score_weights(kind: str, f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """dLoss_critic/df for the rows [real; fake] (see losses.py for the losses):
    wgan(-gp): -1/B on real, +1/B on fake;  gan: -sigmoid(-f)/B on real, sigmoid(f)/B on fake."""
    n_r, n_f = len(f_real), len(f_fake)
    if kind == "gan":
        return torch.cat((torch.sigmoid(-f_real).neg_() / n_r, torch.sigmoid(f_fake) / n_f))
    return torch.cat((f_real.new_full((n_r, 1), -1.0 / n_r), f_fake.new_full((n_f, 1), 1.0 / n_f)))


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
    def supports(generator: nn.Module, critic: nn.Module, device: torch.device) -> bool:
        nets = [getattr(m, "net", None) for m in (generator, critic)]
        return (device.type == "cpu" and all(n is not None and mlp_layers(n) for n in nets)
                and mlp_layers(nets[1])[-1].out_features == 1)

    @torch.no_grad()
    def __call__(self, trainer) -> torch.Tensor:
        cfg, kind, B = trainer.cfg, trainer.cfg.loss, trainer.cfg.batch_size
        gl, cl = self.g_layers, self.c_layers
        # (1) Update the critic n_critic times (the maths of losses.critic_terms).
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
            optimizer_step(trainer.opt_c)
            if kind == "wgan":
                clip_weights(trainer.critic, cfg.clip)
        f_real, f_fake = f[:B], f[B:2 * B]  # the last critic iteration's numbers are reported
        w_est = f_real.mean() - f_fake.mean()
        if kind == "gan":
            loss_c = F.softplus(-f_real).mean() + F.softplus(f_fake).mean()
        else:
            loss_c = -w_est + (cfg.lam * gp if gp is not None else 0)
        # (2) Update the generator: minimize -E f(G(z)) (gan: see losses.generator_loss).
        if cfg.reuse_fakes:  # the last critic iteration's fakes (see TrainConfig.reuse_fakes)
            g_acts = [a[-B:] for a in g_acts]
        else:
            g_acts = forward(gl, trainer.sample_noise(B))
        c_acts = forward(cl, g_acts[-1])
        f = c_acts[-1]
        grad_x = score_chain(cl, c_acts)[-1]
        if kind == "gan":
            d_f = (torch.sigmoid(-f).neg_() if cfg.non_saturating else torch.sigmoid(f).neg_()) / B
            loss_g = (F.softplus(-f) if cfg.non_saturating else -F.softplus(f)).mean()
        else:
            d_f, loss_g = f.new_full((B, 1), -1.0 / B), -f.mean()
        backward(gl, g_acts, d_f * grad_x)
        optimizer_step(trainer.opt_g)
        nan = torch.full((), float("nan"))
        return torch.stack((loss_c, loss_g, w_est, gp if gp is not None else nan))
