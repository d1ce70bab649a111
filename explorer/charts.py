"""Every Altair chart of the app: curves over training steps, the Histograms page's bars, sweep and
transport plan, Compare's W1 curves and the Parallel-lines page's distances against theta.

Each function takes plain records or NumPy arrays and returns an Altair chart (no Streamlit here).
The matplotlib and Pillow figures (critic landscapes, GIFs) are in explorer/plots.py.
"""
from __future__ import annotations

import math
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

MAX_CHART_POINTS = 400                         # curves are averaged into at most this many bins
# Curve colours: a categorical pair that stays apart for colour-blind readers too (Tableau 10).
CRITIC_COLOUR, GENERATOR_COLOUR, FLOOR_COLOUR = "#e45756", "#4c78a8", "#7f7f7f"
P_COLOUR, Q_COLOUR = "#4c78a8", "#f58518"      # the two histograms (and the two parallel lines)
W_COLOUR = "#54a24b"
# Fit the width only: with Streamlit's default ("fit" both ways) the height includes the legend below,
# which then squashes the plot itself to a few pixels. Height here is the plot's own.
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


# ----------------------------------------------------------------------------- curves over steps
def binned(steps: Sequence[float], values: Sequence[float], max_points: int = MAX_CHART_POINTS
           ) -> tuple[np.ndarray, np.ndarray]:
    """Average consecutive values into at most max_points bins: (mean step, mean value) per bin.

    Averaging (like the lecture notes' per-100-iterations means) shows the trend of a noisy
    per-step loss where plain thinning would show noise. Non-finite values are skipped.
    """
    s, v = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
    keep = np.isfinite(s) & np.isfinite(v)
    s, v = s[keep], v[keep]
    if len(s) <= max_points:
        return s, v
    edges = np.linspace(0, len(s), max_points + 1).astype(int)
    return (np.add.reduceat(s, edges[:-1]) / np.diff(edges), np.add.reduceat(v, edges[:-1]) / np.diff(edges))


def _long(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    parts = [pd.DataFrame({"step": s, "value": v, "series": name}) for name, (s, v) in series.items()]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"step": [], "value": [], "series": []})


def _column(records: Sequence[dict], key: str) -> tuple[list, list]:
    rows = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    return [s for s, _ in rows], [v for _, v in rows]


def _lines(df: pd.DataFrame, y_title: str, colours: dict[str, str], dashed: Sequence[str] = (),
           height: int = 220, y_domain: Sequence[float] | None = None) -> alt.Chart:
    """Lines over generator steps, one fixed colour per series (clearly distinct, legend below).

    With few points (a short run) each point is drawn too, so a single measurement is visible.
    """
    df = df.assign(dashed=df["series"].isin(list(dashed)))
    y_scale = alt.Scale(domain=list(y_domain), clamp=True) if y_domain is not None else alt.Undefined
    return alt.Chart(df).mark_line(point=len(df) <= 20 * len(colours)).encode(
        x=alt.X("step:Q", title="generator step", axis=alt.Axis(format=",d", tickMinStep=1)),
        y=alt.Y("value:Q", title=y_title, scale=y_scale),
        color=alt.Color("series:N", title=None, scale=alt.Scale(domain=list(colours), range=list(colours.values())),
                        legend=alt.Legend(orient="bottom", columns=1, labelLimit=400, symbolType="stroke")),
        strokeDash=alt.StrokeDash("dashed:N", legend=None,
                                  scale=alt.Scale(domain=[False, True], range=[[1, 0], [4, 3]])),
        tooltip=["series:N", alt.Tooltip("step:Q", format=",.0f"), alt.Tooltip("value:Q", format=".4g")],
    ).properties(height=height, autosize=FIT_WIDTH)


def loss_chart(history: Sequence[dict], critic_name: str = "critic") -> alt.Chart:
    """Critic and generator loss over generator steps (bin means of trainer.history); critic_name
    "discriminator" under the plain GAN."""
    critic = f"{critic_name} loss"
    df = _long({critic: binned(*_column(history, "loss_c")),
                "generator loss": binned(*_column(history, "loss_g"))})
    return _lines(df, "loss", {critic: CRITIC_COLOUR, "generator loss": GENERATOR_COLOUR})


def distance_chart(history: Sequence[dict], metrics_log: Sequence[dict]) -> alt.Chart:
    """The critic's estimate E f(real) - E f(fake) next to the exact W1 of the samples and its floor.

    Under the gradient penalty the estimate tracks W1; under weight clipping it is W1 times an
    unknown Lipschitz constant (small for small c). The floor is the mean W1 between two real samples (metrics.w1_floor).
    """
    estimate, exact, floor = "critic estimate E f(real) − E f(fake)", "exact W1, generated vs real", \
        "W1 noise floor, real vs real"
    df = _long({estimate: binned(*_column(history, "w_est")),
                exact: binned(*_column(metrics_log, "w1_exact")),
                floor: binned(*_column(metrics_log, "w1_floor"))})
    return _lines(df, "distance", {exact: CRITIC_COLOUR, estimate: GENERATOR_COLOUR, floor: FLOOR_COLOUR},
                  dashed=[floor])


def quality_chart(metrics_log: Sequence[dict]) -> alt.Chart:
    """Modes captured (as % of all modes) and high-quality samples (%) over steps, on [0, 100]."""
    steps, modes = _column(metrics_log, "modes")
    k = [r["n_modes"] for r in metrics_log if r.get("modes") is not None]
    pct = [100.0 * m / n for m, n in zip(modes, k) if n]
    hq_steps, hq = _column(metrics_log, "hq")
    modes_name, hq_name = "modes captured (% of modes)", "high-quality samples (%)"
    df = _long({modes_name: binned(steps[:len(pct)], pct),
                hq_name: binned(hq_steps, [100.0 * h for h in hq])})
    return _lines(df, "percent", {modes_name: "#54a24b", hq_name: "#f58518"}, height=200, y_domain=(0, 100))


def image_metrics_charts(metrics_log: Sequence[dict]) -> tuple[alt.Chart, alt.Chart]:
    """(sliced W, diversity) over steps, each with its real-vs-real reference dashed: two charts,
    as their scales differ.

    Sliced W compares generated with held-out real images; diversity (mean pairwise RMS distance of a
    fixed batch) falls towards 0 when the generator collapses.
    """
    out = []
    for (key, name), (floor_key, floor_name), title, colours in (
            (("sliced_w", "sliced W (generated vs real)"), ("sliced_w_floor", "sliced W floor (real vs real)"),
             "sliced Wasserstein distance", (CRITIC_COLOUR, "#ff9d98")),
            (("diversity", "diversity (generated)"), ("diversity_real", "diversity (real)"),
             "diversity", (GENERATOR_COLOUR, "#9ecae9"))):
        df = _long({name: binned(*_column(metrics_log, key)), floor_name: binned(*_column(metrics_log, floor_key))})
        out.append(_lines(df, title, dict(zip((name, floor_name), colours)), dashed=[floor_name], height=200))
    return out[0], out[1]


# ----------------------------------------------------------------------------- compare
def w1_chart(metrics_log: list[dict], labels: list[str]) -> alt.Chart:
    """Exact W1 over steps, one line per run; dashed: its noise floor (said in the title, not a legend)."""
    rows = []
    for rec in metrics_log:
        for i, label in enumerate(labels):
            for key, kind in (("w1_exact", "exact W1"), ("w1_floor", "noise floor")):
                values = rec.get(key) or []
                if i < len(values) and values[i] is not None and math.isfinite(values[i]):
                    rows.append({"step": rec["step"], "W1": values[i], "run": label, "kind": kind})
    df = pd.DataFrame(rows, columns=["step", "W1", "run", "kind"])
    return alt.Chart(df).mark_line(point=len(df) < 60).encode(
        x=alt.X("step:Q", title="generator step", axis=alt.Axis(format=",d")), y=alt.Y("W1:Q", title="exact W1"),
        color=alt.Color("run:N", title=None, scale=alt.Scale(scheme="tableau10"), legend=alt.Legend(
            orient="bottom", columns=1, labelLimit=400, symbolType="stroke", symbolStrokeWidth=2)),
        strokeDash=alt.StrokeDash("kind:N", legend=None, sort=["exact W1", "noise floor"]),
        tooltip=["run:N", "kind:N", "step:Q", alt.Tooltip("W1:Q", format=".4f")]).properties(
        height=240, autosize="fit-x", title="Exact W1, generated vs real (dashed: real vs real floor)")


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


# ----------------------------------------------------------------------------- Lipschitz health
def layer_norms_chart(labels: Sequence[str], layers: Sequence[Sequence[float]], height: int = 240) -> alt.Chart:
    """The WGAN-GP paper's Figure 1b: per critic, ||dL/dh_l|| at each hidden layer, on a log scale.

    Zeros (gradients that underflowed) cannot sit on a log axis: they are left out, and the title says so.
    """
    rows = [{"layer": i + 1, "norm": v, "run": label} for label, norms in zip(labels, layers)
            for i, v in enumerate(norms) if v > 0 and math.isfinite(v)]
    dropped = sum(1 for norms in layers for v in norms if not (v > 0 and math.isfinite(v)))
    title = "Gradient of the critic's loss at each hidden layer (log scale)"
    if dropped:
        title += f"; {dropped} value(s) below float range left out"
    df = pd.DataFrame(rows, columns=["layer", "norm", "run"])
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("layer:Q", title="hidden layer (1 = next to the input)", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("norm:Q", title="‖∂L/∂h‖", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e")),
        color=alt.Color("run:N", title=None, scale=alt.Scale(scheme="tableau10"),
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=400)),
        tooltip=["run:N", "layer:Q", alt.Tooltip("norm:Q", format=".3g")],
    ).properties(height=height, autosize=FIT_WIDTH, title=title)


def weight_histogram_chart(counts: np.ndarray, edges: np.ndarray, title: str, clip: float | None = None,
                           height: int = 160) -> alt.LayerChart:
    """Figure 1c: the critic's weights; under clipping, red rules at ±c where they pile up."""
    df = pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "count": counts})
    bars = alt.Chart(df).mark_bar(color=GENERATOR_COLOUR).encode(
        x=alt.X("lo:Q", title="weight", axis=alt.Axis(format=".2g")), x2="hi:Q",
        y=alt.Y("count:Q", title="weights"), tooltip=[alt.Tooltip("lo:Q", format=".3g"),
                                                     alt.Tooltip("hi:Q", format=".3g"), "count:Q"])
    chart = bars
    if clip is not None:
        rules = alt.Chart(pd.DataFrame({"x": [-clip, clip]})).mark_rule(color=CRITIC_COLOUR, strokeDash=[4, 3]
                                                                        ).encode(x="x:Q")
        chart = bars + rules
    return chart.properties(height=height, autosize=FIT_WIDTH, title=alt.TitleParams(title, fontSize=12))


def grad_norm_histogram_chart(norms: np.ndarray, height: int = 160) -> alt.LayerChart:
    """||grad f|| on the interpolates: its distribution, with the 1 the penalty asks for marked."""
    norms = np.asarray(norms, dtype=np.float64)
    norms = norms[np.isfinite(norms)]
    top = max(2.0, float(norms.max()) if norms.size else 2.0)
    counts, edges = np.histogram(norms, bins=30, range=(0.0, top))
    df = pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "count": counts})
    bars = alt.Chart(df).mark_bar(color=GENERATOR_COLOUR).encode(
        x=alt.X("lo:Q", title="‖∇f‖ on interpolates"), x2="hi:Q", y=alt.Y("count:Q", title="points"))
    one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(color=CRITIC_COLOUR, strokeDash=[4, 3]).encode(x="x:Q")
    return (bars + one).properties(height=height, autosize=FIT_WIDTH,
                                   title=alt.TitleParams("‖∇f‖ between the clouds (dashed: 1)", fontSize=12))
