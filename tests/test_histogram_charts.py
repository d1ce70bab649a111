"""explorer.histogram_charts: the Histograms page's Vega-Lite specs."""
import json

import jsonschema
import numpy as np
import pytest
from altair.vegalite import load_schema

from explorer import histogram_charts as charts
from explorer import histograms as H
from explorer.distances import emd_plan


def two_bumps(k: int = 5):
    p, q = H.preset("Two bumps")
    a, b, x = H.shifted(p, q, k)
    return p, q, a, b, x, emd_plan(a, b, positions=x)


def every_spec():
    p, q, a, b, x, plan = two_bumps()
    blocks, size = H.aggregate_plan(plan)
    bounded, emd = charts.sweep(H.shift_sweep(p, q, [0, 5, 80]), 5, "nats", "EMD")
    return {"bars": charts.bars(a, x, "P", charts.P_COLOUR, (x[0] - 0.5, x[-1] + 0.5), 1.0),
            "sweep, bounded": bounded, "sweep, EMD": emd,
            "flows": charts.flow_bands(a, b, x, H.largest_flows(plan, x)),
            "flows, none": charts.flow_bands(a, a, x, []),
            "plan": charts.plan_heatmap(blocks, size, float(x[0]))}


@pytest.mark.parametrize("name", list(every_spec()))
def test_every_spec_is_valid_vega_lite(name):
    spec = every_spec()[name]
    jsonschema.validate(spec, load_schema())
    assert json.loads(json.dumps(spec)) == spec


def test_bars_carry_each_bin_from_zero_to_its_mass():
    mass = np.array([0.2, 0.5, 0.3])
    spec = charts.bars(mass, np.arange(3.0), "P", "red", (-0.5, 2.5), 1)
    rows = spec["data"]["values"]
    assert [r["top"] for r in rows] == [0.2, 0.5, 0.3] and {r["bottom"] for r in rows} == {0.0}
    assert [(r["left"], r["right"]) for r in rows] == [(-0.5, 0.5), (0.5, 1.5), (1.5, 2.5)]
    assert spec["encoding"]["x"]["axis"]["format"] == "d"   # whole bins on the axis
    assert spec["encoding"]["x"]["scale"]["domain"] == [-0.5, 2.5]


def test_sweep_titles_follow_the_curves_and_the_ground_distance():
    p, q = H.preset("Textbook: three bins")
    few = H.shift_sweep(p, q, [0, 1])                       # supports still overlap: no plateau
    bounded, emd = charts.sweep(few, 0, "nats", "EMD", "saturated")
    assert bounded["layer"][0]["title"] == "TV and JS against the shift"
    assert "flattens" in emd["layer"][0]["title"]
    far = H.shift_sweep(p, q, [0, 1, 2, 3, 4])
    assert charts.sweep(far, 0, "nats", "EMD", "abs")[0]["layer"][0]["title"] == "TV and JS saturate"


def test_sweep_carries_every_distance_and_marks_the_current_shift():
    p, q = H.preset("Two bumps")
    records = H.shift_sweep(p, q, [-3, 0, 7])
    bounded, emd = charts.sweep(records, 7, "bits", "EMD (bins)")
    long = bounded["data"]["values"]
    assert {r["distance"] for r in long} == {"TV", "JS (bits)", "JS distance"} and len(long) == 9
    tv = {r["k"]: r["value"] for r in long if r["distance"] == "TV"}
    assert tv == {r["k"]: pytest.approx(r["tv"]) for r in records}
    assert [r["emd"] for r in emd["data"]["values"]] == pytest.approx([r["emd"] for r in records])
    for spec in (bounded, emd):
        assert spec["layer"][1]["data"]["values"] == [{"k": 7.0}]


def test_flows_draw_both_histograms_and_every_flow():
    _, _, a, b, x, plan = two_bumps()
    flows = H.largest_flows(plan, x, limit=20)
    spec = charts.flow_bands(a, b, x, flows)
    rows = spec["data"]["values"]
    top = [r for r in rows if r["histogram"] == "P"]
    below = [r for r in rows if r["histogram"] == "Q"]
    assert len(top) == len(below) == len(x)
    assert all(r["bottom"] == 1.0 and r["top"] >= 1.0 for r in top)      # P stands on the line at 1
    assert all(r["top"] == 0.0 and r["bottom"] <= 0.0 for r in below)    # Q hangs below the line at 0
    assert max(r["top"] for r in top) == 2.0 or min(r["bottom"] for r in below) == -1.0   # the taller one fills
    moves = spec["layer"][1]["data"]["values"]
    assert [(m["from"], m["to"]) for m in moves] == [(f["from"], f["to"]) for f in flows]
    assert sum(m["mass"] for m in moves) == pytest.approx(sum(f["mass"] for f in flows))


def test_heatmap_draws_only_cells_with_mass_and_reads_a_few_digits_from_zero():
    blocks = np.diag([0.1, 0.2, 0.7])
    spec = charts.plan_heatmap(blocks, 2, 10.0)
    rows = spec["data"]["values"]
    assert [(r["from_bin"], r["to_bin"], r["mass"]) for r in rows] == [(10.0, 10.0, 0.1), (12.0, 12.0, 0.2),
                                                                      (14.0, 14.0, 0.7)]
    assert all(r["to2"] - r["to"] == 2 for r in rows)                    # a cell spans its block of bins
    colour = spec["encoding"]["color"]
    assert colour["legend"]["format"] == ".2~g" and colour["scale"]["domainMin"] == 0
