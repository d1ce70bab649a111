"""The parallel-lines experiment: samples, exact values, measured values, the clipped critic."""
import math

import numpy as np
import pytest
import torch

from explorer.lines import (CriticConfig, LineCritic, LinesConfig, analytic_distances, analytic_gradients,
                            critic_estimates, fit_kappa, histogram_distances, kappa_bound, lines_curves,
                            lines_point, run_critic_estimate, sample_lines, sample_w, train_critic)

LOG2 = math.log(2)


# ----------------------------------------------------------------------------- samples
@pytest.mark.parametrize("theta", [-1.0, -0.3, 0.0, 0.7, 1.0])
@pytest.mark.parametrize("paired", [True, False])
def test_samples_lie_on_their_segments(theta, paired):
    p0, pt = sample_lines(theta, 500, seed=3, paired=paired)
    assert p0.shape == pt.shape == (500, 2)
    assert np.all(p0[:, 0] == 0.0) and np.all(pt[:, 0] == theta)
    for cloud in (p0, pt):
        assert cloud[:, 1].min() >= 0.0 and cloud[:, 1].max() <= 1.0
        assert abs(cloud[:, 1].mean() - 0.5) < 0.05  # uniform on [0, 1]
    assert np.array_equal(p0[:, 1], pt[:, 1]) == paired


def test_samples_are_seeded():
    a, b = sample_lines(0.4, 50, seed=7), sample_lines(0.4, 50, seed=7)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], sample_lines(0.4, 50, seed=8)[0])


# ----------------------------------------------------------------------------- analytic values
@pytest.mark.parametrize("theta", [-1.0, -0.25, 1e-9, 0.5, 1.0])
def test_analytic_values_off_zero(theta):
    d = analytic_distances(theta)
    assert d == {"tv": 1.0, "kl": math.inf, "js": LOG2, "w": abs(theta)}


def test_analytic_values_at_zero_and_in_bits():
    assert analytic_distances(0.0) == {"tv": 0.0, "kl": 0.0, "js": 0.0, "w": 0.0}
    bits = analytic_distances(-0.5, base=2)
    assert bits["js"] == pytest.approx(1.0, abs=1e-15) and bits["tv"] == 1.0 and bits["w"] == 0.5


def test_analytic_gradients():
    assert analytic_gradients(0.4)["w"] == 1.0 and analytic_gradients(-0.4)["w"] == -1.0
    assert analytic_gradients(0.4)["tv"] == 0.0 and analytic_gradients(-0.9)["js"] == 0.0
    assert math.isnan(analytic_gradients(0.4)["kl"])  # inf on both sides: no derivative
    assert all(math.isnan(v) for v in analytic_gradients(0.0).values())  # jump / kink at 0


# ----------------------------------------------------------------------------- measured values
def test_sample_w_known_answer():
    assert sample_w(np.array([[0.0, 0.0], [0.0, 1.0]]), np.array([[3.0, 1.0], [3.0, 0.0]])) == pytest.approx(3.0)
    # Euclidean, not squared: a single point moved by (3, 4) costs 5
    assert sample_w(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])) == pytest.approx(5.0)


@pytest.mark.parametrize("theta", [-0.8, -0.2, 0.0, 0.35, 1.0])
def test_measured_w_close_to_abs_theta(theta):
    n = 300
    p0, pt = sample_lines(theta, n, seed=11, paired=False)
    w = sample_w(p0, pt)
    # W >= |theta| on any two clouds (each pair is at least |theta| apart horizontally); the excess
    # is bounded by the 1-D W1 between the two samples' heights, about 1/sqrt(n) for uniforms
    assert abs(theta) - 1e-12 <= w <= abs(theta) + 2.0 / math.sqrt(n)
    # paired samples are translates of each other: W is |theta| exactly
    assert sample_w(*sample_lines(theta, n, seed=11)) == pytest.approx(abs(theta), abs=1e-12)


@pytest.mark.parametrize("theta", [-0.3, 0.04, 0.3])
def test_histogram_hides_the_gap_when_bins_are_wider(theta):
    p0, pt = sample_lines(theta, 400, seed=1)
    d = histogram_distances(p0, pt, bin_width=abs(theta) * 1.5)
    assert d == {"tv": 0.0, "kl": 0.0, "js": 0.0}


@pytest.mark.parametrize("theta", [-0.3, 0.04, 0.3, 1.0])
@pytest.mark.parametrize("paired", [True, False])
def test_histogram_reveals_the_jump_when_bins_are_narrower(theta, paired):
    p0, pt = sample_lines(theta, 400, seed=1, paired=paired)
    for h in (abs(theta) * 0.5, abs(theta)):  # |theta| == h: the line starts the next column
        d = histogram_distances(p0, pt, bin_width=h)
        assert d["tv"] == pytest.approx(1.0, abs=1e-12) and d["js"] == pytest.approx(LOG2, abs=1e-12)
        assert d["kl"] == math.inf
    assert histogram_distances(p0, pt, abs(theta) / 2, base=2)["js"] == pytest.approx(1.0, abs=1e-12)


def test_histogram_of_independent_samples_shows_only_noise():
    p0, pt = sample_lines(0.05, 2000, seed=2, paired=False)
    d = histogram_distances(p0, pt, bin_width=0.25)  # one column, 4 rows
    assert 0.0 < d["tv"] < 0.05 and 0.0 < d["js"] < 0.01


def test_curves_over_theta():
    cfg = LinesConfig(n=60, bin_width=0.2, n_thetas=21)
    c = lines_curves(cfg)
    assert c.thetas[0] == -1.0 and c.thetas[-1] == 1.0 and c.thetas[10] == 0.0
    np.testing.assert_allclose(c.measured["w"], np.abs(c.thetas), atol=1e-12)
    hidden = np.abs(c.thetas) < 0.2 - 1e-9
    assert np.all(c.measured["tv"][hidden] == 0.0)
    np.testing.assert_allclose(c.measured["tv"][~hidden], 1.0, atol=1e-12)
    assert np.all(np.isinf(c.measured["kl"][~hidden]))
    assert np.all(np.isinf(c.analytic["kl"][c.thetas != 0]))
    np.testing.assert_allclose(c.w_slope[:9], -1.0, atol=1e-9)
    np.testing.assert_allclose(c.w_slope[-9:], 1.0, atol=1e-9)
    assert np.array_equal(c.gradients["w"][c.thetas > 0], np.ones(10))


def test_point_matches_curve_functions():
    pt = lines_point(LinesConfig(theta=-0.3, n=80, bin_width=0.1, base=2))
    assert pt.analytic == analytic_distances(-0.3, base=2)
    assert pt.measured["w"] == pytest.approx(0.3, abs=1e-12)
    assert pt.measured["js"] == pytest.approx(1.0, abs=1e-12)
    assert pt.gradients["w"] == -1.0


# ----------------------------------------------------------------------------- the clipped critic
def test_fit_kappa_least_squares_through_origin():
    assert fit_kappa([-1, 0.5], [0.2, 0.1]) == pytest.approx(0.2)
    assert fit_kappa([0, 1, 2], [0.0, 1.0, 1.0]) == pytest.approx(3 / 5)
    assert math.isnan(fit_kappa([0.0], [0.1]))
    assert kappa_bound(10, 0.5) == pytest.approx(0.625)


def test_critic_outputs_one_score_per_sample():
    critic = LineCritic(hidden=10, clip=0.5, generator=torch.Generator().manual_seed(0))
    assert critic(torch.rand(7, 2)).shape == (7,)


@pytest.mark.parametrize("c", [0.01, 0.1])
def test_clipping_keeps_weights_in_the_box(c):
    gen = torch.Generator().manual_seed(0)
    critic = LineCritic(hidden=10, clip=c, generator=gen)
    optimizer = torch.optim.RMSprop(critic.parameters(), lr=0.05)  # big steps, so the box matters
    train_critic(critic, optimizer, 0.8, steps=30, batch_size=32, clip=c, generator=gen)
    weights = torch.cat([p.detach().ravel() for p in critic.parameters()])
    c32 = torch.tensor(c, dtype=weights.dtype)  # c as the weights store it (float32)
    assert bool((weights.abs() <= c32).all())
    assert bool((weights.abs() == c32).any())  # the box was actually hit


def test_critic_estimate_grows_with_abs_theta():
    cfg = CriticConfig(thetas=(-0.9, -0.3, 0.0, 0.3, 0.9), iterations=40, batch_size=32, eval_samples=500)
    result = run_critic_estimate(cfg)
    assert result.finished and result.thetas == [-0.9, -0.3, 0.0, 0.3, 0.9]
    e = dict(zip(result.thetas, result.estimates))
    assert 0 < result.kappa <= kappa_bound(cfg.hidden, cfg.clip)
    assert e[0.9] > e[0.3] > abs(e[0.0]) and e[-0.9] > e[-0.3] > abs(e[0.0])
    # seeded: the same config gives the same kappa
    assert run_critic_estimate(cfg).kappa == result.kappa


def test_critic_progress_comes_in_chunks():
    cfg = CriticConfig(thetas=(0.5, 1.0), iterations=25, batch_size=16, eval_samples=100)
    steps = list(critic_estimates(cfg, chunk=10))
    assert [p.done for p in steps] == [10, 20, 25, 35, 45, 50]
    assert [len(p.thetas) for p in steps] == [0, 0, 1, 1, 1, 2]
    assert [p.finished for p in steps] == [False] * 5 + [True]
    assert math.isnan(steps[0].kappa) and steps[-1].kappa > 0


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, match", [
    (lambda: sample_lines(1.5, 10), "theta must be a number between -1 and 1"),
    (lambda: sample_lines(float("nan"), 10), "theta"),
    (lambda: analytic_distances(-2.0), "theta"),
    (lambda: sample_lines(0.5, 1), "sample size n must be a whole number between 2"),
    (lambda: sample_lines(0.5, 2.5), "sample size"),
    (lambda: sample_lines(0.5, float("inf")), "sample size"),
    (lambda: sample_lines(0.5, "100"), "sample size"),
    (lambda: lines_point(LinesConfig(n=0)), "sample size"),
    (lambda: lines_point(LinesConfig(bin_width=0.0)), "bin width must be a positive number"),
    (lambda: lines_curves(LinesConfig(bin_width=-0.1)), "bin width"),
    (lambda: histogram_distances(*sample_lines(0.5, 10), bin_width=float("inf")), "bin width"),
    (lambda: lines_point(LinesConfig(base=1.0)), "base"),
    (lambda: run_critic_estimate(CriticConfig(clip=0.0)), "clipping value c must be a positive"),
    (lambda: run_critic_estimate(CriticConfig(lr=-1.0)), "learning rate"),
    (lambda: run_critic_estimate(CriticConfig(iterations=0)), "number of iterations must be a whole number"),
    (lambda: run_critic_estimate(CriticConfig(hidden=0)), "hidden units"),
    (lambda: run_critic_estimate(CriticConfig(batch_size=1)), "batch size"),
    (lambda: run_critic_estimate(CriticConfig(thetas=(0.5, 3.0))), "theta"),
    (lambda: run_critic_estimate(CriticConfig(thetas=())), "at least one theta"),
])
def test_bad_input_raises_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
