"""The Histograms page, run headless with Streamlit's AppTest."""
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "histograms.py")


def metrics(at: AppTest) -> dict[str, str]:
    """Metric values by label ("TV", "KL(P‖Q)", "KL(Q‖P)", "JS", "JS distance", "EMD")."""
    return {m.label: m.value for m in at.metric}


@pytest.fixture
def at() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not app.exception
    return app


def test_loads_with_all_six_numbers(at):
    shown = metrics(at)
    assert set(shown) == {"TV", "KL(P‖Q)", "KL(Q‖P)", "JS", "JS distance", "EMD"}
    assert all(v == "∞" or math.isfinite(float(v)) for v in shown.values())
    assert not at.error


def test_textbook_preset_and_bits(at):
    at.selectbox(key="hist_preset").set_value("Textbook: three bins").run()
    shown = metrics(at)
    assert shown["TV"] == "0.1667" and shown["EMD"] == "0.1667"
    assert float(shown["KL(P‖Q)"]) == pytest.approx(0.0702, abs=1e-4)     # nats
    at.radio(key="hist_unit").set_value("bits").run()
    assert float(metrics(at)["KL(P‖Q)"]) == pytest.approx(0.0702 / math.log(2), abs=1e-4)
    assert any("KL and JS in bits" in c.value for c in at.caption)


def test_shift_slider_moves_emd_but_not_tv_once_disjoint(at):
    at.selectbox(key="hist_preset").set_value("Rubner 1: spikes moved one bin").run()
    before = metrics(at)
    assert before["EMD"] == "1.0000" and before["TV"] == "1.0000"
    at.slider(key="hist_shift").set_value(4).run()
    after = metrics(at)
    assert not at.exception
    assert after["EMD"] == "5.0000"                   # spikes now 5 bins apart
    assert after["TV"] == "1.0000" and after["JS"] == before["JS"]   # saturated
    assert any("infinite" in c.value or "∞" in c.value for c in at.caption)


def test_ground_distance_changes_emd(at):
    at.selectbox(key="hist_preset").set_value("Disjoint supports").run()
    assert metrics(at)["EMD"] == "22.0000"
    at.selectbox(key="hist_ground").set_value("saturated").run()
    assert not at.exception and float(metrics(at)["EMD"]) < 1


@pytest.mark.parametrize("text, words", [
    ("1, -2, 3", "negative"),
    ("0, 0, 0", "all zero"),
    ("1, abc, 3", "not a number"),
    ("1, nan, 3", "finite"),
    ("1, 2", "same number"),
])
def test_bad_pasted_values_show_an_error_and_keep_the_last_good_ones(at, text, words):
    at.selectbox(key="hist_preset").set_value("Textbook: three bins").run()
    before = metrics(at)
    at.text_area(key="hist_paste_p").input(text)
    at.text_area(key="hist_paste_q").input("1, 1, 1")
    at.button(key="hist_paste_apply").click().run()
    assert not at.exception
    assert any(words in e.value for e in at.error), [e.value for e in at.error]
    assert metrics(at) == before


def test_good_pasted_values_are_used_and_normalization_is_said(at):
    at.text_area(key="hist_paste_p").input("1, 0, 0, 0")
    at.text_area(key="hist_paste_q").input("0, 0, 0, 3")
    at.button(key="hist_paste_apply").click().run()
    assert not at.exception and not at.error
    assert metrics(at)["EMD"] == "3.0000"
    assert any("Q sums to 3" in c.value and "normalized" in c.value for c in at.caption)


def test_generators_replace_both_histograms(at):
    at.number_input(key="hist_bins").set_value(30).run()
    at.radio(key="hist_kind_P").set_value("Spikes").run()
    at.text_input(key="hist_spk_P").input("2:1").run()
    at.radio(key="hist_kind_Q").set_value("Spikes").run()
    at.text_input(key="hist_spk_Q").input("9:1").run()
    at.button(key="hist_generate").click().run()
    assert not at.exception
    assert metrics(at)["EMD"] == "7.0000"


def test_large_preset_aggregates_the_heatmap_and_says_so(at):
    at.selectbox(key="hist_preset").set_value("Large: 1000 bins").run()
    assert not at.exception
    assert any("Aggregated for display" in c.value for c in at.caption)


def test_an_infinite_kl_names_the_tiny_mass_and_the_tail_cut_off_removes_it(at):
    at.selectbox(key="hist_preset").set_value("Two bumps").run()
    at.slider(key="hist_shift").set_value(1).run()
    kl = next(m for m in at.metric if m.label == "KL(P‖Q)")
    assert kl.value == "∞"
    words = " ".join(c.value for c in at.caption)
    assert "of its mass" in words and "tail cut-off" in words
    at.selectbox(key="hist_tail").set_value(1e-9).run()
    assert not at.exception
    kl = next(m for m in at.metric if m.label == "KL(P‖Q)")
    assert kl.value != "∞"                                  # the jump was about invisible mass
    assert any("Tail cut-off" in c.value and "removed" in c.value for c in at.caption)


def test_the_saturated_ground_distance_says_what_its_emd_does(at):
    at.selectbox(key="hist_ground").set_value("saturated").run()
    text = " ".join(m.value for m in at.markdown)
    assert "flattens too" in text and "one bin per bin" not in text
    assert any("Rubner et al." in c.value for c in at.caption)


def test_the_paste_boxes_show_the_preset_in_use(at):
    at.selectbox(key="hist_preset").set_value("Textbook: three bins").run()
    assert at.text_area(key="hist_paste_q").value == "0.2, 0.5, 0.3"
    assert at.text_area(key="hist_paste_p").value == "0.333333, 0.333333, 0.333333"


@pytest.mark.parametrize("name", ["Two bumps", "Textbook: three bins", "Rubner 2: one spike moved far",
                                  "Disjoint supports", "Identical", "Large: 1000 bins"])
def test_generator_fields_show_the_preset_and_remake_it(at, name):
    import numpy as np

    from explorer import histograms as H
    at.selectbox(key="hist_preset").set_value(name).run()
    assert not at.exception and not at.warning
    bins, p_spec, _ = H.PRESET_SPECS[name]
    assert at.number_input(key="hist_bins").value == bins
    kind = {"mixture": "Gaussian mixture", "uniform": "Uniform", "spikes": "Spikes"}[p_spec[0]]
    assert at.radio(key="hist_kind_P").value == kind
    p, q = at.session_state["hist_p"], at.session_state["hist_q"]
    at.button(key="hist_generate").click().run()     # the fields, used as they stand, give the same P and Q
    assert not at.exception
    assert np.allclose(at.session_state["hist_p"], p, atol=1e-12)
    assert np.allclose(at.session_state["hist_q"], q, atol=1e-12)


def test_fewer_bins_after_a_preset_keep_the_generators_usable(at):
    at.selectbox(key="hist_preset").set_value("Large: 1000 bins").run()
    at.number_input(key="hist_bins").set_value(10).run()
    assert not at.exception
    at.selectbox(key="hist_preset").set_value("Textbook: three bins").run()
    assert not at.exception and at.number_input(key="hist_bins").value == 3
