"""The distance pages' Altair charts: the Histograms page's bars, sweep and transport plan, and the
Parallel-lines page's distances against theta.

Each function takes plain records or NumPy arrays and returns an Altair chart (no Streamlit here).
These are drawn once per edit; the training pages' charts, redrawn every few seconds for every
visitor of a live run, are Vega-Lite specs written out directly (explorer/training_charts.py). The matplotlib
and Pillow figures (critic landscapes, GIFs) are in explorer/plots.py.
"""
from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

P_COLOUR, Q_COLOUR = "#4c78a8", "#f58518"      # the two histograms (and the two parallel lines)
W_COLOUR = "#54a24b"


# ----------------------------------------------------------------------------- histograms
BIN_AXIS = alt.Axis(format="d", tickMinStep=1)   # bins are whole numbers: no -0.4 ... 2.4 ticks


def bars(mass: np.ndarray, positions: np.ndarray, title: str, colour: str,
         x_domain: tuple[float, float], y_max: float) -> alt.Chart:
    """One histogram as bars of unit width centred on its bin positions (shared axes for P and Q)."""
    df = pd.DataFrame({"bin": positions, "mass": mass, "left": positions - 0.5, "right": positions + 0.5})
    return alt.Chart(df, title=title, height=220).mark_rect(color=colour).encode(
        x=alt.X("left:Q", title="bin", scale=alt.Scale(domain=list(x_domain), nice=False), axis=BIN_AXIS),
        x2="right:Q",
        y=alt.Y("mass:Q", title="mass (normalized)", scale=alt.Scale(domain=[0, y_max])),
        tooltip=["bin:Q", alt.Tooltip("mass:Q", format=".4f")],
    )


def sweep(records: list[dict], k_now: int, unit: str, emd_title: str, ground: str = "abs"
          ) -> tuple[alt.LayerChart, alt.LayerChart]:
    """Distances against the shift k: (bounded ones: TV, JS, JS distance; EMD), with a rule at k_now.

    The titles say what the curves do: "saturate" only where TV reaches 1 (the supports separate),
    and the EMD's title follows its ground distance. The JS distance is dashed and drawn above TV,
    which it equals on the plateau in bits (both are 1 there)."""
    df = pd.DataFrame(records)
    long = df.melt(id_vars="k", value_vars=["tv", "js", "js_distance"], var_name="distance", value_name="value")
    long["distance"] = long["distance"].map({"tv": "TV", "js": f"JS ({unit})", "js_distance": "JS distance"})
    now = alt.Chart(pd.DataFrame({"k": [k_now]})).mark_rule(color="grey", strokeDash=[4, 3]).encode(x="k:Q")
    plateau = bool((df["tv"] > 1 - 1e-9).any())
    names = ["TV", f"JS ({unit})", "JS distance"]
    bounded = alt.Chart(long, title="TV and JS saturate" if plateau else "TV and JS against the shift",
                        height=200).mark_line(point=len(df) <= 60).encode(
        x=alt.X("k:Q", title="shift of Q (bins)", axis=BIN_AXIS), y=alt.Y("value:Q", title=f"value ({unit} for JS)"),
        color=alt.Color("distance:N", legend=alt.Legend(orient="bottom", title=None), sort=names),
        strokeDash=alt.StrokeDash("distance:N", legend=None, sort=names,
                                  scale=alt.Scale(domain=names, range=[[1, 0], [1, 0], [6, 4]])),
        strokeWidth=alt.StrokeWidth("distance:N", legend=None, sort=names,
                                    scale=alt.Scale(domain=names, range=[4, 2, 2])),
        order=alt.Order("distance:N", sort="ascending"),
        tooltip=["k:Q", "distance:N", alt.Tooltip("value:Q", format=".4f")],
    )
    emd_name = {"abs": "EMD keeps growing, by one per bin", "sq": "EMD keeps growing, as the square of the shift",
                "saturated": "EMD with a saturating ground distance flattens too, at 1"}[ground]
    emd = alt.Chart(df, title=emd_name, height=200).mark_line(
        color="#54a24b", point=len(df) <= 60).encode(
        x=alt.X("k:Q", title="shift of Q (bins)", axis=BIN_AXIS), y=alt.Y("emd:Q", title=emd_title),
        tooltip=["k:Q", alt.Tooltip("emd:Q", format=".4f")],
    )
    # fit-x: the legend goes below the 200 px of plot instead of into them (Streamlit's default fits both).
    fit = alt.AutoSizeParams(type="fit-x", contains="padding")
    return (bounded + now).properties(autosize=fit), (emd + now).properties(autosize=fit)


def flow_bands(p: np.ndarray, q: np.ndarray, positions: np.ndarray, flows: list[dict]) -> alt.LayerChart:
    """P's bars on top, Q's bars hanging below, and one band per flow from P's bin to Q's bin
    (width and opacity grow with the mass moved)."""
    scale = max(p.max(), q.max())
    top = pd.DataFrame({"bin": positions, "y": 1.0, "y2": 1.0 + p / scale, "mass": p})
    bottom = pd.DataFrame({"bin": positions, "y": -q / scale, "y2": 0.0, "mass": q})
    for df in (top, bottom):
        df["left"], df["right"] = df["bin"] - 0.5, df["bin"] + 0.5
    x = alt.X("left:Q", title="bin", scale=alt.Scale(nice=False), axis=BIN_AXIS)
    y = alt.Y("y:Q", axis=None)
    tip = ["bin:Q", alt.Tooltip("mass:Q", format=".4f")]
    p_bars = alt.Chart(top).mark_rect(color=P_COLOUR).encode(x=x, x2="right:Q", y=y, y2="y2:Q", tooltip=tip)
    q_bars = alt.Chart(bottom).mark_rect(color=Q_COLOUR).encode(x=x, x2="right:Q", y=y, y2="y2:Q", tooltip=tip)
    moves = pd.DataFrame(flows or [{"from": 0.0, "to": 0.0, "mass": 0.0}])
    moves["y_from"], moves["y_to"] = 1.0, 0.0
    biggest = max(moves["mass"].max(), 1e-300)
    bands = alt.Chart(moves).mark_rule(color="#54a24b").encode(
        x="from:Q", x2="to:Q", y="y_from:Q", y2="y_to:Q",
        strokeWidth=alt.StrokeWidth("mass:Q", scale=alt.Scale(domain=[0, biggest], range=[0.5, 8]), legend=None),
        opacity=alt.Opacity("mass:Q", scale=alt.Scale(domain=[0, biggest], range=[0.15, 0.9]), legend=None),
        tooltip=["from:Q", "to:Q", alt.Tooltip("mass:Q", format=".4f")],
    )
    heads = alt.Chart(moves).mark_point(shape="triangle-down", filled=True, color="#54a24b", size=40).encode(
        x="to:Q", y="y_to:Q", opacity=alt.Opacity("mass:Q", scale=alt.Scale(domain=[0, biggest],
                                                                               range=[0.0, 0.9]), legend=None))
    return alt.layer(p_bars, q_bars, bands, heads).properties(height=300, title="What moves where: P (top) to Q (bottom)")


def plan_heatmap(blocks: np.ndarray, block: int, start: float) -> alt.Chart:
    """The flow matrix as a heatmap: row = bin of P (from), column = bin of Q (to); only cells that
    carry mass are drawn. With block > 1 each cell sums block x block bins."""
    i, j = np.nonzero(blocks)
    df = pd.DataFrame({"from_bin": start + i * block, "to_bin": start + j * block, "mass": blocks[i, j]})
    df["from"], df["to"] = df["from_bin"] - 0.5, df["to_bin"] - 0.5
    df["from2"], df["to2"] = df["from"] + block, df["to"] + block
    return alt.Chart(df, height=320, title="Optimal flow matrix F (P's bin -> Q's bin)").mark_rect().encode(
        x=alt.X("to:Q", title="to bin (Q)", scale=alt.Scale(nice=False)), x2="to2:Q",
        y=alt.Y("from:Q", title="from bin (P)", scale=alt.Scale(nice=False, reverse=True)), y2="from2:Q",
        color=alt.Color("mass:Q", scale=alt.Scale(scheme="greens", domainMin=0), title="mass",
                        legend=alt.Legend(format=".2~g")),
        tooltip=[alt.Tooltip("from_bin:Q", title="from bin"), alt.Tooltip("to_bin:Q", title="to bin"),
                 alt.Tooltip("mass:Q", format=".4f")],
    )


# ----------------------------------------------------------------------------- parallel lines
LINE_NAMES = {"tv": "TV", "kl": "KL(P0‖Pθ)", "js": "JS", "w": "W"}


def _shown(value: float) -> str:
    """A number as a tooltip shows it: ∞ for an infinite KL, 'undefined' for nan."""
    if math.isnan(value):
        return "undefined"
    return "∞" if math.isinf(value) else f"{value:.4f}"


def lines_samples_chart(p0: np.ndarray, pt: np.ndarray, theta: float, bin_width: float) -> alt.LayerChart:
    """The two clouds of points, with the column edges of the histogram the measured TV/KL/JS use."""
    n = len(p0)
    samples = pd.DataFrame({"x": np.concatenate([p0[:, 0], pt[:, 0]]), "y": np.concatenate([p0[:, 1], pt[:, 1]]),
                            "sample": ["P0"] * n + ["Pθ"] * len(pt)})
    left_edge = min(0.0, theta)
    edges = left_edge + bin_width * np.arange(-math.ceil(1.1 / bin_width), math.ceil(2.2 / bin_width) + 1)
    edges = pd.DataFrame({"x": edges[(edges >= -1.1) & (edges <= 1.1)]})
    colours = alt.Scale(domain=["P0", "Pθ"], range=[P_COLOUR, Q_COLOUR])
    x_axis = alt.X("x:Q", scale=alt.Scale(domain=[-1.1, 1.1]), title="x")
    grid = alt.Chart(edges).mark_rule(color="#ddd").encode(x=x_axis)
    dots = alt.Chart(samples).mark_circle(size=18, opacity=0.7).encode(
        x=x_axis, y=alt.Y("y:Q", scale=alt.Scale(domain=[0, 1]), title="z"),
        color=alt.Color("sample:N", scale=colours, title=None), tooltip=["sample", "x", "y"])
    return (grid + dots).properties(height=260, title="Samples (grey: histogram column edges)")


def _curve_frame(thetas, analytic, measured, key: str) -> tuple[pd.DataFrame, float]:
    """Long table of the analytic and measured curve of one distance; ∞ drawn at a ceiling."""
    finite = [v for v in (*analytic, *measured) if math.isfinite(v)]
    top = max(1.0, max(finite, default=1.0)) * 1.15
    rows = []
    for source, values in (("exact", analytic), ("from samples", measured)):
        for t, v in zip(thetas, values):
            # TV, KL and JS jump at 0: draw each side separately so no line bridges the jump
            side = "all" if key == "w" else ("zero" if t == 0 else ("left" if t < 0 else "right"))
            rows.append({"θ": t, "value": min(v, top), "shown": _shown(v), "source": source,
                         "infinite": bool(math.isinf(v)), "side": side})
    return pd.DataFrame(rows), top


def lines_curve_chart(curve, key: str, theta: float, unit: str) -> alt.LayerChart:
    """One distance against θ: exact (black line, dot at 0), measured (dots, ▲ where infinite), θ now."""
    frame, top = _curve_frame(curve.thetas, curve.analytic[key], curve.measured[key], key)
    unit_text = f" [{unit}]" if key in ("kl", "js") else ""
    y = alt.Y("value:Q", scale=alt.Scale(domain=[0, top]), title=LINE_NAMES[key] + unit_text)
    x = alt.X("θ:Q", scale=alt.Scale(domain=[-1, 1]))
    tip = ["θ", "shown", "source"]
    exact = frame[frame.source == "exact"]
    line = alt.Chart(exact[exact.side != "zero"]).mark_line(color="#333").encode(x=x, y=y, detail="side", tooltip=tip)
    dot0 = alt.Chart(exact[exact["θ"] == 0]).mark_point(color="#333", filled=True, size=40).encode(x=x, y=y, tooltip=tip)
    measured = alt.Chart(frame[frame.source == "from samples"]).mark_point(size=30, opacity=0.8).encode(
        x=x, y=y, tooltip=tip, color=alt.value(W_COLOUR if key == "w" else Q_COLOUR),
        shape=alt.Shape("infinite:N", scale=alt.Scale(domain=[False, True], range=["circle", "triangle-up"]),
                        legend=None))
    now = alt.Chart(pd.DataFrame({"θ": [theta]})).mark_rule(color="#999", strokeDash=[4, 3]).encode(x=x)
    # Say in the chart itself that the top edge stands for ∞: as a subtitle, clear of the curves
    # (a blank one elsewhere keeps the four plots of the grid aligned).
    note = "▲ and the top line: ∞" if frame["infinite"].any() else " "
    title = alt.TitleParams(LINE_NAMES[key], subtitle=note, subtitleColor="#666", subtitleFontSize=11)
    return (now + measured + line + dot0).properties(height=220, title=title)


def lines_gradient_chart(curve) -> alt.LayerChart:
    """d/dθ of TV and JS (one series: both are 0) and of W (±1), with W's finite differences as dots."""
    rows = [{"θ": t, "d/dθ": curve.gradients[k][i], "distance": name, "side": "left" if t < 0 else "right"}
            for k, name in (("tv", "TV and JS"), ("w", "W")) for i, t in enumerate(curve.thetas) if t != 0]
    slope = pd.DataFrame({"θ": curve.thetas, "d/dθ": curve.w_slope})
    gx = alt.X("θ:Q", scale=alt.Scale(domain=[-1, 1]))
    gy = alt.Y("d/dθ:Q", scale=alt.Scale(domain=[-1.2, 1.2]))
    lines = alt.Chart(pd.DataFrame(rows)).mark_line(strokeWidth=2).encode(
        x=gx, y=gy, detail="side", color=alt.Color("distance:N", legend=alt.Legend(orient="bottom", title=None),
                                                   scale=alt.Scale(domain=["TV and JS", "W"],
                                                                   range=["#e45756", W_COLOUR])))
    dots = alt.Chart(slope).mark_point(color=W_COLOUR, size=20).encode(x=gx, y=gy, tooltip=["θ", "d/dθ"])
    return (lines + dots).properties(height=220)


def lines_kappa_chart(thetas: np.ndarray, kappa: float, estimate_thetas, estimates) -> alt.LayerChart:
    """The clipped critic's estimates against θ, the fitted κ·|θ| and the exact W = |θ|."""
    fit = pd.DataFrame({"θ": thetas, "κ·|θ| (fit)": kappa * np.abs(thetas), "W = |θ| (exact)": np.abs(thetas)}
                       ).melt("θ", var_name="curve", value_name="value")
    est = pd.DataFrame({"θ": estimate_thetas, "value": estimates})
    kx = alt.X("θ:Q", scale=alt.Scale(domain=[-1, 1]))
    lines = alt.Chart(fit).mark_line().encode(
        x=kx, y=alt.Y("value:Q", title="E f(P0) − E f(Pθ)"),
        color=alt.Color("curve:N", scale=alt.Scale(domain=["κ·|θ| (fit)", "W = |θ| (exact)"], range=[Q_COLOUR, "#333"]),
                        legend=alt.Legend(orient="bottom", title=None)))
    dots = alt.Chart(est).mark_point(filled=True, size=50, color=Q_COLOUR).encode(x=kx, y="value:Q",
                                                                                 tooltip=["θ", "value"])
    return (lines + dots).properties(height=260)
