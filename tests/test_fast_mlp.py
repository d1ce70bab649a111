"""The CPU fast path (hand-derived gradients) against autograd, the trusted reference."""
import pytest
import torch
from torch import nn

from explorer import fast_mlp as fm
from explorer import training
from explorer.losses import critic_terms, generator_loss, make_optimizer
from explorer.models import DCGANCritic, MLPCritic, MLPGenerator
from explorer.training import ToyConfig, Trainer, make_toy_trainer


def _float64_trainer(cfg: ToyConfig, fast: bool, monkeypatch) -> Trainer:
    """A toy trainer in float64 (so the two paths may differ by round-off only), fast path on or off."""
    monkeypatch.setattr(training, "FAST_CPU", fast)
    t = make_toy_trainer(cfg)
    rng, src = t.rng, t.source
    t64 = Trainer(cfg, t.generator.double(), t.critic.double(), lambda n: src.sample(n, rng).double(),
                  lambda n: torch.randn(n, cfg.noise_dim, generator=rng, dtype=torch.float64), rng=rng)
    assert (t64.fast is not None) == fast
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


@pytest.mark.parametrize("kind", ["wgan-gp", "wgan", "gan"])
@pytest.mark.parametrize("n_critic", [1, 3])
@pytest.mark.parametrize("reuse_fakes", [False, True])
def test_fast_trainer_follows_the_autograd_trainer(kind, n_critic, reuse_fakes, monkeypatch):
    """Same seed, same random draws, same maths: in float64 the two paths agree to round-off."""
    cfg = dict(loss=kind, n_critic=n_critic, reuse_fakes=reuse_fakes, width=16, batch_size=32, seed=4)
    runs = []
    for fast in (False, True):
        t = _float64_trainer(ToyConfig(**cfg), fast, monkeypatch)
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


def test_rmsprop_and_hot_updates_take_the_fast_path(monkeypatch):
    cfg = dict(loss="wgan", optimizer="rmsprop", width=16, batch_size=32, seed=2, n_critic=2)
    runs = []
    for fast in (False, True):
        t = _float64_trainer(ToyConfig(**cfg), fast, monkeypatch)
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
    assert t.fast is not None
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


def test_optimizer_step_is_torchs_fused_adam_exactly():
    torch.manual_seed(3)
    nets = [MLPCritic(2, 8, 2) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [make_optimizer("adam", n.parameters(), 1e-2, (0.5, 0.9)) for n in nets]
    for _ in range(4):
        grads = [torch.randn_like(p) for p in nets[0].parameters()]
        for net, opt, run in zip(nets, opts, (lambda o: o.step(), fm.optimizer_step)):
            for p, g in zip(net.parameters(), grads):
                p.grad = g.clone()
            run(opt)
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)
    assert opts[0].state_dict()["state"][0]["step"] == opts[1].state_dict()["state"][0]["step"] == 4


def test_optimizer_step_falls_back_for_other_optimizers():
    p = nn.Parameter(torch.ones(3))
    for opt in (torch.optim.RMSprop([p], lr=0.1), torch.optim.Adam([p], lr=0.1, amsgrad=True, fused=True),
                torch.optim.Adam([p], lr=0.1, foreach=True)):
        before = p.detach().clone()
        p.grad = torch.ones(3)
        fm.optimizer_step(opt)
        assert (p.detach() < before).all()


@pytest.mark.parametrize("shape", [(64, 48, 40), (64, 2, 40), (64, 40, 1), (3, 5, 7)])
def test_linear_matches_torch(shape):
    n, k, m = shape
    x, w, b = torch.randn(n, k), torch.randn(m, k), torch.randn(m)
    torch.testing.assert_close(fm.linear(x, w, b), x @ w.T + b, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(fm.linear(x, w, b, relu=True), (x @ w.T + b).relu(), rtol=1e-5, atol=1e-4)
    wt = torch.randn(k, m)
    torch.testing.assert_close(fm.linear(x, wt.T), x @ wt, rtol=1e-5, atol=1e-4)  # a transposed view


def test_only_plain_relu_mlps_on_cpu_are_supported():
    G, C = MLPGenerator(2, 8, 2), MLPCritic(2, 8, 2)
    assert fm.FastStep.supports(G, C, torch.device("cpu"))
    assert not fm.FastStep.supports(G, C, torch.device("cuda"))
    assert not fm.FastStep.supports(G, DCGANCritic(28, 1, 8, "none"), torch.device("cpu"))
    C.net[1] = nn.Tanh()
    assert not fm.FastStep.supports(G, C, torch.device("cpu"))
    assert fm.mlp_layers(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))) is None
    assert fm.mlp_layers(nn.Linear(2, 3)) is None


def test_keep_freed_memory_is_idempotent():
    first = fm.keep_freed_memory()
    assert isinstance(first, bool) and fm.keep_freed_memory() == first
