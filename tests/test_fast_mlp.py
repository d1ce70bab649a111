"""The closed-form engine (hand-derived gradients, explorer/fast_mlp.py) against autograd, the trusted
reference: every gradient, then whole runs in float64 (same parameters, histories and random state)."""
from dataclasses import replace

import pytest
import torch
from torch import nn

from explorer import fast_mlp as fm
from explorer.losses import critic_terms, generator_loss
from explorer.models import DCGANCritic, MLPCritic, MLPGenerator
from explorer.toy_training import ToyConfig, make_toy_trainer
from explorer.training import Trainer


def _float64_trainer(cfg: ToyConfig, engine: str) -> Trainer:
    """A toy trainer in float64 (so the two engines may differ by round-off only)."""
    cfg = replace(cfg, engine=engine)
    t = make_toy_trainer(cfg)
    rng, src = t.rng, t.source
    t64 = Trainer(cfg, t.generator.double(), t.critic.double(), lambda n: src.sample(n, rng).double(),
                  lambda n: torch.randn(n, cfg.noise_dim, generator=rng, dtype=torch.float64), rng=rng)
    assert t64.engine == engine
    return t64


@pytest.mark.parametrize("kind", ["wgan-gp", "wgan", "gan"])
@pytest.mark.parametrize("depth", [1, 3])
def test_critic_gradients_match_autograd(kind, depth):
    torch.manual_seed(0)
    C = MLPCritic(2, 24, depth).double()
    B = 40
    real, fake = torch.randn(B, 2, dtype=torch.float64), torch.randn(B, 2, dtype=torch.float64) * 2
    terms = critic_terms(kind, C, real, fake, 0.7, torch.Generator().manual_seed(5))
    C.zero_grad()
    terms.loss.backward()
    expected = [p.grad.clone() for p in C.parameters()]

    rows, n_pen = [real, fake], 0
    if kind == "wgan-gp":  # the same eps as critic_terms drew
        eps = torch.rand((B, 1), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        rows.append(torch.lerp(fake, real, eps))
        n_pen = B
    with torch.no_grad():
        f, gp = fm.critic_grads(fm.mlp_layers(C.net), torch.cat(rows),
                                lambda f: fm.score_weights(kind, f[:B], f[B:]), n_pen, 0.7)
    for p, g in zip(C.parameters(), expected):
        torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(f[:2 * B], C(torch.cat((real, fake))))
    if kind == "wgan-gp":
        assert float(gp) == pytest.approx(float(terms.gp), rel=1e-12)
    else:
        assert gp is None


@pytest.mark.parametrize("kind", ["wgan-gp", "gan"])
def test_generator_gradients_match_autograd(kind):
    torch.manual_seed(1)
    G, C = MLPGenerator(2, 16, 2).double(), MLPCritic(2, 16, 2).double()
    z = torch.randn(30, 2, dtype=torch.float64)
    for p in C.parameters():
        p.requires_grad_(False)
    generator_loss(kind, C, G(z), non_saturating=True).backward()
    expected = [p.grad.clone() for p in G.parameters()]
    with torch.no_grad():
        acts = fm.forward(fm.mlp_layers(G.net), z)
        c_acts = fm.forward(fm.mlp_layers(C.net), acts[-1])
        grad_x = fm.score_chain(fm.mlp_layers(C.net), c_acts)[-1]
        f = c_acts[-1]
        d_f = -torch.sigmoid(-f) / 30 if kind == "gan" else torch.full_like(f, -1 / 30)
        fm.backward(fm.mlp_layers(G.net), acts, d_f * grad_x)
    for p, g in zip(G.parameters(), expected):
        torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12)


def test_score_chain_is_the_input_gradient():
    torch.manual_seed(2)
    C = MLPCritic(2, 32, 3).double()
    x = torch.randn(50, 2, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(C(x).sum(), x)
    with torch.no_grad():
        chain = fm.score_chain(fm.mlp_layers(C.net), fm.forward(fm.mlp_layers(C.net), x.detach()), from_row=20)
    torch.testing.assert_close(chain[-1], expected[20:])
    assert len(chain) == 4 and chain[0].shape == (50, 32)


@pytest.mark.parametrize("kind, non_saturating", [("wgan-gp", True), ("wgan", True), ("gan", True), ("gan", False)])
@pytest.mark.parametrize("n_critic", [1, 3])
@pytest.mark.parametrize("reuse_fakes", [False, True])
def test_closed_form_engine_follows_the_autograd_engine(kind, non_saturating, n_critic, reuse_fakes):
    """Same seed, same random draws, same maths: in float64 the two engines agree to round-off."""
    cfg = dict(loss=kind, non_saturating=non_saturating, n_critic=n_critic, reuse_fakes=reuse_fakes, width=16,
               batch_size=32, seed=4)
    runs = []
    for engine in ("autograd", "closed_form"):
        t = _float64_trainer(ToyConfig(**cfg), engine)
        t.step(12)
        runs.append(t)
    slow, fast = runs
    for a, b in zip(list(slow.generator.parameters()) + list(slow.critic.parameters()),
                    list(fast.generator.parameters()) + list(fast.critic.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)
    for ra, rb in zip(slow.history, fast.history):
        for key in ("loss_c", "loss_g", "w_est", "gp"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-7, abs=1e-9, nan_ok=True), key
    assert slow.rng.get_state().equal(fast.rng.get_state())  # the same number of draws


def test_rmsprop_and_hot_updates_on_both_engines():
    cfg = dict(loss="wgan", optimizer="rmsprop", width=16, batch_size=32, seed=2, n_critic=2)
    runs = []
    for engine in ("autograd", "closed_form"):
        t = _float64_trainer(ToyConfig(**cfg), engine)
        t.step(5)
        t.update(clip=0.05, n_critic=3, lr_c=2e-4)
        t.step(5)
        runs.append(t)
    for a, b in zip(runs[0].critic.parameters(), runs[1].critic.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)
        assert float(b.detach().abs().max()) <= 0.05 + 1e-12


def test_float32_gradients_at_default_size_match_autograd():
    """The oneDNN products (used from 32 rows/units up) in float32: gradients agree to ~1e-5 relative.
    (Whole runs are not compared in float32: Adam's first steps, about lr * sign(grad), turn round-off
    in near-zero gradients into lr-sized differences; the float64 comparisons above cover the runs.)"""
    t = make_toy_trainer(ToyConfig(seed=7, batch_size=256))
    assert t.engine == "closed_form"          # "auto" on a CPU
    C, B = t.critic, 256
    real, fake = t.sample_real(B), t.sample_noise(B) * 2
    terms = critic_terms("wgan-gp", C, real, fake, 1.0, torch.Generator().manual_seed(9))
    C.zero_grad()
    terms.loss.backward()
    expected = [p.grad.clone() for p in C.parameters()]
    eps = torch.rand((B, 1), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        fm.critic_grads(fm.mlp_layers(C.net), torch.cat((real, fake, torch.lerp(fake, real, eps))),
                        fm.score_weights("wgan", real[:, :1], fake[:, :1]), B, 1.0)
    for p, g in zip(C.parameters(), expected):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5 * float(g.abs().max()))


def test_the_relu_mask_without_the_private_op_is_the_same(monkeypatch):
    """FUSED_RELU_MASK off (the benchmark's ablation row) computes the same gradients."""
    g, a = torch.randn(50, 7), torch.randn(50, 7).relu()
    fused = fm.relu_grad(g, a)
    monkeypatch.setattr(fm, "FUSED_RELU_MASK", False)
    assert torch.equal(fm.relu_grad(g, a), fused) and torch.equal(fused, g * (a > 0))
    out = torch.empty_like(g)
    assert fm.relu_grad(g, a, out=out) is out and torch.equal(out, fused)


@pytest.mark.parametrize("shape", [(64, 48, 40), (64, 2, 40), (64, 40, 1), (3, 5, 7)])
def test_linear_matches_torch(shape):
    n, k, m = shape
    x, w, b = torch.randn(n, k), torch.randn(m, k), torch.randn(m)
    torch.testing.assert_close(fm.linear(x, w, b), x @ w.T + b, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(fm.linear(x, w, b, relu=True), (x @ w.T + b).relu(), rtol=1e-5, atol=1e-4)
    wt = torch.randn(k, m)
    torch.testing.assert_close(fm.linear(x, wt.T), x @ wt, rtol=1e-5, atol=1e-4)  # a transposed view


def test_the_closed_form_engine_refuses_what_it_cannot_do():
    G, C = MLPGenerator(2, 8, 2), MLPCritic(2, 8, 2)
    cpu = torch.device("cpu")
    assert fm.FastStep.refusal(G, C, cpu, "wgan-gp") is None
    assert "CPU" in fm.FastStep.refusal(G, C, torch.device("cuda"), "wgan-gp")
    assert "losses" in fm.FastStep.refusal(G, C, cpu, "hinge")
    assert "MLP" in fm.FastStep.refusal(G, DCGANCritic(28, 1, 8, "none"), cpu, "gan")
    C.net[-1].bias.requires_grad_(False)
    assert "frozen" in fm.FastStep.refusal(G, C, cpu, "wgan")
    C.net[-1].bias.requires_grad_(True)
    C.net[1] = nn.Tanh()
    assert "MLP" in fm.FastStep.refusal(G, C, cpu, "wgan")
    assert fm.mlp_layers(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))) is None
    assert fm.mlp_layers(nn.Linear(2, 3)) is None


def test_a_frozen_critic_bias_stays_frozen_on_every_engine(caplog):
    """The engines once differed here: the closed form trained a bias autograd left alone. Now the
    closed form refuses such a run (and says so in the log), so every engine gives autograd's result."""
    runs = []
    for engine in ("autograd", "closed_form", "auto"):
        t = make_toy_trainer(ToyConfig(loss="wgan", width=8, depth=1, batch_size=16, seed=1, engine=engine))
        bias = t.critic.net[-1].bias
        bias.requires_grad_(False)
        with caplog.at_level("INFO", logger="explorer.training"):
            t.fast = t._closed_form_step()     # the trainer's choice, made again now the bias is frozen
        before = bias.detach().clone()
        t.step(3)
        assert t.engine == "autograd" and torch.equal(bias, before), engine
        runs.append([p.detach().clone() for p in t.critic.parameters()])
    assert "frozen" in caplog.text
    for other in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], other))


def test_keep_freed_memory_is_idempotent():
    from explorer.process import keep_freed_memory
    first = keep_freed_memory()
    assert isinstance(first, bool) and keep_freed_memory() == first
