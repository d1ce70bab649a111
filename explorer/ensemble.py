"""Batched ensemble training: K small 2-D GANs trained at once, one batched matmul per layer.

Member k's weights sit in slice k of stacked tensors: layer l holds W_l (K, in, out) and b_l (K, 1, out),
and a forward pass over all members is h_{l+1} = relu(baddbmm(b_l, h_l, W_l)) with h_l (K, B, in).
Members are independent, so the gradient of sum_k loss_k with respect to slice k is member k's own
gradient; Adam / RMSprop run per slice with each member's own learning rate.

Exactly what a lone Trainer draws: member k owns a torch.Generator seeded with its seed and draws, in
the Trainer's order, per critic step real (source.sample), noise, interpolation eps (wgan-gp only),
then per generator step its noise; its weights come from init_linear with a generator seeded alike.
So member k follows make_toy_trainer(cfg_k) to float round-off (tests/test_ensemble.py checks it).

n_critic may differ between members: critic iteration i updates only members with n_critic > i (the
others neither draw nor update: they are sliced out of that iteration), so no compute is wasted on
them and every member sees exactly its own stream. Members may also differ in lam, clip, lr_g, lr_c
and seed; everything else (data, architecture, loss, batch, optimizer) is shared.
"""
from __future__ import annotations

import math
from dataclasses import asdict, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.models import MLPCritic, MLPGenerator, init_linear
from explorer.toy_data import make_source
from explorer.training import CHECK_EVERY, HOT_FIELDS, ToyConfig, check_hot, resolve_device

MEMBER_FIELDS = HOT_FIELDS + ("seed",)   # what may differ between members
MAX_MEMBERS = 64


def stacked_forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """MLP over all members at once: x (K, B, in) -> (K, B, out); params = [W_0, b_0, W_1, b_1, ...]."""
    last = len(params) // 2 - 1
    for i in range(last + 1):
        x = torch.baddbmm(params[2 * i + 1], x, params[2 * i])   # (K, B, out) = b + x @ W
        if i < last:
            x = torch.relu(x)
    return x


def stack_linears(modules: list[nn.Module]) -> list[torch.Tensor]:
    """The Linear layers of K same-shaped MLPs as [W (K, in, out), b (K, 1, out), ...]."""
    per_member = [[m for m in mod.modules() if isinstance(m, nn.Linear)] for mod in modules]
    out: list[torch.Tensor] = []
    for layer in zip(*per_member):
        out.append(torch.stack([lin.weight.detach().t() for lin in layer]).contiguous())
        out.append(torch.stack([lin.bias.detach()[None, :] for lin in layer]).contiguous())
    return out


def load_member(module: nn.Module, params: list[torch.Tensor], k: int) -> nn.Module:
    """Copy member k's slice of the stacked params into an MLP of the same shape (in place)."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, lin in enumerate(linears):
            lin.weight.copy_(params[2 * i][k].t())
            lin.bias.copy_(params[2 * i + 1][k, 0])
    return module


class StackedOptimizer:
    """Adam or RMSprop (PyTorch's formulas and defaults) over stacked params, one lr per member.

    Adam:    m <- b1 m + (1-b1) g ; v <- b2 v + (1-b2) g^2 ; p <- p - lr/(1-b1^t) * m / (sqrt(v/(1-b2^t)) + eps)
    RMSprop: v <- a v + (1-a) g^2 ; p <- p - lr * g / (sqrt(v) + eps)        (a = 0.99)
    `active` (K,) bool: members left out keep their params, moments and step count t.
    """

    def __init__(self, name: str, params: list[torch.Tensor], lr: torch.Tensor, betas: tuple[float, float]):
        self.name, self.params, self.lr, self.betas = name, params, lr, betas
        self.eps, self.alpha = 1e-8, 0.99
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = torch.zeros(len(lr), dtype=torch.float64, device=lr.device)  # steps taken per member

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], active: torch.Tensor | None = None) -> None:
        shape = (-1, 1, 1)
        if active is not None:
            self.t += active
        else:
            self.t += 1
        lr = self.lr.view(shape)
        if self.name == "adam":
            b1, b2 = self.betas
            step_size = (lr / (1 - b1 ** self.t).to(lr.dtype).view(shape))
            bc2_sqrt = (1 - b2 ** self.t).sqrt().to(lr.dtype).view(shape)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            if self.name == "adam":
                m_new = torch.lerp(m, g, 1 - b1)
                v_new = v * b2 + (1 - b2) * g * g
                p_new = p - step_size * m_new / (v_new.sqrt() / bc2_sqrt + self.eps)
            else:
                m_new = m
                v_new = v * self.alpha + (1 - self.alpha) * g * g
                p_new = p - lr * g / (v_new.sqrt() + self.eps)
            if active is not None:
                keep = active.view(shape)
                m_new, v_new, p_new = (torch.where(keep, a, b) for a, b in ((m_new, m), (v_new, v), (p_new, p)))
            m.copy_(m_new)
            v.copy_(v_new)
            p.copy_(p_new)

    def state(self) -> list[torch.Tensor]:
        return [*self.m, *self.v, self.t]


class Ensemble:
    """K toy GANs stepped together; `step(n)` runs n generator steps for every member.

    Offers what a Session needs (.step, .update, .step_count, .cfg) plus per-member views for snapshots.
    """

    def __init__(self, cfgs: list[ToyConfig], points: np.ndarray | None = None):
        check_members(cfgs)
        self.cfgs = [replace(c) for c in cfgs]
        self.cfg = self.cfgs[0]                      # the shared settings (member 0's hot values)
        base, K = self.cfg, len(cfgs)
        self.K = K
        self.device = resolve_device(base.device)
        self.source = make_source(base.dataset, base.spread, points, seed=base.seed)
        gens, crits = [], []
        for c in self.cfgs:   # the same draws as make_toy_trainer: G first, then C, from one generator
            init_rng = torch.Generator().manual_seed(c.seed)
            gens.append(init_linear(MLPGenerator(c.noise_dim, c.width, c.depth), init_rng))
            crits.append(init_linear(MLPCritic(2, c.width, c.depth), init_rng))
        self.g_params = [p.to(self.device).requires_grad_(True) for p in stack_linears(gens)]
        self.c_params = [p.to(self.device).requires_grad_(True) for p in stack_linears(crits)]
        self.rngs = [torch.Generator(self.device).manual_seed(c.seed) for c in self.cfgs]
        as_t = lambda name: torch.tensor([float(getattr(c, name)) for c in self.cfgs], device=self.device)
        self.lam, self.clip = as_t("lam"), as_t("clip")
        betas = (base.beta1, base.beta2)
        self.opt_g = StackedOptimizer(base.optimizer, self.g_params, as_t("lr_g"), betas)
        self.opt_c = StackedOptimizer(base.optimizer, self.c_params, as_t("lr_c"), betas)
        self.alive = torch.ones(K, dtype=torch.bool, device=self.device)   # False once a member diverged
        self.diverged: list[str | None] = [None] * K
        self.step_count = 0
        self.histories: list[list[dict]] = [[] for _ in range(K)]
        self._stride = 1
        self.extras: list[dict] = [{} for _ in range(K)]   # per-member caches (snapshot noise)
        self._good = self._capture()

    # ------------------------------------------------------------------ one generator step
    def _draw(self, members: list[int], B: int, gp: bool):
        """Each member's real batch, noise and eps from its own generator, in a lone Trainer's order."""
        reals, zs, epss = [], [], []
        dim = self.cfg.noise_dim
        for k in members:
            g = self.rngs[k]
            reals.append(self.source.sample(B, g))
            zs.append(torch.randn(B, dim, generator=g, device=self.device))
            if gp:
                epss.append(torch.rand(B, 1, generator=g, device=self.device))
        return torch.stack(reals), torch.stack(zs), torch.stack(epss) if gp else None

    def _one_step(self) -> torch.Tensor:
        cfg, K = self.cfg, self.K
        kind, B = cfg.loss, cfg.batch_size
        n_critic = [c.n_critic for c in self.cfgs]
        alive = self.alive.tolist()
        loss_c = torch.full((K,), float("nan"), device=self.device)
        w_est, gp_val = loss_c.clone(), loss_c.clone()
        # (1) Critic: iteration i updates the members with n_critic > i (see the module docstring)
        for i in range(max(n_critic[k] for k in range(K) if alive[k])):
            members = [k for k in range(K) if alive[k] and n_critic[k] > i]
            idx = None if len(members) == K else torch.tensor(members, device=self.device)
            pick = (lambda t: t) if idx is None else (lambda t: t.index_select(0, idx))
            real, z, eps = self._draw(members, B, kind == "wgan-gp")
            cp = [pick(p) for p in self.c_params]
            with torch.no_grad():
                fake = stacked_forward([pick(p) for p in self.g_params], z)
            scores = stacked_forward(cp, torch.cat((real, fake), dim=1))[..., 0]   # (A, 2B)
            f_real, f_fake = scores[:, :B], scores[:, B:]
            if kind == "gan":   # E softplus(-f(x)) + E softplus(f(G(z)))
                loss = F.softplus(-f_real).mean(1) + F.softplus(f_fake).mean(1)
            else:               # E f(G(z)) - E f(x)  (+ lam * E (||grad f(x_hat)|| - 1)^2)
                loss = f_fake.mean(1) - f_real.mean(1)
            gp = None
            if kind == "wgan-gp":
                x_hat = torch.lerp(fake, real, eps).requires_grad_(True)
                (grad,) = torch.autograd.grad(stacked_forward(cp, x_hat).sum(), x_hat, create_graph=True)
                gp = ((grad.norm(dim=2) - 1.0) ** 2).mean(1)
                loss = loss + pick(self.lam) * gp
            grads = torch.autograd.grad(loss.sum(), self.c_params)
            active = None if idx is None else torch.zeros(K, dtype=torch.bool, device=self.device).index_fill_(0, idx, True)
            self.opt_c.step(list(grads), active)
            if kind == "wgan":   # clamp every weight to [-c_k, c_k]; members left out were clamped at i = 0
                with torch.no_grad():
                    for p in self.c_params:
                        c = self.clip.view(-1, *([1] * (p.dim() - 1)))
                        p.copy_(torch.minimum(torch.maximum(p, -c), c))
            put = (lambda dst, src: src) if idx is None else (lambda dst, src: dst.index_copy(0, idx, src))
            loss_c = put(loss_c, loss.detach())
            w_est = put(w_est, (f_real.mean(1) - f_fake.mean(1)).detach())
            if gp is not None:
                gp_val = put(gp_val, gp.detach())
        # (2) Generator: minimize -E f(G(z))  (gan: softplus(-f(G(z))) or -softplus(f(G(z))))
        members = [k for k in range(K) if alive[k]]
        idx = None if len(members) == K else torch.tensor(members, device=self.device)
        pick = (lambda t: t) if idx is None else (lambda t: t.index_select(0, idx))
        z = torch.stack([torch.randn(B, cfg.noise_dim, generator=self.rngs[k], device=self.device)
                         for k in members])
        f_fake = stacked_forward([pick(p).detach() for p in self.c_params],
                                 stacked_forward([pick(p) for p in self.g_params], z))[..., 0]
        if kind == "gan":
            loss_g = F.softplus(-f_fake).mean(1) if cfg.non_saturating else -F.softplus(f_fake).mean(1)
        else:
            loss_g = -f_fake.mean(1)
        grads = torch.autograd.grad(loss_g.sum(), self.g_params)
        self.opt_g.step(list(grads), None if idx is None else self.alive.clone())
        loss_g_all = torch.full((K,), float("nan"), device=self.device)
        loss_g_all = loss_g.detach() if idx is None else loss_g_all.index_copy(0, idx, loss_g.detach())
        return torch.stack((loss_c, loss_g_all, w_est, gp_val), dim=1)   # (K, 4)

    def step(self, n: int = 1) -> list[dict]:
        """Run n generator steps for every live member; return each member's last record.

        A member whose loss or weights become NaN/inf is rolled back to its last checked state and
        frozen (its message in .diverged[k]); the others go on.
        """
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"step(n) needs a whole number n >= 1; got {n!r}.")
        if not bool(self.alive.any()):
            raise RuntimeError("Every member of the ensemble has diverged; reset to start again.")
        done = 0
        while done < n:
            k_steps = min(CHECK_EVERY, n - done)
            stats = torch.stack([self._one_step() for _ in range(k_steps)]).cpu()   # (steps, K, 4)
            self._check(stats)
            for s, rows in enumerate(stats.tolist(), start=self.step_count + 1):
                if s % self._stride == 0:
                    for k, (lc, lg, we, gp) in enumerate(rows):
                        if self.diverged[k] is None:
                            self.histories[k].append({"step": s, "loss_c": lc, "loss_g": lg, "w_est": we, "gp": gp})
            if len(self.histories[0]) > self.cfg.history_cap:   # thin evenly, as the Trainer does
                self.histories = [h[1::2] for h in self.histories]
                self._stride *= 2
            self.step_count += k_steps
            done += k_steps
            self._good = self._capture()
        return [h[-1] if h else {} for h in self.histories]

    def _check(self, stats: torch.Tensor) -> None:
        with torch.no_grad():
            ok = torch.ones(self.K, dtype=torch.bool)
            for p in self.g_params + self.c_params:
                ok &= torch.isfinite(p.flatten(1)).all(dim=1).cpu()
        ok &= torch.isfinite(stats[:, :, :3]).all(dim=(0, 2)) | ~self.alive.cpu()
        bad = [k for k in range(self.K) if not ok[k] and self.diverged[k] is None]
        if not bad:
            return
        good = self._good
        with torch.no_grad():
            for saved, live in zip(good["tensors"], self._tensors()):
                for k in bad:
                    live[k] = saved[k]
        for k in bad:
            self.alive[k] = False
            self.diverged[k] = (f"diverged (NaN or infinite loss) within steps {self.step_count + 1}-"
                                f"{self.step_count + len(stats)}; frozen at step {good['step']}")

    # ------------------------------------------------------------------ hot updates, views
    def update(self, member: int | None = None, **hot) -> None:
        """Change hot fields (lam, clip, n_critic, lr_g, lr_c) of one member, or of all (member=None)."""
        for name, value in hot.items():
            if name not in HOT_FIELDS:
                raise ValueError(f"{name!r} cannot change while training (only {', '.join(HOT_FIELDS)}); reset instead.")
            check_hot(name, value)
        ks = range(self.K) if member is None else [member]
        for name, value in hot.items():
            for k in ks:
                setattr(self.cfgs[k], name, int(value) if name == "n_critic" else float(value))
                target = {"lam": self.lam, "clip": self.clip, "lr_g": self.opt_g.lr, "lr_c": self.opt_c.lr}.get(name)
                if target is not None:
                    target[k] = float(value)

    def modules(self, k: int) -> tuple[MLPGenerator, MLPCritic]:
        """Member k as a fresh (generator, critic) pair of nn.Modules on the ensemble's device."""
        c = self.cfgs[k]
        G = load_member(MLPGenerator(c.noise_dim, c.width, c.depth).to(self.device), self.g_params, k)
        C = load_member(MLPCritic(2, c.width, c.depth).to(self.device), self.c_params, k)
        return G, C

    def view(self, k: int) -> "MemberView":
        """What explorer.metrics.toy_snapshot needs of a trainer, for member k."""
        G, C = self.modules(k)
        return MemberView(self.cfgs[k], G, C, self.device, self.step_count, self.histories[k], self.extras[k])

    # ------------------------------------------------------------------ state
    def _tensors(self) -> list[torch.Tensor]:
        return [*self.g_params, *self.c_params, *self.opt_g.state(), *self.opt_c.state()]

    def _capture(self) -> dict:
        return {"step": self.step_count, "tensors": [t.detach().clone() for t in self._tensors()]}


class MemberView:
    """A read-only stand-in for a Trainer: config, modules, step count, history, extras."""

    def __init__(self, cfg, generator, critic, device, step_count, history, extras):
        self.cfg, self.generator, self.critic, self.device = cfg, generator, critic, device
        self.step_count, self.history, self.extras = step_count, history, extras


def check_members(cfgs: list[ToyConfig]) -> None:
    """ValueError unless 1..MAX_MEMBERS valid configs agree on everything but MEMBER_FIELDS."""
    if not 1 <= len(cfgs) <= MAX_MEMBERS:
        raise ValueError(f"An ensemble needs 1 to {MAX_MEMBERS} members; got {len(cfgs)}.")
    for c in cfgs:
        c.validate()
    shared = {k: v for k, v in asdict(cfgs[0]).items() if k not in MEMBER_FIELDS}
    for i, c in enumerate(cfgs[1:], start=1):
        for k, v in asdict(c).items():
            if k in shared and shared[k] != v:
                raise ValueError(f"Members may differ only in {', '.join(MEMBER_FIELDS)}; member {i} has "
                                 f"{k}={v!r}, member 0 has {shared[k]!r}.")


def grid_configs(base: ToyConfig, field_a: str, values_a, field_b: str | None = None, values_b=()) -> list[ToyConfig]:
    """Member configs for a grid over one or two fields (row-major: field_a outer, field_b inner)."""
    for name in (field_a, field_b):
        if name is not None and name not in MEMBER_FIELDS:
            raise ValueError(f"A grid can vary {', '.join(MEMBER_FIELDS)}; not {name!r}.")
    if field_b is not None and field_b == field_a:
        raise ValueError("Pick two different hyperparameters for the grid's two axes.")
    values_a = list(values_a)
    values_b = list(values_b) if field_b is not None else [None]
    if not values_a or not values_b:
        raise ValueError("Each grid axis needs at least one value.")
    def cast(name: str, v):
        if name in ("n_critic", "seed"):
            if float(v) != int(float(v)):
                raise ValueError(f"{name} takes whole numbers; got {v!r}.")
            return int(float(v))
        return float(v)

    out = []
    for a in values_a:
        for b in values_b:
            over = {field_a: cast(field_a, a)}
            if field_b is not None:
                over[field_b] = cast(field_b, b)
            out.append(replace(base, **over))
    return out
