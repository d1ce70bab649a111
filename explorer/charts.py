"""The Parallel-lines page's Altair charts: the two clouds of points, each distance against theta,
the gradients and the clipped critic's estimates.

Each function takes plain records or NumPy arrays and returns an Altair chart (no Streamlit here).
These are drawn once per change of theta or of the sample size. The charts redrawn for every edit
or every few seconds of a live run (the Histograms page's and the training pages') are Vega-Lite
specs written out directly (explorer/histogram_charts.py, explorer/training_charts.py). The
matplotlib and Pillow figures (critic landscapes, GIFs) are in explorer/plots.py.
"""
from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

from explorer.histogram_charts import P_COLOUR, Q_COLOUR, W_COLOUR

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
