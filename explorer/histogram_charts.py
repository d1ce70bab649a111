"""Altair charts for the Histograms page: bars, the shift sweep, and the transport plan.

Each function takes plain NumPy arrays / records and returns an Altair chart; no Streamlit here.
"""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

P_COLOUR, Q_COLOUR = "#4c78a8", "#f58518"


def bars(mass: np.ndarray, positions: np.ndarray, title: str, colour: str,
         x_domain: tuple[float, float], y_max: float) -> alt.Chart:
    """One histogram as bars of unit width centred on its bin positions (shared axes for P and Q)."""
    df = pd.DataFrame({"bin": positions, "mass": mass, "left": positions - 0.5, "right": positions + 0.5})
    return alt.Chart(df, title=title, height=220).mark_rect(color=colour).encode(
        x=alt.X("left:Q", title="bin", scale=alt.Scale(domain=list(x_domain), nice=False)),
        x2="right:Q",
        y=alt.Y("mass:Q", title="mass (normalized)", scale=alt.Scale(domain=[0, y_max])),
        tooltip=["bin:Q", alt.Tooltip("mass:Q", format=".4f")],
    )


def sweep(records: list[dict], k_now: int, unit: str, emd_title: str) -> tuple[alt.LayerChart, alt.LayerChart]:
    """Distances against the shift k: (bounded ones: TV, JS, JS distance; EMD), with a rule at k_now."""
    df = pd.DataFrame(records)
    long = df.melt(id_vars="k", value_vars=["tv", "js", "js_distance"], var_name="distance", value_name="value")
    long["distance"] = long["distance"].map({"tv": "TV", "js": f"JS ({unit})", "js_distance": "JS distance"})
    now = alt.Chart(pd.DataFrame({"k": [k_now]})).mark_rule(color="grey", strokeDash=[4, 3]).encode(x="k:Q")
    bounded = alt.Chart(long, title="TV and JS saturate", height=200).mark_line(point=len(df) <= 60).encode(
        x=alt.X("k:Q", title="shift of Q (bins)"), y=alt.Y("value:Q", title=f"value ({unit} for JS)"),
        color=alt.Color("distance:N", legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["k:Q", "distance:N", alt.Tooltip("value:Q", format=".4f")],
    )
    emd = alt.Chart(df, title="EMD keeps growing", height=200).mark_line(
        color="#54a24b", point=len(df) <= 60).encode(
        x=alt.X("k:Q", title="shift of Q (bins)"), y=alt.Y("emd:Q", title=emd_title),
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
    x = alt.X("left:Q", title="bin", scale=alt.Scale(nice=False))
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
