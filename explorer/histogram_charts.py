"""The Histograms page's charts as Vega-Lite specs: the two histograms' bars, the distances against
the shift and the optimal transport plan (its flows and its matrix).

Every visitor's edit and every move of the shift slider redraws all of them, so like the training
pages' charts (explorer/training_charts.py) they are written out as plain dicts (explorer/vega_spec.py)
instead of Altair charts: Altair's building, validation and DataFrame conversion was most of this
page's run time.
Each function takes NumPy arrays or plain records and returns a spec whose main rows are inline
under data.values (ui/vega.py sends those as one Arrow table); a layer with rows of its own (the
rule at the current shift, the flows) carries them inline. No Streamlit here.
"""
from __future__ import annotations

import numpy as np

from explorer.vega_spec import DASH, FIT_WIDTH, Spec, field

P_COLOUR, Q_COLOUR = "#4c78a8", "#f58518"      # the two histograms (and the two parallel lines)
W_COLOUR = "#54a24b"                           # the EMD and the mass it moves
BIN_AXIS = {"format": "d", "tickMinStep": 1}   # bins are whole numbers: no -0.4 ... 2.4 ticks
MASS_TIP = field("mass", format=".4f")


def _bin_rows(positions: np.ndarray, low: np.ndarray, high: np.ndarray, mass: np.ndarray, **columns) -> list[dict]:
    """One row per bin: its position, its bar's left and right edge, bottom and top, and its mass."""
    return [{"bin": float(x), "left": float(x) - 0.5, "right": float(x) + 0.5, "bottom": float(lo), "top": float(hi),
             "mass": float(m), **columns} for x, lo, hi, m in zip(positions, low, high, mass)]


# ----------------------------------------------------------------------------- the histograms
def bars(mass: np.ndarray, positions: np.ndarray, title: str, colour: str,
         x_domain: tuple[float, float], y_max: float) -> Spec:
    """One histogram as bars of unit width centred on its bin positions (shared axes for P and Q)."""
    mass = np.asarray(mass, dtype=np.float64)
    return {
        "data": {"values": _bin_rows(positions, np.zeros_like(mass), mass, mass)},
        "mark": {"type": "rect", "color": colour},
        "encoding": {
            "x": field("left", title="bin", scale={"domain": [float(v) for v in x_domain], "nice": False},
                       axis=BIN_AXIS),
            "x2": {"field": "right"},
            "y": field("top", title="mass (normalized)", scale={"domain": [0, float(y_max)]}),
            "y2": {"field": "bottom"},
            "tooltip": [field("bin"), MASS_TIP],
        },
        "height": 220, "title": title,
    }


# ----------------------------------------------------------------------------- distances against the shift
EMD_TITLES = {"abs": "EMD keeps growing, by one per bin", "sq": "EMD keeps growing, as the square of the shift",
              "saturated": "EMD with a saturating ground distance flattens too, at 1"}


def _now_rule(k_now: float) -> Spec:
    """A dashed grey rule at the current shift."""
    return {"data": {"values": [{"k": float(k_now)}]}, "mark": {"type": "rule", "color": "grey", "strokeDash": DASH},
            "encoding": {"x": field("k")}}


def sweep(records: list[dict], k_now: int, unit: str, emd_title: str, ground: str = "abs") -> tuple[Spec, Spec]:
    """Distances against the shift k: (bounded ones: TV, JS, JS distance; EMD), with a rule at k_now.

    The titles say what the curves do: "saturate" only where TV reaches 1 (the supports separate),
    and the EMD's title follows its ground distance. The JS distance is dashed and drawn above TV,
    which it equals on the plateau in bits (both are 1 there). The legend goes below the 200 px of
    plot instead of into them (fit-x: Streamlit's default fits both ways).
    """
    names = {"tv": "TV", "js": f"JS ({unit})", "js_distance": "JS distance"}
    order = list(names.values())
    long = [{"k": float(r["k"]), "distance": name, "value": float(r[key])}
            for key, name in names.items() for r in records]
    plateau = any(r["tv"] > 1 - 1e-9 for r in records)
    points = len(records) <= 60
    k_axis = field("k", title="shift of Q (bins)", axis=BIN_AXIS)
    by_name = {"field": "distance", "type": "nominal", "sort": order, "legend": None}
    bounded = {
        "data": {"values": long},
        "layer": [{
            "mark": {"type": "line", "point": points},
            "encoding": {
                "x": k_axis, "y": field("value", title=f"value ({unit} for JS)"),
                "color": {**by_name, "legend": {"orient": "bottom", "title": None}},
                "strokeDash": {**by_name, "scale": {"domain": order, "range": [[1, 0], [1, 0], [6, 4]]}},
                "strokeWidth": {**by_name, "scale": {"domain": order, "range": [4, 2, 2]}},
                "order": field("distance", "nominal", sort="ascending"),
                "tooltip": [field("k"), field("distance", "nominal"), field("value", format=".4f")],
            },
            "title": "TV and JS saturate" if plateau else "TV and JS against the shift",
        }, _now_rule(k_now)],
        "height": 200, "autosize": FIT_WIDTH,
    }
    emd = {
        "data": {"values": [{"k": float(r["k"]), "emd": float(r["emd"])} for r in records]},
        "layer": [{
            "mark": {"type": "line", "color": W_COLOUR, "point": points},
            "encoding": {"x": k_axis, "y": field("emd", title=emd_title),
                         "tooltip": [field("k"), field("emd", format=".4f")]},
            "title": EMD_TITLES[ground],
        }, _now_rule(k_now)],
        "height": 200, "autosize": FIT_WIDTH,
    }
    return bounded, emd


# ----------------------------------------------------------------------------- the transport plan
def flow_bands(p: np.ndarray, q: np.ndarray, positions: np.ndarray, flows: list[dict]) -> Spec:
    """P's bars on top, Q's bars hanging below, and one band per flow from P's bin to Q's bin
    (width and opacity grow with the mass moved)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    scale = max(p.max(), q.max())
    rows = (_bin_rows(positions, np.ones_like(p), 1.0 + p / scale, p, histogram="P")
            + _bin_rows(positions, -q / scale, np.zeros_like(q), q, histogram="Q"))
    moves = [{"from": float(f["from"]), "to": float(f["to"]), "mass": float(f["mass"]), "y_from": 1.0, "y_to": 0.0}
             for f in flows] or [{"from": 0.0, "to": 0.0, "mass": 0.0, "y_from": 1.0, "y_to": 0.0}]
    biggest = max(max(m["mass"] for m in moves), 1e-300)

    def by_mass(low: float, high: float) -> dict:
        return field("mass", scale={"domain": [0, biggest], "range": [low, high]}, legend=None)

    return {
        "data": {"values": rows},
        "layer": [
            {"mark": {"type": "rect"},
             "encoding": {"x": field("left", title="bin", scale={"nice": False}, axis=BIN_AXIS),
                          "x2": {"field": "right"}, "y": field("bottom", axis=None), "y2": {"field": "top"},
                          "color": field("histogram", "nominal", legend=None,
                                         scale={"domain": ["P", "Q"], "range": [P_COLOUR, Q_COLOUR]}),
                          "tooltip": [field("histogram", "nominal"), field("bin"), MASS_TIP]}},
            {"data": {"values": moves}, "mark": {"type": "rule", "color": W_COLOUR},
             "encoding": {"x": field("from"), "x2": {"field": "to"}, "y": field("y_from"), "y2": {"field": "y_to"},
                          "strokeWidth": by_mass(0.5, 8), "opacity": by_mass(0.15, 0.9),
                          "tooltip": [field("from"), field("to"), MASS_TIP]}},
            {"data": {"values": moves},
             "mark": {"type": "point", "shape": "triangle-down", "filled": True, "color": W_COLOUR, "size": 40},
             "encoding": {"x": field("to"), "y": field("y_to"), "opacity": by_mass(0.0, 0.9)}},
        ],
        "height": 300, "title": "What moves where: P (top) to Q (bottom)",
    }


def plan_heatmap(blocks: np.ndarray, block: int, start: float) -> Spec:
    """The flow matrix as a heatmap: row = bin of P (from), column = bin of Q (to); only cells that
    carry mass are drawn. With block > 1 each cell sums block x block bins."""
    i, j = np.nonzero(blocks)
    rows = []
    for a, b in zip(i.tolist(), j.tolist()):
        from_bin, to_bin = float(start + a * block), float(start + b * block)
        rows.append({"from_bin": from_bin, "to_bin": to_bin, "mass": float(blocks[a, b]),
                     "from": from_bin - 0.5, "to": to_bin - 0.5, "from2": from_bin - 0.5 + block,
                     "to2": to_bin - 0.5 + block})
    return {
        "data": {"values": rows},
        "mark": {"type": "rect"},
        "encoding": {
            "x": field("to", title="to bin (Q)", scale={"nice": False}), "x2": {"field": "to2"},
            "y": field("from", title="from bin (P)", scale={"nice": False, "reverse": True}), "y2": {"field": "from2"},
            "color": field("mass", title="mass", scale={"scheme": "greens", "domainMin": 0}, legend={"format": ".2~g"}),
            "tooltip": [field("from_bin", title="from bin"), field("to_bin", title="to bin"), MASS_TIP],
        },
        "height": 320, "title": "Optimal flow matrix F (P's bin -> Q's bin)",
    }
