"""TrainConfig.reuse_fakes: the generator step on the last critic iteration's fakes (DCGAN style).

Checked against a hand-written pytorch/examples-style loop on the same draws: fake = G(z) once,
the critic learns on fake.detach(), the generator on fake.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explorer.image_training import ImageConfig
from explorer.losses import gradient_penalty
from explorer.toy_training import ToyConfig, make_toy_trainer
from explorer.training import Diverged, TrainConfig, Trainer

B, NZ = 16, 3


@pytest.fixture(autouse=True)
def one_thread():
    """Both loops on one thread: with two, torch's reductions may split differently between them, and
    Adam's first steps (about lr * sign(grad)) turn that round-off into visible differences."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_pair(seed=0):
    torch.manual_seed(seed)  # test-local weights; the trainer itself never touches the global RNG
    # No bias before batch norm (as in DCGAN): its gradient is zero up to rounding, which Adam would
    # blow up to +-lr steps and so turn float noise into visible differences.
    G = nn.Sequential(nn.Linear(NZ, 12, bias=False), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 2))
    C = nn.Sequential(nn.Linear(2, 12), nn.LeakyReLU(0.2), nn.Linear(12, 1))
    return G, C


def draws(seed):
    g = torch.Generator().manual_seed(seed)
    return g, (lambda n: torch.randn(n, 2, generator=g) * 0.5 + 1.0), (lambda n: torch.randn(n, NZ, generator=g))


def ours(loss, n_critic, reuse, steps):
    G, C = tiny_pair()
    g, real, noise = draws(7)
    cfg = TrainConfig(loss=loss, n_critic=n_critic, reuse_fakes=reuse, batch_size=B, device="cpu",
                      lr_g=1e-2, lr_c=1e-2, lam=1.0)
    t = Trainer(cfg, G, C, real, noise, rng=g)
    t.step(steps)
    return G, C


def by_hand(loss, n_critic, steps):
    """The notes' loop: one G(z) per critic iteration; the generator reuses the last one."""
    G, C = tiny_pair()
    g, sample_real, sample_noise = draws(7)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-2, betas=(0.5, 0.9))
    opt_c = torch.optim.Adam(C.parameters(), lr=1e-2, betas=(0.5, 0.9))
    for _ in range(steps):
        for _ in range(n_critic):
            real = sample_real(B)
            fake = G(sample_noise(B))
            if loss == "gan":
                err_c = F.softplus(-C(real)).mean() + F.softplus(C(fake.detach())).mean()
            else:
                # one forward on real and fake together, as the trainer does for a critic without batch
                # norm: Adam's first steps are about lr * sign(grad), so float-level differences in
                # near-zero gradients would otherwise show
                f_real, f_fake = C(torch.cat((real, fake.detach()))).split(B)
                err_c = f_fake.mean() - f_real.mean() + gradient_penalty(C, real, fake.detach(), g)
            opt_c.zero_grad()
            err_c.backward()
            opt_c.step()
        err_g = F.softplus(-C(fake)).mean() if loss == "gan" else -C(fake).mean()
        opt_g.zero_grad()
        err_g.backward()
        opt_g.step()
    return G, C


def close(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.allclose(sa[k].float(), sb[k].float(), atol=1e-5, rtol=1e-4) for k in sa)


@pytest.mark.parametrize("loss, n_critic", [("gan", 1), ("wgan-gp", 3)])
def test_reuse_fakes_is_the_hand_written_dcgan_step(loss, n_critic):
    G1, C1 = ours(loss, n_critic, reuse=True, steps=4)
    G2, C2 = by_hand(loss, n_critic, steps=4)
    assert close(G1, G2) and close(C1, C2)  # batch-norm running stats too: one G forward per iteration
    G3, _ = ours(loss, n_critic, reuse=False, steps=4)  # fresh noise: another run, so the check can fail
    assert not close(G3, G2)


def test_reuse_fakes_does_not_change_the_critic_step():
    G1, C1 = ours("gan", 1, reuse=True, steps=1)
    G3, C3 = ours("gan", 1, reuse=False, steps=1)
    assert close(C1, C3)  # same draws up to the critic update; only the generator's noise differs
    assert not close(G1, G3)


def test_reuse_fakes_leaves_no_graph_or_grad_on_the_critic():
    G, C = tiny_pair()
    g, real, noise = draws(1)
    t = Trainer(TrainConfig(loss="gan", n_critic=2, reuse_fakes=True, batch_size=B, device="cpu"),
                G, C, real, noise, rng=g)
    t.step(3)
    assert all(p.requires_grad for p in C.parameters())
    assert all(p.grad is not None for p in G.parameters())


def test_divergence_still_rolls_back_with_reused_fakes():
    t = make_toy_trainer(ToyConfig(width=16, depth=2, batch_size=32, device="cpu", loss="gan", n_critic=1,
                                   reuse_fakes=True))
    t.step(5)
    good = copy.deepcopy(t.generator.state_dict())
    with torch.no_grad():
        next(t.critic.parameters())[0, 0] = float("nan")
    with pytest.raises(Diverged, match="rolled back to step 5"):
        t.step(3)
    assert t.step_count == 5
    assert all(torch.equal(v, good[k]) for k, v in t.generator.state_dict().items())
    assert all(torch.isfinite(p).all() for p in t.critic.parameters())
    t.step(2)  # and it trains on afterwards
    assert t.step_count == 7


def test_defaults_and_validation():
    assert TrainConfig().reuse_fakes is False and ToyConfig().reuse_fakes is False
    assert ImageConfig.for_loss(loss="gan").reuse_fakes is True
    assert ImageConfig.for_loss(loss="wgan-gp").reuse_fakes is False and ImageConfig.for_loss(loss="wgan").reuse_fakes is False
    assert ImageConfig.for_loss(loss="gan", reuse_fakes=False).reuse_fakes is False
    assert ImageConfig().loss == "gan" and ImageConfig().beta2 == 0.999  # DCGAN's Adam
    assert ImageConfig.for_loss(loss="wgan-gp").beta2 == 0.9 and ImageConfig.for_loss(loss="gan", beta2=0.9).beta2 == 0.9
    with pytest.raises(ValueError, match="reuse_fakes"):
        TrainConfig(reuse_fakes="yes").validate()
