"""explorer.training_charts (the training pages' Vega-Lite specs) and ui.vega, which draws them."""
import copy
import json

import jsonschema
import numpy as np
import pytest
from altair.vegalite import load_schema

from explorer import training_charts as charts
from ui.vega import rows_table, vega_chart

HISTORY = [{"step": i + 1, "loss_c": -i / 10, "loss_g": i / 20, "w_est": 1 / (i + 1)} for i in range(1000)]
METRICS = {"w1_exact": 0.5, "w1_floor": 0.1, "modes": 6, "n_modes": 8, "hq": 0.7}
LOG = [{"step": s, **METRICS} for s in (0, 500, 1000)]
IMAGE_LOG = [{"step": 20, "sliced_w": 0.9, "sliced_w_floor": 0.1, "diversity": 0.1, "diversity_real": 0.7}]
COMPARE_LOG = [{"step": s, "w1_exact": [1.0 / (s + 1), 2.0], "w1_floor": [0.1, 0.1]} for s in (0, 10, 20)]


def every_spec():
    counts, edges = np.histogram(np.linspace(-0.01, 0.01, 50), bins=10)
    return {
        "loss": charts.loss_chart(HISTORY), "loss, empty": charts.loss_chart([]),
        "distance": charts.distance_chart(HISTORY, LOG), "quality": charts.quality_chart(LOG),
        "sliced W": charts.image_metrics_charts(IMAGE_LOG)[0], "diversity": charts.image_metrics_charts(IMAGE_LOG)[1],
        "W1 per run": charts.w1_chart(COMPARE_LOG, ["a", "b"]),
        "layers": charts.layer_norms_chart(["a", "b"], [[1e-3, 1e-2, 0.0], [0.1, 0.2, 0.3]]),
        "weights, clipped": charts.weight_histogram_chart(counts, edges, "weights", clip=0.01),
        "weights": charts.weight_histogram_chart(counts, edges, "weights"),
        "grad norms": charts.grad_norm_histogram_chart(np.array([0.5, 1.0, 1.5, np.nan])),
        "grad norms, none": charts.grad_norm_histogram_chart(np.array([])),
    }


@pytest.mark.parametrize("name", list(every_spec()))
def test_every_spec_is_valid_vega_lite(name):
    """Each spec validates against the Vega-Lite schema Altair ships, and is plain JSON."""
    spec = every_spec()[name]
    jsonschema.validate(spec, load_schema())
    assert json.loads(json.dumps(spec)) == spec


def test_a_wrong_spec_fails_the_schema():
    spec = charts.loss_chart(HISTORY)
    spec["mark"]["type"] = "squiggle"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, load_schema())


def test_binned_averages_into_bins():
    s, v = charts.binned(range(1000), [i % 2 for i in range(1000)], max_points=100)
    assert len(s) == 100 and np.allclose(v, 0.5)
    s, v = charts.binned([1, 2, 3], [1.0, float("nan"), 3.0])
    assert list(s) == [1, 3] and list(v) == [1.0, 3.0]


def test_charts_carry_the_records():
    names = {row["series"] for row in charts.loss_chart(HISTORY)["data"]["values"]}
    assert names == {"critic loss", "generator loss"}
    rows = charts.distance_chart(HISTORY, LOG)["data"]["values"]
    assert {r["value"] for r in rows if r["series"].startswith("exact W1")} == {0.5}
    estimate = [r for r in rows if r["series"].startswith("critic estimate")]
    assert len(estimate) == charts.MAX_CHART_POINTS                      # 1,000 steps in 400 bin means
    assert estimate[0]["step"] == 1.5 and estimate[0]["value"] == 0.75   # the first bin: steps 1-2, estimates 1 and 1/2
    rows = charts.quality_chart(LOG)["data"]["values"]
    assert {r["value"] for r in rows if r["series"].startswith("modes")} == {75.0}
    assert {round(r["value"], 9) for r in rows if r["series"].startswith("high")} == {70.0}
    assert charts.loss_chart([])["data"]["values"] == []   # empty history: an empty chart, no error


def test_curve_charts_are_readable():
    """Distinct colours per series, the legend outside the plot's height, percent clamped to [0, 100],
    integer steps, and points drawn when a run has only a few measurements."""
    for spec in (charts.loss_chart(HISTORY), charts.distance_chart(HISTORY, LOG), charts.quality_chart(LOG),
                 *charts.image_metrics_charts(LOG)):
        colours = spec["encoding"]["color"]["scale"]["range"]
        assert len(set(colours)) == len(colours) == len(spec["encoding"]["color"]["scale"]["domain"])
        assert spec["autosize"]["type"] == "fit-x"            # height is the plot's, legend extra
        assert spec["encoding"]["x"]["axis"]["format"] == ",d"
        assert spec["encoding"]["color"]["legend"]["labelLimit"] >= 300   # long labels not cut
    quality = charts.quality_chart(LOG)["encoding"]["y"]["scale"]
    assert quality["domain"] == [0, 100] and quality["clamp"] is True
    assert charts.image_metrics_charts(IMAGE_LOG)[1]["mark"]["point"] is True
    assert charts.loss_chart(HISTORY)["mark"]["point"] is False   # 800 points: lines only
    assert "discriminator loss" in json.dumps(charts.loss_chart(HISTORY, "discriminator"))
    floor = [r for r in charts.distance_chart(HISTORY, LOG)["data"]["values"] if r["dashed"]]
    assert floor and all(r["series"].startswith("W1 noise floor") for r in floor)   # only the floor is dashed


def test_w1_chart_has_a_line_per_run():
    log = [{"step": s, "w1_exact": [1.0 / (s + 1), 2.0], "w1_floor": [0.1, 0.1]} for s in range(3)]
    rows = charts.w1_chart(log, ["a", "b"])["data"]["values"]
    assert {r["run"] for r in rows} == {"a", "b"} and len(rows) == 12


def test_w1_chart_keeps_its_plot_and_shows_dashes_in_the_legend():
    spec = charts.w1_chart(COMPARE_LOG, ["run a", "run b"])
    assert spec["autosize"]["type"] == "fit-x"      # the legend below does not eat the plot's height
    assert spec["encoding"]["strokeDash"]["legend"] is None and "dashed" in spec["title"]
    assert spec["encoding"]["color"]["legend"]["symbolType"] == "stroke"
    assert spec["encoding"]["color"]["scale"]["scheme"] == "tableau10"
    rows = spec["data"]["values"]
    assert {r["kind"] for r in rows} == {"exact W1", "noise floor"} and len(rows) == 12


def test_health_charts_mark_what_they_must():
    layers = charts.layer_norms_chart(["a"], [[1e-3, 0.0, float("inf")]])
    assert [r["layer"] for r in layers["data"]["values"]] == [1] and "2 value(s)" in layers["title"]
    counts, edges = np.array([3, 4]), np.array([-0.01, 0.0, 0.01])
    clipped = charts.weight_histogram_chart(counts, edges, "w", clip=0.01)
    assert clipped["layer"][1]["data"]["values"] == [{"x": -0.01}, {"x": 0.01}]   # rules at ±c
    assert len(charts.weight_histogram_chart(counts, edges, "w")["layer"]) == 1   # no clipping, no rules
    assert clipped["layer"][0]["encoding"]["y2"] == {"datum": 0}   # bars from 0 up, not dashes at their count
    assert clipped["data"]["values"] == [{"lo": -0.01, "hi": 0.0, "count": 3}, {"lo": 0.0, "hi": 0.01, "count": 4}]
    norms = charts.grad_norm_histogram_chart(np.array([0.5, 3.0]))
    assert sum(r["count"] for r in norms["data"]["values"]) == 2 and norms["data"]["values"][-1]["hi"] == 3.0


class Recorder:
    def __init__(self):
        self.calls = []

    def vega_lite_chart(self, data, spec, **options):
        self.calls.append((data, spec, options))


def test_vega_chart_sends_the_rows_as_one_table_and_leaves_the_spec_alone():
    spec = charts.weight_histogram_chart(np.array([3, 4]), np.array([-1.0, 0.0, 1.0]), "w", clip=0.5)
    before = copy.deepcopy(spec)
    where = Recorder()
    vega_chart(spec, where)
    (table, sent, options), = where.calls
    assert spec == before                                        # the caller's spec is not changed
    assert table.to_pylist() == spec["data"]["values"]           # same rows, same order, same numbers
    assert "data" not in sent and sent["layer"][1]["data"] == spec["layer"][1]["data"]   # the rules stay inline
    assert options == {"width": "stretch"}
    vega_chart({"mark": "rule", "data": {"url": "x.json"}}, where, width=300)
    assert where.calls[-1] == (None, {"mark": "rule", "data": {"url": "x.json"}}, {"width": 300})


def test_rows_table_keeps_numbers_exactly():
    rows = [{"step": 1.0, "value": 0.1 + 0.2, "series": "a", "dashed": False},
            {"step": 2.0, "value": 1e-300, "series": "b", "dashed": True}]
    table = rows_table(rows)
    assert table.to_pylist() == rows and table.num_rows == 2
    assert rows_table([]).num_rows == 0
