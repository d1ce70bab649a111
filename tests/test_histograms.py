"""explorer.histograms: the Histograms page's pure helpers (its charts: tests/test_histogram_charts.py)."""
import math

import numpy as np
import pytest
from scipy.stats import norm

from explorer import histograms as H
from explorer.distances import emd, emd_plan, summary


def test_gaussian_mixture_matches_scipy_bin_integrals_including_far_tails():
    n, mu, sd = 80, 25.0, 3.0
    lo, hi = np.arange(n) - 0.5, np.arange(n) + 0.5
    # the reference integrates each tail on its own side, where it does not cancel
    ref = np.where(lo > mu, norm.sf(lo, mu, sd) - norm.sf(hi, mu, sd), norm.cdf(hi, mu, sd) - norm.cdf(lo, mu, sd))
    ref /= ref.sum()
    got = H.gaussian_mixture(n, [mu], [sd], [1.0])
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    assert got.min() > 0   # no far-tail bin rounded to exactly zero


def test_mixture_weights_and_generators():
    two = H.gaussian_mixture(100, [20, 70], [2, 2], [1, 3])
    assert two[:45].sum() == pytest.approx(0.25, abs=1e-9)
    assert H.uniform(5, 1, 3).tolist() == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3, 0])
    assert H.spikes(5, [0, 4, 4], [1, 1, 2]).tolist() == pytest.approx([0.25, 0, 0, 0, 0.75])
    assert H.parse_spikes("1:2, 3") == ([1, 3], [2.0, 1.0])


@pytest.mark.parametrize("call, words", [
    (lambda: H.gaussian_mixture(1, [0], [1], [1]), "between 2 and 1000"),
    (lambda: H.gaussian_mixture(10, [0], [0], [1]), "width"),
    (lambda: H.gaussian_mixture(10, [0], [1], [0]), "weights"),
    (lambda: H.gaussian_mixture(10, [1e6], [1], [1]), "no mass"),
    (lambda: H.uniform(10, 5, 2), "uniform range"),
    (lambda: H.spikes(10, [12], [1]), "between 0 and 9"),
    (lambda: H.spikes(10, [1], [-1]), "negative"),
    (lambda: H.parse_spikes("a:1"), "bin:mass"),
    (lambda: H.preset("nope"), "Unknown preset"),
])
def test_generator_errors(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_presets_known_answers():
    for name in H.PRESETS:
        p, q = H.preset(name)
        assert len(p) == len(q) and 2 <= len(p) <= H.MAX_BINS
    near, far = summary(*H.preset("Rubner 1: spikes moved one bin")), \
        summary(*H.preset("Rubner 2: one spike moved far"))
    assert near["tv"] == 1.0 and far["tv"] == 0.5        # L1 says the near pair is farther...
    assert near["emd"] == pytest.approx(1.0) and far["emd"] == pytest.approx(6.0)   # ...EMD disagrees
    s = summary(*H.preset("Identical"))
    assert max(s.values()) == 0.0
    s = summary(*H.preset("Disjoint supports"))
    assert s["tv"] == 1.0 and math.isinf(s["kl_pq"]) and s["js"] == pytest.approx(math.log(2))


@pytest.mark.parametrize("k", [-7, -1, 0, 3, 40])
def test_shifted_keeps_all_mass_and_moves_q_by_k(k):
    p, q = H.preset("Two bumps")
    a, b, x = H.shifted(p, q, k)
    assert len(a) == len(b) == len(x) == len(p) + abs(k)
    assert a.sum() == pytest.approx(1) and b.sum() == pytest.approx(1)
    assert np.sum(a * x) == pytest.approx(np.sum(p * np.arange(len(p))))          # P stays put
    assert np.sum(b * x) == pytest.approx(np.sum(q * np.arange(len(q))) + k)      # Q's mean moves by k
    # identical histograms shifted by k: EMD = |k| exactly
    assert emd(*H.shifted(p, p, k)[:2], positions=x) == pytest.approx(abs(k), abs=1e-9)


def test_sweep_saturates_tv_and_js_while_emd_grows():
    p = H.uniform(20, 0, 4)
    rows = H.shift_sweep(p, p, [5, 10, 15], base=2)
    assert [r["tv"] for r in rows] == [1.0, 1.0, 1.0]
    assert [r["js"] for r in rows] == pytest.approx([1.0, 1.0, 1.0])
    assert [r["emd"] for r in rows] == pytest.approx([5, 10, 15])
    ks = H.sweep_shifts(300, 41)
    assert ks[0] == -300 and ks[-1] == 300 and 0 in ks and len(ks) <= 42


def test_top_moves_add_up_to_the_emd():
    p, q = H.preset("Two bumps")
    x = np.arange(len(p), dtype=float)
    plan = emd_plan(p, q)
    rows, share = H.top_moves(plan, x, limit=10 ** 6)
    assert sum(r["cost"] for r in rows) == pytest.approx(emd(p, q), rel=1e-12) and share == pytest.approx(1)
    top, part = H.top_moves(plan, x, limit=5)
    assert [r["cost"] for r in top] == sorted((r["cost"] for r in top), reverse=True)
    assert 0 < part < 1
    assert all(r["cost"] == pytest.approx(r["mass"] * r["distance"]) for r in top)


def test_aggregate_plan_keeps_mass():
    plan = emd_plan(*H.preset("Large: 1000 bins"))
    blocks, size = H.aggregate_plan(plan, max_cells=100)
    assert size == 10 and blocks.shape == (100, 100)
    assert blocks.sum() == pytest.approx(plan.sum())
    same, one = H.aggregate_plan(plan[:50, :50], max_cells=100)
    assert one == 1 and same is not None


@pytest.mark.parametrize("cells, words", [
    ([1, None, 2], "bin 1 is empty"),
    ([1, float("nan")], "bin 1 is empty"),
    ([1, "abc"], "'abc', which is not a number"),
    (["1", "-2"], "negative"),
    ([0, 0, 0], "all zero"),
    ([1], "between 2 and 1000"),
])
def test_parse_column_errors(cells, words):
    with pytest.raises(ValueError, match=words):
        H.parse_column(cells, "P")


def test_parse_text():
    assert H.parse_text("0.2, 0.5;0.3\n1", "P").tolist() == [0.2, 0.5, 0.3, 1.0]
    with pytest.raises(ValueError, match="empty"):
        H.parse_text("  ", "Q")


def test_notes_forms_and_infinite_kl_reason():
    p, q = np.array([1 / 3] * 3), np.array([0.2, 0.5, 0.3])
    assert H.notes_forms(p, q)["tv_max_bin"] == pytest.approx(1 / 6)
    assert H.kl_infinite_at([1, 1, 0], [1, 0, 1]) == 1 and H.kl_infinite_at(p, q) is None


def test_visible_plan_hides_only_negligible_tail_flows():
    p, q = H.preset("Two bumps")
    a, b, x = H.shifted(p, q, 0)
    plan = emd_plan(a, b, positions=x)
    shown, hidden = H.visible_plan(plan)
    tiny = (plan > 0) & (plan < H.NEGLIGIBLE * plan.sum())
    assert hidden == int(tiny.sum()) > 0            # Gaussian tails: some 1e-20 flows exist
    assert np.all(shown[tiny] == 0) and np.array_equal(shown[~tiny], plan[~tiny])
    assert shown.sum() == pytest.approx(plan.sum(), abs=1e-8)   # what is hidden carries no visible mass
    flows = H.largest_flows(shown, x, limit=10_000)
    assert len(flows) == np.count_nonzero(plan) - hidden
    assert min(f["mass"] for f in flows) >= H.NEGLIGIBLE * plan.sum()
    same, none = H.visible_plan(np.eye(3) / 3)
    assert none == 0 and np.array_equal(same, np.eye(3) / 3)


def test_tail_cut_off_states_the_mass_it_removes():
    h = np.array([1e-16, 0.25, 0.75, 3e-13])
    cut, removed = H.cut_tails(h, 1e-9)
    assert cut[0] == cut[-1] == 0 and removed == pytest.approx(1e-16 + 3e-13) and cut.sum() == pytest.approx(1)
    assert H.mass_where_missing(np.array([0.5, 0.5, 1e-16]), np.array([0.5, 0.5, 0.0])) == pytest.approx(1e-16)
