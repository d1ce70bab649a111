"""The Lipschitz health numbers: hand-checked on tiny critics, and the WGAN-GP paper's Figure 1b
property on a seeded run of deep critics."""
import numpy as np
import pytest
import torch
from torch import nn

from explorer.depth import DepthConfig, make_depth_runs
from explorer.lipschitz import diagnose, fraction_at_bound, layer_grad_norms, weight_histogram


def identity_critic(scale2: float) -> nn.Sequential:
    """2 -> 2 -> 2 -> 1 ReLU critic: W1 = I, W2 = scale2 * I, w_out = (1, 1), no biases."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 2, bias=False), nn.ReLU(),
                        nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[2].weight.copy_(scale2 * torch.eye(2))
        net[4].weight.copy_(torch.ones(1, 2))
    return net


def test_per_layer_norms_equal_a_hand_computation():
    # L = mean f(fake) - mean f(real). Every ReLU is active (positive inputs), so dL/dh2 is w_out / n on
    # each fake row and -w_out / n on each real row: ||dL/dh2||_F = |w_out| sqrt(1/n + 1/n) = sqrt(2) sqrt(2/4) = 1
    # with n = 4; and dL/dh1 = dL/dh2 W2 = 3 dL/dh2: norm 3.
    critic = identity_critic(3.0)
    real, fake = torch.rand(4, 2) + 0.5, torch.rand(4, 2) + 0.1
    assert layer_grad_norms(critic, real, fake) == pytest.approx([3.0, 1.0], rel=1e-6)


def test_a_dead_relu_stops_the_gradient():
    critic = identity_critic(1.0)
    real, fake = -torch.rand(4, 2) - 0.5, -torch.rand(4, 2) - 0.5     # all negative: every unit is off
    # The last hidden layer's output still gets w_out / n (norm 1, as above); its ReLUs are off, so
    # nothing passes further back to the first layer.
    assert layer_grad_norms(critic, real, fake) == pytest.approx([0.0, 1.0])


def test_fraction_at_the_bound_and_the_weight_histogram_match_the_weights():
    critic = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
    c = 0.05
    with torch.no_grad():
        critic[0].weight.copy_(torch.tensor([[c, -c, 0.0, 0.01]] * 4))        # 8 of 16 at the bound
        critic[0].bias.zero_()
        critic[2].weight.copy_(torch.tensor([[c, c, 0.02, -c]]))              # 3 of 4
        critic[2].bias.fill_(0.01)
    assert fraction_at_bound(critic, c) == pytest.approx((8 + 3) / (16 + 4 + 4 + 1))
    counts, edges = weight_histogram(critic, bins=21, clip=c)
    assert counts.sum() == 20 and edges[0] == pytest.approx(-1.05 * c) and edges[-1] == pytest.approx(1.05 * c)
    assert counts[0] == 4 + 1 and counts[-1] == 4 + 2                    # the piles at -c and +c


def test_the_diagnosis_says_what_is_wrong():
    flat, vanishing, exploding = [0.1] * 6, [1e-9, 1e-7, 1e-5, 1e-3, 1e-2, 0.1], [1e6, 1e4, 1e2, 1, 0.1, 0.1]
    assert "vanish" in diagnose("wgan", 0, 0.001, np.full(9, 1e-4), vanishing, 0.9)
    assert "too small" in diagnose("wgan", 0, 0.001, np.full(9, 1e-4), vanishing, 0.9)
    assert "explode" in diagnose("wgan", 0, 0.1, np.full(9, 50.0), exploding, 0.8)
    assert "near 1" in diagnose("wgan-gp", 10, 0.01, np.full(9, 1.05), flat, None)
    assert "is λ 0" in diagnose("wgan-gp", 0.0, 0.01, np.full(9, 0.01), flat, None)
    assert "not caught up" in diagnose("wgan-gp", 10.0, 0.01, np.full(9, 3.0), flat, None)
    assert "not asked" in diagnose("gan", 0, 0.01, np.full(9, 3.0), flat, None)
    assert "diverged" in diagnose("wgan", 0, 0.01, np.full(9, np.nan), flat, None)


def test_deep_critics_show_figure_1b_after_a_short_seeded_run():
    """12 hidden layers, 100 critic steps: with clipping the gradient changes by orders of magnitude
    from the last hidden layer to the first (vanishing for c = 0.001, exploding for c = 0.1); with the
    penalty it stays level (the paper's property)."""
    torch.manual_seed(0)
    runs = make_depth_runs(DepthConfig(depth=12, width=128, batch_size=256, lr=1e-3, seed=0, n=128, grid=8))
    runs.step(100)
    panels = dict(zip(runs.labels, runs.snapshot().panels))
    big, mid, small = (panels[f"clipping, c = {c:g}"].lipschitz["layers"] for c in (0.1, 0.01, 0.001))
    gp = panels["gradient penalty, λ = 10"].lipschitz["layers"]
    assert len(gp) == 12
    assert big[0] / big[-1] > 1e3                              # explodes towards the input
    assert small[0] / small[-1] < 1e-6 and mid[0] / mid[-1] < 1e-3   # vanishes
    # Under the penalty the hidden layers past the first stay within a factor of 10 of each other; the
    # first, which reads the 2-D input directly, sits higher (about 20x here), still far from the
    # clipped critics' many orders of magnitude.
    assert max(gp[1:]) / min(gp[1:]) < 10
    assert max(gp) / min(gp) < 100
    assert panels["clipping, c = 0.01"].lipschitz["at_bound"] > 0.3   # the weights pile up at ±c
    assert panels["gradient penalty, λ = 10"].lipschitz["at_bound"] is None
