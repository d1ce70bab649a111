"""explorer.distances: known answers, metric properties, trusted references (SciPy, POT), errors."""
import math

import numpy as np
import ot
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, wasserstein_distance

from explorer.choices import GROUNDS
from explorer.distances import emd, emd_plan, ground_matrix, js, kl, rubner_emd, summary, tv

RNG = np.random.default_rng(20240601)


def random_hist(n: int, zeros: float = 0.0) -> np.ndarray:
    h = RNG.random(n)
    h[RNG.random(n) < zeros] = 0.0
    h[RNG.integers(n)] += 0.1   # never all zero
    return h


# ----------------------------------------------------------------------------- known answers
def test_three_bin_example():
    p, q = [1 / 3] * 3, [0.2, 0.5, 0.3]
    assert tv(p, q) == pytest.approx(0.5 * (2 / 15 + 1 / 6 + 1 / 30), abs=1e-15)
    assert tv(p, q) == pytest.approx(1 / 6, abs=1e-15)
    expected_kl = sum(a * math.log(a / b) for a, b in zip(p, q))
    assert kl(p, q) == pytest.approx(expected_kl, abs=1e-15)
    assert kl(p, q, base=2) == pytest.approx(expected_kl / math.log(2), abs=1e-15)
    assert kl(q, p) == pytest.approx(sum(b * math.log(b / a) for a, b in zip(p, q)), abs=1e-15)
    # unit spacing: W1 = sum |CDF_P - CDF_Q| = |1/3 - 0.2| + |2/3 - 0.7|
    assert emd(p, q) == pytest.approx(2 / 15 + 1 / 30, abs=1e-12)
    # unnormalized P (1, 1, 1) gives the same numbers
    assert summary([1, 1, 1], q) == pytest.approx(summary(p, q), abs=1e-15)


def test_disjoint_supports():
    p, q = [0.5, 0.5, 0, 0], [0, 0, 0.25, 0.75]
    assert tv(p, q) == 1.0
    assert kl(p, q) == math.inf and kl(q, p) == math.inf
    assert js(p, q) == pytest.approx(math.log(2), abs=1e-15)
    assert js(p, q, base=2) == pytest.approx(1.0, abs=1e-15)
    # move 0.25 from 0 to 2, 0.25 from 0 to 3, 0.5 from 1 to 3
    assert emd(p, q) == pytest.approx(0.25 * 2 + 0.25 * 3 + 0.5 * 2, abs=1e-12)


def test_identical_histograms_are_at_distance_zero():
    p = random_hist(50, zeros=0.3)
    s = summary(p, 3 * p)
    for key in ("tv", "kl_pq", "kl_qp", "js", "js_distance", "emd"):
        assert s[key] == pytest.approx(0.0, abs=1e-12), key
    for ground in GROUNDS:
        assert emd(p, p, ground=ground, alpha=0.3) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 5, 17])
def test_shift_by_k_bins_gives_emd_k(k):
    n = 40
    p = np.zeros(n)
    p[3:9] = random_hist(6)
    q = np.roll(p, k)   # stays inside the grid: no wrap-around
    assert emd(p, q) == pytest.approx(k, abs=1e-12)
    assert emd(p, q, ground="sq") == pytest.approx(k * k, abs=1e-9)   # W2^2 of a pure shift
    assert emd(p, q, positions=0.5 * np.arange(n)) == pytest.approx(0.5 * k, abs=1e-12)


def test_rubner_pairs_l1_and_emd_disagree():
    # two spikes one bin apart vs. one spike moved far: same L1 (TV = 1), very different EMD
    near = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    far = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert tv(*near) == tv(*far) == 1.0
    assert emd(*near) == pytest.approx(1.0) and emd(*far) == pytest.approx(8.0)
    # the saturated ground distance saturates too: far moves cost at most 1
    assert emd(*far, ground="saturated", alpha=1.0) == pytest.approx(1 - math.exp(-8.0), abs=1e-12)


def test_ground_matrix_forms():
    x = np.array([0.0, 1.0, 3.0])
    d = np.abs(x[:, None] - x[None, :])
    np.testing.assert_allclose(ground_matrix(x, x, "abs"), d)
    np.testing.assert_allclose(ground_matrix(x, x, "sq"), d ** 2)
    np.testing.assert_allclose(ground_matrix(x, x, "saturated", 0.7), 1 - np.exp(-0.7 * d))


# ----------------------------------------------------------------------------- metric properties
@pytest.mark.parametrize("seed", range(5))
def test_metric_properties_on_random_histograms(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    p, q, r = (random_hist(n, zeros=0.3) for _ in range(3))
    for f in (tv, lambda a, b: js(a, b) ** 0.5, emd,
              lambda a, b: emd(a, b, ground="saturated", alpha=0.4)):
        assert f(p, q) >= 0
        assert f(p, q) == pytest.approx(f(q, p), abs=1e-12)                  # symmetry
        assert f(p, r) <= f(p, q) + f(q, r) + 1e-12                            # triangle inequality
    assert js(p, q) <= math.log(2) + 1e-15 and js(p, q, base=2) <= 1 + 1e-15
    assert kl(p, q) >= 0 and kl(q, p) >= 0
    s = summary(p, q, base=2)
    assert s["js_distance"] == pytest.approx(math.sqrt(s["js"]), abs=1e-15)


# ----------------------------------------------------------------------------- trusted references
@pytest.mark.parametrize("base", [math.e, 2.0])
def test_agrees_with_scipy(base):
    for _ in range(10):
        n = int(RNG.integers(2, 300))
        p, q = random_hist(n), random_hist(n, zeros=0.2)
        p_, q_ = p / p.sum(), q / q.sum()
        assert kl(q, p, base) == pytest.approx(entropy(q_, p_, base=base), rel=1e-12, abs=1e-15)
        assert kl(p, q, base) == pytest.approx(entropy(p_, q_, base=base), rel=1e-12, abs=1e-15)
        assert math.sqrt(js(p, q, base)) == pytest.approx(jensenshannon(p, q, base=base), abs=1e-12)
        x = RNG.normal(size=n)   # positions need not be sorted or equally spaced
        assert emd(p, q, positions=x) == pytest.approx(wasserstein_distance(x, x, p, q), abs=1e-12)


def test_tiny_masses_next_to_large_ones():
    # bins spanning 300 orders of magnitude: log ratios must not round to +-inf or lose the sum
    for _ in range(10):
        p, q = 10.0 ** RNG.uniform(-300, 0, 60), 10.0 ** RNG.uniform(-300, 0, 60)
        assert js(p, q) == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-12)
        assert kl(p, q) == pytest.approx(entropy(p, q), rel=1e-12)
    assert js([1, 1e-300], [1e-300, 1]) == pytest.approx(math.log(2), rel=1e-15)


@pytest.mark.parametrize("ground", ["abs", "sq"])
def test_one_d_solver_equals_network_simplex(ground):
    for n in (2, 7, 50, 200):
        p, q = random_hist(n, zeros=0.3), random_hist(n, zeros=0.3)
        x = np.sort(RNG.normal(size=n)) * 3
        cost = ground_matrix(x, x, ground)
        simplex = ot.emd2(p / p.sum(), q / q.sum(), cost, numItermax=10 ** 7)
        assert emd(p, q, positions=x, ground=ground) == pytest.approx(simplex, abs=1e-9)
        plan = emd_plan(p, q, positions=x, ground=ground)
        assert np.sum(plan * cost) == pytest.approx(simplex, abs=1e-9)   # the plan is optimal too


@pytest.mark.parametrize("ground", GROUNDS)
def test_plan_marginals_and_cost(ground):
    n = 60
    p, q = random_hist(n, zeros=0.4), random_hist(n, zeros=0.4)
    plan = emd_plan(p, q, ground=ground, alpha=0.2)
    assert plan.shape == (n, n) and plan.min() >= 0
    np.testing.assert_allclose(plan.sum(axis=1), p / p.sum(), atol=1e-12)
    np.testing.assert_allclose(plan.sum(axis=0), q / q.sum(), atol=1e-12)
    x = np.arange(n, dtype=float)
    assert np.sum(plan * ground_matrix(x, x, ground, 0.2)) == pytest.approx(
        emd(p, q, ground=ground, alpha=0.2), abs=1e-12)


def test_saturated_emd_matches_pot_network_simplex():
    p, q = random_hist(80), random_hist(80, zeros=0.5)
    x = np.arange(80.0)
    expected = ot.emd2(p / p.sum(), q / q.sum(), 1 - np.exp(-0.05 * np.abs(x[:, None] - x)))
    assert emd(p, q, ground="saturated", alpha=0.05) == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------- Rubner, unequal mass
def test_rubner_emd_unequal_masses_hand_checked():
    # h (0.5) is the lighter one: all of it comes from g's nearest mass, bin 1, two bins away
    assert rubner_emd([1, 1, 0, 0], [0, 0, 0, 0.5]) == pytest.approx(2.0)
    # flow = 2: move one unit 0 -> 1 (cost 1) and one unit 0 -> 2 (cost 2), divided by flow 2
    assert rubner_emd([3, 0, 0, 0], [0, 1, 1, 0]) == pytest.approx(1.5)
    # flow = 1: g's mass at bin 2 matches h exactly; the surplus at bin 0 stays
    assert rubner_emd([1, 0, 1], [0, 0, 1]) == pytest.approx(0.0, abs=1e-15)
    # symmetric in which side is heavier
    assert rubner_emd([0, 0, 0, 0.5], [1, 1, 0, 0]) == pytest.approx(2.0)
    # saturated ground: one unit over distance 2
    assert rubner_emd([0, 1, 0], [0, 0, 3], ground="saturated", alpha=2.0) == pytest.approx(
        1 - math.exp(-2.0), abs=1e-12)


def test_rubner_emd_equals_emd_for_equal_masses():
    p, q = random_hist(30), random_hist(30)
    q = q * p.sum() / q.sum()
    assert rubner_emd(p, q) == pytest.approx(emd(p, q), abs=1e-9)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("p, q, words", [
    ([-0.1, 1], [1, 1], "negative"),
    ([1e308, 1e308], [1, 1], "largest float"),
    ([float("nan"), 1], [1, 1], "finite"),
    ([float("inf"), 1], [1, 1], "finite"),
    ([], [], "empty"),
    ([0, 0], [1, 1], "all zero"),
    ([1, 2], [1, 2, 3], "same length"),
    (["a", 1], [1, 1], "numbers"),
    ([[1, 2]], [[1, 2]], "flat"),
])
def test_bad_histograms_raise_a_sentence(p, q, words):
    # (Rubner's EMD compares signatures of any two sizes: "same length" does not apply to it.)
    for f in (tv, kl, js, emd, emd_plan, summary) + ((rubner_emd,) if words != "same length" else ()):
        with pytest.raises(ValueError, match=words):
            f(p, q)
        if len(p) == len(q) and words != "empty":
            with pytest.raises(ValueError, match=words):   # the second argument is checked as well
                f(q, p)


@pytest.mark.parametrize("kwargs, words", [
    ({"ground": "euclid"}, "Unknown ground"),
    ({"ground": "saturated", "alpha": 0.0}, "alpha"),
    ({"ground": "saturated", "alpha": float("nan")}, "alpha"),
    ({"positions": [0, 1]}, "same length"),
    ({"positions": [0, float("nan"), 2]}, "finite"),
    ({"positions": [0, "x", 2]}, "numbers"),
])
def test_bad_options_raise_a_sentence(kwargs, words):
    for f in (emd, emd_plan, rubner_emd, summary):
        with pytest.raises(ValueError, match=words):
            f([1, 2, 3], [3, 2, 1], **kwargs)


@pytest.mark.parametrize("base", [1, 0, -2, float("inf")])
def test_bad_log_base(base):
    for f in (kl, js, summary):
        with pytest.raises(ValueError, match="log base"):
            f([1, 2], [2, 1], base=base)


def test_error_message_names_the_histogram():
    with pytest.raises(ValueError, match=r"^Q has a negative mass \(-1\) at bin 1"):
        summary([1, 1], [1, -1])


def test_rubner_emd_takes_signatures_of_different_sizes_with_their_own_positions():
    assert rubner_emd([.5, 0, .3, .2], [0, .4, .1]) == pytest.approx(0.8, abs=1e-12)   # bins 0..3 and 0..2
    # The same h placed at 10, 11, 12: the nearest mass of g goes, .2 from 3 and .2 from 2 to 11, .1 from 2 to 12.
    assert rubner_emd([.5, 0, .3, .2], [0, .4, .1], positions_h=[10, 11, 12]) == pytest.approx(
        (0.2 * 8 + 0.2 * 9 + 0.1 * 10) / 0.5, abs=1e-9)
    assert rubner_emd([1], [1], positions=[0.0], positions_h=[2.5]) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="same length as h"):
        rubner_emd([1, 1], [1, 1, 1], positions_h=[0, 1])


def test_an_exact_solve_that_stops_early_is_never_shown_as_exact(monkeypatch):
    from explorer import distances, metrics
    from explorer.distances import NotConverged
    rng = np.random.default_rng(0)
    a, b = rng.random((60, 2)), rng.random((60, 2)) + 1
    monkeypatch.setattr(metrics, "NUM_ITER_MAX", 3)
    with pytest.raises(NotConverged, match="W1"):
        metrics.w1_exact(a, b)
    monkeypatch.setattr(distances, "_MAX_ITER", 3)
    p, q = rng.random(40), rng.random(40)
    with pytest.raises(NotConverged, match="EMD"):
        emd(p, q, ground="saturated")
    with pytest.raises(NotConverged, match="Rubner"):
        rubner_emd(p, q * 3)
