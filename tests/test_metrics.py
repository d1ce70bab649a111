"""Metrics on point sets with known answers: exact W1, modes / high quality, critic fields, snapshot."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from explorer.critic_field import critic_field, critic_push
from explorer.metrics import mode_stats, w1_exact, w1_floor
from explorer.toy_data import make_source
from explorer import compare, toy_training
from explorer.toy_training import ToyConfig, ToySnapshot, make_toy_trainer, toy_snapshot


def test_w1_of_a_translated_cloud_is_the_shift_length():
    a = np.random.default_rng(0).normal(size=(200, 2))
    assert w1_exact(a, a + [3.0, 4.0]) == pytest.approx(5.0, rel=1e-9)


def test_w1_small_hand_answers():
    assert w1_exact([[0, 0], [1, 0]], [[0, 1], [1, 1]]) == pytest.approx(1.0)
    # half the mass moves 1 to the left, half 1 to the right (unequal sample counts)
    assert w1_exact([[0, 0]], [[1, 0], [-1, 0]]) == pytest.approx(1.0)
    # Euclidean, not squared: a shift of 2 costs 2, not 4
    assert w1_exact([[0, 0], [0, 1]], [[2, 0], [2, 1]]) == pytest.approx(2.0)
    assert w1_exact(torch.zeros(3, 2), torch.zeros(3, 2)) == 0.0


@pytest.mark.parametrize("a, b, message", [
    ([[0, float("nan")]], [[0, 0]], "NaN"),
    (np.zeros((0, 2)), [[0, 0]], "non-empty"),
    ([[0, 0]], [[0, 0, 0]], "same dimension"),
])
def test_w1_rejects_bad_points(a, b, message):
    with pytest.raises(ValueError, match=message):
        w1_exact(a, b)


def test_noise_floor_is_small_positive_and_cached():
    src = make_source("8gaussians")
    f = w1_floor(src, 500, seed=1)
    assert 0 < f < 0.3
    assert w1_floor(src, 500, seed=1) == f
    assert w1_floor(make_source("8gaussians"), 500, seed=1) == f   # the distribution's, not one source object's
    assert w1_floor(src, 2000, seed=1) < f  # more samples, lower floor


def test_noise_floor_is_the_mean_over_pairs_of_real_samples():
    src = make_source("ring", 0.3)
    g = torch.Generator().manual_seed(3)
    by_hand = [w1_exact(src.sample(200, g), src.sample(200, g)) for _ in range(4)]
    assert w1_floor(src, 200, seed=3, pairs=4) == pytest.approx(np.mean(by_hand), rel=1e-12)
    assert w1_floor(src, 200, seed=3, pairs=1) == pytest.approx(by_hand[0], rel=1e-12)
    with pytest.raises(ValueError, match="at least one pair"):
        w1_floor(src, 200, pairs=0)


def test_noise_floor_over_pairs_scatters_less_than_one_pair():
    src = make_source("8gaussians")
    one = [w1_floor(src, 200, seed=s, pairs=1) for s in range(12)]
    eight = [w1_floor(src, 200, seed=s, pairs=8) for s in range(12)]
    assert np.std(eight) < 0.6 * np.std(one)


def test_the_floor_of_uploaded_points_is_kept_on_their_source():
    pts = np.random.default_rng(0).normal(size=(300, 2))
    a, b = make_source("points", points=pts), make_source("points", points=2.0 * pts)
    fa = w1_floor(a, 100, pairs=2)
    assert a.floor_cache and not b.floor_cache
    assert w1_floor(b, 100, pairs=2) == pytest.approx(2.0 * fa, rel=1e-6)   # b's own points, drawn alike


def test_mode_stats_known_point_sets():
    src = make_source("8gaussians")
    c, s = src.centres, src.std
    assert mode_stats(np.repeat(c, 10, axis=0), c, s) == (8, 1.0)          # all at the centres
    assert mode_stats(np.tile(c[2], (50, 1)) + 0.5 * s, c, s) == (1, 1.0)  # one cluster
    assert mode_stats(np.zeros((20, 2)), c, s) == (0, 0.0)                 # all in the hole
    half = np.concatenate([c[:4], np.full((4, 2), 5.0)])
    assert mode_stats(half, c, s) == (4, 0.5)
    edge = c[:1] + [[2.99 * s, 0.0], [3.01 * s, 0.0]]                      # 3 std boundary
    assert mode_stats(edge, c, s) == (1, 0.5)


def test_mode_stats_follows_veegan_a_mode_needs_a_high_quality_sample():
    c = np.array([[0.0, 0.0], [10.0, 0.0]])
    # a sample nearest to mode 2 but far from it captures nothing
    assert mode_stats([[0.0, 0.0], [6.0, 0.0]], c, std=0.1) == (1, 0.5)


def linear_critic(w=(1.0, -2.0), b=0.25):
    C = nn.Linear(2, 1)
    with torch.no_grad():
        C.weight.copy_(torch.tensor([w]))
        C.bias.fill_(b)
    return C


def test_critic_field_orientation_and_gradient_norm():
    vals, gn = critic_field(linear_critic(), lim=2.0, grid=5)
    axis = np.linspace(-2, 2, 5)
    want = axis[None, :] * 1.0 - 2.0 * axis[:, None] + 0.25  # axis 0 = y, axis 1 = x
    np.testing.assert_allclose(vals, want, atol=1e-6)
    np.testing.assert_allclose(gn, math.sqrt(5), rtol=1e-6)


def test_critic_push_is_the_gradient():
    pts = np.random.default_rng(1).normal(size=(7, 2))
    np.testing.assert_allclose(critic_push(linear_critic(), pts), np.tile([1.0, -2.0], (7, 1)), rtol=1e-6)
    C = nn.Sequential(nn.Linear(2, 1), nn.Tanh())  # against autograd on a curved critic
    x = torch.tensor(pts, dtype=torch.float32, requires_grad=True)
    C(x).sum().backward()
    np.testing.assert_allclose(critic_push(C, pts), x.grad.numpy(), rtol=1e-5)


def test_critic_field_leaves_weight_gradients_alone():
    C = linear_critic()
    critic_field(C, grid=4)
    critic_push(C, np.zeros((3, 2)))
    assert C.weight.grad is None


def test_toy_snapshot_contents():
    t = make_toy_trainer(ToyConfig(width=16, depth=2, batch_size=32, device="cpu"))
    t.step(2)
    s = toy_snapshot(t, t.source, n=64, grid=16)
    assert isinstance(s, ToySnapshot) and s.step == 2
    assert s.real.shape == s.fake.shape == s.push.shape == (64, 2)
    assert s.field.shape == s.grad_norm_field.shape == (16, 16)
    assert s.lim == 3.0 and len(s.history) == 2 and s.centres.shape == (8, 2)
    m = s.metrics
    assert m["n_modes"] == 8 and 0 <= m["modes"] <= 8 and 0 <= m["hq"] <= 1
    assert m["w1_exact"] == pytest.approx(w1_exact(s.fake, s.real))
    assert m["w1_floor"] > 0 and math.isfinite(m["w_est"])
    with torch.no_grad():
        f = t.critic(torch.as_tensor(s.real)).mean() - t.critic(torch.as_tensor(s.fake)).mean()
    assert m["w_est"] == pytest.approx(f.item(), rel=1e-5)
    assert m["gp_grad_norm_mean"] > 0 and m["gp_grad_norm_std"] >= 0
    s2 = toy_snapshot(t, t.source, n=64, grid=16)  # same trainer state, same frame
    np.testing.assert_array_equal(s.fake, s2.fake)
    np.testing.assert_array_equal(s.field, s2.field)


def test_toy_snapshot_without_modes():
    t = make_toy_trainer(ToyConfig(dataset="swissroll", width=8, depth=1, batch_size=16, device="cpu"))
    m = toy_snapshot(t, t.source, n=32, grid=8).metrics
    assert m["modes"] is None and m["hq"] is None and m["n_modes"] is None
    assert math.isfinite(m["w1_exact"])


def test_a_live_snapshot_measures_its_numbers_once_a_while(monkeypatch):
    t = make_toy_trainer(ToyConfig(width=16, depth=2, batch_size=32, device="cpu"))
    t.step(2)
    first = toy_snapshot(t, n=64, grid=8, measure=None)           # the first one always measures
    assert first.measured_at == 2
    monkeypatch.setattr(toy_training, "NUMBERS_EVERY_S", 1e9)    # not due again
    t.step(3)
    live = toy_snapshot(t, n=64, grid=8, measure=None)
    assert live.step == 5 and live.measured_at == 2 and live.metrics == first.metrics
    assert live.lipschitz == first.lipschitz
    assert not np.array_equal(live.fake, first.fake)                # the picture is this step's
    fresh = toy_snapshot(t, n=64, grid=8)                           # measure=True: now
    assert fresh.measured_at == 5 and fresh.metrics["w1_exact"] == pytest.approx(w1_exact(fresh.fake, fresh.real))
    np.testing.assert_array_equal(live.field, fresh.field)
    np.testing.assert_array_equal(live.push, fresh.push)
    monkeypatch.setattr(toy_training, "NUMBERS_EVERY_S", 0.0)     # due at once
    t.step(1)
    assert toy_snapshot(t, n=64, grid=8, measure=None).measured_at == 6


def test_lockstep_measures_every_panel_in_the_same_snapshot(monkeypatch):
    monkeypatch.setattr(compare, "NUMBERS_EVERY_S", 1e9)
    base = ToyConfig(width=16, depth=2, batch_size=32, device="cpu")
    runs = compare.make_runs(compare.preset_config(next(iter(compare.PRESETS)), base, strip_every=0, n=64, grid=8))
    runs.step(2)
    assert compare.take_snapshot(runs).measured_at == 2
    runs.step(3)
    live = compare.take_snapshot(runs)
    assert live.step == 5 and {p.measured_at for p in live.panels} == {2} and live.measured_at == 2
    still = compare.take_still_snapshot(runs)
    assert {p.measured_at for p in still.panels} == {5} and still.measured_at == 5
    assert still.metrics["w1_exact"] == [p.metrics["w1_exact"] for p in still.panels]
