"""AppTest of the parallel-lines page: loads, reacts to theta, runs the clipped critic."""
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "parallel_lines.py")


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def measured(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("measured")]


def test_page_loads_with_exact_values(app):
    shown = metrics(app)
    assert shown["TV"] == "1.0000" and shown["JS [nats]"] == "0.6931" and shown["W"] == "0.5000"
    assert shown["KL(P0‖Pθ) [nats]"] == "∞"
    assert any("KL = ∞" in i.value for i in app.info)
    assert len(measured(app)) == 4
    assert not app.error


def test_theta_slider_changes_the_numbers(app):
    before_metrics, before_measured = metrics(app), measured(app)
    app.slider(key="lines_theta").set_value(-0.25).run()
    assert not app.exception
    after = metrics(app)
    assert after["W"] == "0.2500" and after != before_metrics and measured(app) != before_measured
    # the measured W follows theta: paired samples are translates, so EMD = |theta|
    assert "**0.2500**" in measured(app)[3]


def test_binning_hides_the_gap_when_bins_are_wider(app):
    app.slider(key="lines_theta").set_value(0.05).run()
    app.slider(key="lines_bin").set_value(0.2).run()
    tv, kl, js, _ = measured(app)
    assert "**0.0000**" in tv and "**0.0000**" in kl and "**0.0000**" in js
    app.slider(key="lines_bin").set_value(0.03).run()
    tv, kl, js, _ = measured(app)
    assert "**1.0000**" in tv and "**∞**" in kl and "**0.6931**" in js


def test_theta_zero_and_bits(app):
    app.radio(key="lines_unit").set_value("bits").run()
    assert metrics(app)["JS [bits]"] == "1.0000"
    app.slider(key="lines_theta").set_value(0.0).run()
    assert not app.exception
    assert set(metrics(app).values()) == {"0.0000"}
    assert not app.info  # no infinite KL to explain


def test_critic_estimate_shows_kappa(app):
    app.number_input(key="lines_iters").set_value(10).run()
    app.button(key="lines_run").click().run()
    assert not app.exception and not app.error
    kappa = metrics(app)["Fitted κ"]
    assert re.fullmatch(r"\d+\.\d{4}", kappa) and float(kappa) > 0
    # a later rerun (theta moved) keeps the result
    app.slider(key="lines_theta").set_value(0.3).run()
    assert metrics(app)["Fitted κ"] == kappa
