"""The critic's values and input gradients: the closed form for ReLU MLPs against autograd."""
import pytest
import torch
from torch import nn

from explorer.critic_field import lattice, lattice_field, values_and_grads
from explorer.models import MLPCritic


def autograd_values_and_grads(critic: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    out = critic(x).reshape(-1)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


@pytest.mark.parametrize("width, depth", [(8, 1), (16, 2), (32, 3), (64, 5)])
def test_closed_form_values_and_gradients_equal_autograd(width, depth):
    torch.manual_seed(width + depth)
    critic = MLPCritic(width=width, depth=depth).double()
    x = torch.randn(300, 2, dtype=torch.float64) * 2
    values, grads = values_and_grads(critic, x)
    want_values, want_grads = autograd_values_and_grads(critic, x)
    torch.testing.assert_close(values, want_values, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads, want_grads, rtol=1e-12, atol=1e-12)
    assert all(p.grad is None for p in critic.parameters())   # no weight gradients left behind


def test_lattice_field_matches_autograd_in_float32():
    torch.manual_seed(0)
    critic = MLPCritic(width=128, depth=3)
    points = lattice(3.0, 40, "cpu")
    values, norms = lattice_field(critic, points, 40, chunk=512)
    want_values, want_grads = autograd_values_and_grads(critic, points)
    torch.testing.assert_close(torch.as_tensor(values).reshape(-1), want_values, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.as_tensor(norms).reshape(-1), want_grads.norm(dim=1), rtol=1e-5, atol=1e-6)


def test_other_critics_go_through_autograd():
    torch.manual_seed(1)
    critic = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))   # not a ReLU MLP
    x = torch.randn(50, 2)
    values, grads = values_and_grads(critic, x)
    # d/dx of w2 . tanh(W1 x + b1) + b2 = W1^T (w2 * (1 - tanh^2))
    h = torch.tanh(x @ critic[0].weight.T + critic[0].bias)
    want = ((1 - h ** 2) * critic[2].weight) @ critic[0].weight
    torch.testing.assert_close(grads, want.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(values, critic(x).reshape(-1).detach())
