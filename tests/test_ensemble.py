"""Batched ensemble training equals training each member alone with the project's Trainer."""
from dataclasses import replace

import pytest
import torch

from explorer import training

from explorer.ensemble import Ensemble, grid_configs
from explorer.training import ToyConfig, make_toy_trainer

TINY = ToyConfig(width=16, depth=2, batch_size=32, n_critic=2, device="cpu")


@pytest.fixture
def float64():
    """Adam divides by sqrt(v): on weights whose gradient is ~0 a float32 round-off difference (a
    batched matmul sums in another order) grows to a full lr-sized step. In float64 the same
    comparison holds to ~1e-10, which shows the two compute the same thing from the same draws."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _params(G, C):
    return [p.detach() for p in list(G.parameters()) + list(C.parameters())]


def _max_diff(ens, k, trainer):
    return max(float((a - b).abs().max()) for a, b in zip(_params(*ens.modules(k)),
                                                          _params(trainer.generator, trainer.critic)))


@pytest.mark.parametrize("loss,field,values", [
    ("wgan-gp", "n_critic", [1, 3]),       # members with different critic iterations (masked passes)
    ("wgan-gp", "lam", [0.1, 10.0]),
    ("wgan", "clip", [0.1, 0.01]),
    ("gan", "lr_c", [1e-3, 3e-4]),
])
def test_members_match_lone_trainers(float64, loss, field, values):
    cfgs = grid_configs(replace(TINY, loss=loss), field, values, "seed", [0, 5])
    ens = Ensemble(cfgs)
    ens.step(12)
    for k, cfg in enumerate(cfgs):
        lone = make_toy_trainer(replace(cfg))
        lone.step(12)
        assert _max_diff(ens, k, lone) < 1e-9, (k, cfg)
        mine, theirs = ens.histories[k][-1], lone.history[-1]
        for key in ("loss_c", "loss_g", "w_est"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-12)


def test_float32_members_track_lone_trainers(monkeypatch):
    """In float32, a few steps: outputs of the networks agree to float round-off. The lone trainers take
    the autograd path, whose products round like the ensemble's; the CPU fast path sums in another order,
    and Adam's first steps (about lr * sign(grad)) magnify that to ~1e-4 (tests/test_fast_mlp.py)."""
    monkeypatch.setattr(training, "FAST_CPU", False)
    cfgs = grid_configs(TINY, "lam", [1.0, 10.0], "n_critic", [1, 2])
    ens = Ensemble(cfgs)
    ens.step(3)
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    for k, cfg in enumerate(cfgs):
        lone = make_toy_trainer(replace(cfg))
        lone.step(3)
        G, C = ens.modules(k)
        with torch.no_grad():
            assert torch.allclose(G(z), lone.generator(z), atol=1e-4)
            assert torch.allclose(C(z), lone.critic(z), atol=1e-4)


def test_same_seed_members_start_identical_and_differ_only_by_their_field():
    cfgs = grid_configs(TINY, "lam", [0.0, 10.0])
    ens = Ensemble(cfgs)
    assert _max_diff(ens, 0, _as_trainer(ens, 1)) == 0.0
    ens.step(5)
    assert _max_diff(ens, 0, _as_trainer(ens, 1)) > 0.0


def _as_trainer(ens, k):
    class T:
        pass
    t = T()
    t.generator, t.critic = ens.modules(k)
    return t


def test_validation_messages():
    with pytest.raises(ValueError, match="differ only"):
        Ensemble([TINY, replace(TINY, width=32)])
    with pytest.raises(ValueError, match="grid can vary"):
        grid_configs(TINY, "width", [16, 32])
    with pytest.raises(ValueError, match="n_critic"):
        Ensemble(grid_configs(TINY, "n_critic", [0, 1]))
    with pytest.raises(ValueError, match="whole number"):
        Ensemble([TINY]).step(0)


def test_diverged_member_is_frozen_and_others_go_on():
    cfgs = grid_configs(replace(TINY, loss="wgan"), "lr_c", [1e-3, 1e-3])
    ens = Ensemble(cfgs)
    ens.step(2)
    with torch.no_grad():
        ens.c_params[0][1].fill_(float("nan"))   # member 1 is broken
    ens.step(3)
    assert ens.diverged[0] is None and "diverged" in ens.diverged[1]
    assert ens.step_count == 5 and len(ens.histories[0]) == 5
    assert all(torch.isfinite(p).all() for p in _params(*ens.modules(1)))   # rolled back to step 2


def test_hot_update_of_one_member():
    ens = Ensemble(grid_configs(TINY, "lam", [1.0, 1.0]))
    ens.update(member=1, lam=5.0, n_critic=1)
    assert ens.cfgs[1].lam == 5.0 and ens.cfgs[0].lam == 1.0 and float(ens.lam[1]) == 5.0
    with pytest.raises(ValueError):
        ens.update(width=3)
    ens.step(2)
    assert ens.step_count == 2
