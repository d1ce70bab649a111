"""MLP generator and critic: shapes, configurable width/depth, reproducible initialisation."""
import math

import pytest
import torch
from torch import nn

from explorer.models import MLPCritic, MLPGenerator, init_linear


def linears(m):
    return [x for x in m.modules() if isinstance(x, nn.Linear)]


def test_shapes_and_one_score_per_sample():
    G, C = MLPGenerator(noise_dim=3, width=16, depth=2), MLPCritic(width=16, depth=2)
    z = torch.randn(7, 3)
    assert G(z).shape == (7, 2)
    assert C(G(z)).shape == (7, 1)  # never averaged over the batch inside the network


def test_width_and_depth_are_honoured():
    C = MLPCritic(width=32, depth=4)
    layers = linears(C)
    assert len(layers) == 5
    assert [l.out_features for l in layers] == [32, 32, 32, 32, 1]
    assert sum(isinstance(m, nn.ReLU) for m in C.modules()) == 4
    default = MLPGenerator()  # the lecture notes: 3 hidden ReLU layers of 512, 2-D noise
    assert [l.out_features for l in linears(default)] == [512, 512, 512, 2] and linears(default)[0].in_features == 2


@pytest.mark.parametrize("width, depth", [(0, 3), (8, 0)])
def test_bad_sizes_rejected(width, depth):
    with pytest.raises(ValueError, match="width"):
        MLPCritic(width=width, depth=depth)


def test_init_from_a_private_generator_is_reproducible_and_in_bounds():
    a = init_linear(MLPCritic(width=16), torch.Generator().manual_seed(5))
    b = init_linear(MLPCritic(width=16), torch.Generator().manual_seed(5))
    c = init_linear(MLPCritic(width=16), torch.Generator().manual_seed(6))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    for layer in linears(a):
        bound = 1 / math.sqrt(layer.in_features)
        assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
    # drawing the weights leaves the global RNG alone (several trainers stay reproducible)
    fresh = MLPCritic(width=4)
    state = torch.random.get_rng_state()
    init_linear(fresh, torch.Generator().manual_seed(0))
    assert torch.equal(torch.random.get_rng_state(), state)
