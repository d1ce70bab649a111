"""Losses against hand-computed values, the gradient penalty against finite differences, clipping."""
import math

import pytest
import torch
from torch import nn

from explorer.losses import (clip_weights, critic_loss, critic_scores, critic_terms, generator_loss,
                             gradient_penalty, interpolates, make_optimizer)

REAL = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
FAKE = torch.tensor([[0.0, 0.0], [-1.0, 0.0]])


def linear_critic(w=(1.0, 2.0), b=0.5):
    """f(x) = w . x + b: f(REAL) = (1.5, 2.5), f(FAKE) = (0.5, -0.5), grad f = w everywhere."""
    C = nn.Linear(2, 1)
    with torch.no_grad():
        C.weight.copy_(torch.tensor([w]))
        C.bias.fill_(b)
    return C


def softplus(v):
    return math.log1p(math.exp(v))


def test_wgan_critic_loss_and_estimate_by_hand():
    loss, w_est = critic_loss("wgan", linear_critic(), REAL, FAKE)
    # E f(fake) - E f(real) = 0 - 2
    assert loss.item() == pytest.approx(-2.0)
    assert w_est.item() == pytest.approx(2.0)


def test_wgan_gp_adds_lambda_times_the_penalty_of_a_linear_critic():
    # ||grad f|| = sqrt(5) at every interpolate, so GP = (sqrt(5) - 1)^2 exactly
    loss, w_est = critic_loss("wgan-gp", linear_critic(), REAL, FAKE, lam=10.0)
    assert loss.item() == pytest.approx(-2.0 + 10.0 * (math.sqrt(5) - 1) ** 2, rel=1e-6)
    assert w_est.item() == pytest.approx(2.0)


def test_penalty_is_norm_minus_one_squared_not_the_squared_norm_slip():
    C = linear_critic(w=(3.0, 0.0))
    assert gradient_penalty(C, REAL, FAKE).item() == pytest.approx(4.0)  # (3 - 1)^2, not (9 - 1)^2 = 64
    assert gradient_penalty(linear_critic(w=(0.6, 0.8)), REAL, FAKE).item() == pytest.approx(0.0, abs=1e-12)


def test_gan_losses_by_hand():
    C = linear_critic()
    loss, _ = critic_loss("gan", C, REAL, FAKE)
    want = (softplus(-1.5) + softplus(-2.5)) / 2 + (softplus(0.5) + softplus(-0.5)) / 2  # BCE(real,1)+BCE(fake,0)
    assert loss.item() == pytest.approx(want, rel=1e-6)
    ns = generator_loss("gan", C, FAKE, non_saturating=True)
    mm = generator_loss("gan", C, FAKE, non_saturating=False)
    assert ns.item() == pytest.approx((softplus(-0.5) + softplus(0.5)) / 2, rel=1e-6)  # -log D(G(z))
    d = [1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(0.5))]
    assert mm.item() == pytest.approx(sum(math.log(1 - v) for v in d) / 2, rel=1e-6)  # log(1 - D(G(z)))


def test_wasserstein_generator_loss_by_hand():
    fake = torch.tensor([[2.0, 1.0], [0.0, 1.0]])  # f = 4.5, 2.5
    for kind in ("wgan", "wgan-gp"):
        assert generator_loss(kind, linear_critic(), fake).item() == pytest.approx(-3.5)


def test_penalty_works_for_any_input_shape():
    w = torch.arange(16, dtype=torch.float32) / 10
    C = nn.Sequential(nn.Flatten(), nn.Linear(16, 1))
    with torch.no_grad():
        C[1].weight.copy_(w[None])
    real, fake = torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4)
    assert gradient_penalty(C, real, fake).item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-6)


def test_interpolates_lie_on_the_segments():
    real, fake = torch.randn(64, 3, 2), torch.randn(64, 3, 2)
    x = interpolates(real, fake, torch.Generator().manual_seed(0))
    eps = ((x - fake) / (real - fake))  # one eps per sample, shared by all its coordinates
    assert torch.allclose(eps, eps[:, :1, :1].expand_as(eps), atol=1e-4)
    assert (eps >= -1e-5).all() and (eps <= 1 + 1e-5).all()


def mlp64():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1)).double()


def test_penalty_matches_finite_differences():
    C = mlp64()
    real, fake = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    gp = gradient_penalty(C, real, fake, torch.Generator().manual_seed(1)).item()
    x = interpolates(real, fake, torch.Generator().manual_seed(1))
    h = 1e-6
    grads = torch.zeros_like(x)
    with torch.no_grad():
        for j in range(2):
            e = torch.zeros(2, dtype=torch.float64)
            e[j] = h
            grads[:, j] = (C(x + e) - C(x - e)).squeeze(1) / (2 * h)
    assert gp == pytest.approx(((grads.norm(dim=1) - 1) ** 2).mean().item(), rel=1e-6)


def test_penalty_gradient_wrt_weights_matches_finite_differences():
    """The double backward: d GP / d theta for one weight, against a central difference."""
    C = mlp64()
    real, fake = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    gp = gradient_penalty(C, real, fake, torch.Generator().manual_seed(2))
    (g,) = torch.autograd.grad(gp, C[2].weight)
    h = 1e-6
    with torch.no_grad():
        C[2].weight[1, 3] += h
        up = gradient_penalty(C, real, fake, torch.Generator().manual_seed(2)).item()
        C[2].weight[1, 3] -= 2 * h
        down = gradient_penalty(C, real, fake, torch.Generator().manual_seed(2)).item()
    assert g[1, 3].item() == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)


def test_critic_gradients_do_not_flow_into_the_generator():
    G = nn.Linear(2, 2)
    fake = G(torch.randn(4, 2)).detach()
    loss, _ = critic_loss("wgan-gp", linear_critic(), REAL.repeat(2, 1), fake, lam=1.0)
    loss.backward()
    assert G.weight.grad is None


def test_batch_norm_critics_score_real_and_fake_separately():
    C = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    real, fake = torch.randn(8, 2), torch.randn(8, 2) + 3
    f_real, f_fake = critic_scores(C, real, fake)
    assert torch.allclose(f_real, C(real)) and torch.allclose(f_fake, C(fake))


def test_terms_report_the_penalty_only_for_wgan_gp():
    C = linear_critic(w=(3.0, 0.0))
    assert critic_terms("wgan-gp", C, REAL, FAKE, lam=1.0).gp.item() == pytest.approx(4.0)
    assert math.isnan(critic_terms("wgan", C, REAL, FAKE).gp.item())


def test_clipping_keeps_every_weight_in_range():
    C = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1))
    with torch.no_grad():
        for p in C.parameters():
            p.normal_(0, 1)
    inside = C[0].weight.detach().clone().abs() < 0.05
    before = C[0].weight.detach().clone()
    clip_weights(C, 0.05)
    for p in C.parameters():
        assert (p.abs() <= torch.tensor(0.05, dtype=p.dtype)).all()  # c as the weights' float32 sees it
    assert torch.equal(C[0].weight[inside], before[inside])  # weights already inside are untouched
    assert (C[0].weight.abs() == 0.05).any()


def test_unknown_names_are_rejected():
    C = linear_critic()
    with pytest.raises(ValueError, match="Unknown loss"):
        critic_loss("lsgan", C, REAL, FAKE)
    with pytest.raises(ValueError, match="Unknown loss"):
        generator_loss("lsgan", C, FAKE)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        make_optimizer("sgd", C.parameters(), 1e-3)


def test_optimizers():
    C = linear_critic()
    adam = make_optimizer("adam", C.parameters(), 2e-4)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["betas"] == (0.5, 0.9)
    assert isinstance(make_optimizer("rmsprop", C.parameters(), 5e-5), torch.optim.RMSprop)


@pytest.mark.parametrize("kind", ["gan", "wgan", "wgan-gp"])
@pytest.mark.parametrize("non_saturating", [True, False])
def test_each_objectives_derivative_is_the_one_autograd_finds(kind, non_saturating):
    """The closed-form engine uses the derivatives, the autograd engine the objectives: one set of maths."""
    from explorer.losses import (critic_objective, critic_objective_grad, generator_objective,
                                 generator_objective_grad)
    g = torch.Generator().manual_seed(3)
    f_real = torch.randn(7, 1, generator=g, dtype=torch.float64, requires_grad=True)
    f_fake = torch.randn(5, 1, generator=g, dtype=torch.float64, requires_grad=True)
    d_real, d_fake = torch.autograd.grad(critic_objective(kind, f_real, f_fake), (f_real, f_fake))
    want_real, want_fake = critic_objective_grad(kind, f_real.detach(), f_fake.detach())
    torch.testing.assert_close(want_real, d_real)
    torch.testing.assert_close(want_fake, d_fake)
    (d_gen,) = torch.autograd.grad(generator_objective(kind, f_fake, non_saturating), f_fake)
    torch.testing.assert_close(generator_objective_grad(kind, f_fake.detach(), non_saturating), d_gen)
    with pytest.raises(ValueError, match="Unknown loss"):
        critic_objective("hinge", f_real, f_fake)
