"""The training pages' charts as Vega-Lite specs written out directly: curves over generator steps,
Compare's W1 per run and the Lipschitz-health figures.

These are redrawn every few seconds for every visitor of a live run, so they skip Altair: under a
classroom's load (bench/classroom.py, py-spy on the server) building Altair charts, validating them
against the schema and converting their DataFrames took 43% of the web server's busy time. Built
and handed to Streamlit (ui/vega.py), a spec here costs an eighth to a fifteenth of its Altair
equivalent: 1.3-1.9 ms against 20-28 ms for the distance chart, 2.9-3.2 ms against 22-26 ms for the
loss chart (3,000 steps, Intel Xeon with AVX-512). Each function takes plain records or NumPy arrays
and returns a dict: a Vega-Lite spec with its rows inline under data.values
(tests/test_training_charts.py validates every one against the Vega-Lite schema that Altair ships).
No Streamlit here. The Histograms page's charts are written the same way (explorer/histogram_charts.py).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from explorer.vega_spec import DASH, FIT_WIDTH, Spec, field

MAX_CHART_POINTS = 400                         # curves are averaged into at most this many bins
# Curve colours: a categorical pair that stays apart for colour-blind readers too (Tableau 10).
CRITIC_COLOUR, GENERATOR_COLOUR, FLOOR_COLOUR = "#e45756", "#4c78a8", "#7f7f7f"
MODES_COLOUR, HQ_COLOUR = "#54a24b", "#f58518"
STEP_AXIS = {"format": ",d", "tickMinStep": 1}


# ----------------------------------------------------------------------------- records to series
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


def _column(records: Sequence[dict], key: str) -> tuple[list, list]:
    rows = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    return [s for s, _ in rows], [v for _, v in rows]


def _bottom_legend(columns: int = 1, **options) -> dict:
    return {"orient": "bottom", "columns": columns, "labelLimit": 400, **options}


# ----------------------------------------------------------------------------- curves over steps
def _lines(series: dict[str, tuple[np.ndarray, np.ndarray]], y_title: str, colours: dict[str, str],
           dashed: Sequence[str] = (), height: int = 220, y_domain: Sequence[float] | None = None) -> Spec:
    """Lines over generator steps, one fixed colour per series (clearly distinct, legend below).

    With few points (a short run) each point is drawn too, so a single measurement is visible.
    """
    rows = [{"step": float(s), "value": float(v), "series": name, "dashed": name in dashed}
            for name, (steps, values) in series.items() for s, v in zip(steps, values)]
    y_scale = {"scale": {"domain": list(y_domain), "clamp": True}} if y_domain is not None else {}
    return {
        "data": {"values": rows},
        "mark": {"type": "line", "point": len(rows) <= 20 * len(colours)},
        "encoding": {
            "x": field("step", title="generator step", axis=STEP_AXIS),
            "y": field("value", title=y_title, **y_scale),
            "color": field("series", "nominal", title=None,
                           scale={"domain": list(colours), "range": list(colours.values())},
                           legend=_bottom_legend(symbolType="stroke")),
            "strokeDash": field("dashed", "nominal", legend=None,
                                scale={"domain": [False, True], "range": [[1, 0], DASH]}),
            "tooltip": [field("series", "nominal"), field("step", format=",.0f"), field("value", format=".4g")],
        },
        "height": height, "autosize": FIT_WIDTH,
    }


def loss_chart(history: Sequence[dict], critic_name: str = "critic") -> Spec:
    """Critic and generator loss over generator steps (bin means of trainer.history); critic_name
    "discriminator" under the plain GAN."""
    critic = f"{critic_name} loss"
    return _lines({critic: binned(*_column(history, "loss_c")),
                   "generator loss": binned(*_column(history, "loss_g"))},
                  "loss", {critic: CRITIC_COLOUR, "generator loss": GENERATOR_COLOUR})


def distance_chart(history: Sequence[dict], metrics_log: Sequence[dict]) -> Spec:
    """The critic's estimate E f(real) - E f(fake) next to the exact W1 of the samples and its floor.

    Under the gradient penalty the estimate tracks W1; under weight clipping it is W1 times an
    unknown Lipschitz constant (small for small c). The floor is the mean W1 between two real samples
    (metrics.w1_floor).
    """
    estimate, exact, floor = ("critic estimate E f(real) − E f(fake)", "exact W1, generated vs real",
                              "W1 noise floor, real vs real")
    return _lines({estimate: binned(*_column(history, "w_est")),
                   exact: binned(*_column(metrics_log, "w1_exact")),
                   floor: binned(*_column(metrics_log, "w1_floor"))},
                  "distance", {exact: CRITIC_COLOUR, estimate: GENERATOR_COLOUR, floor: FLOOR_COLOUR},
                  dashed=[floor])


def quality_chart(metrics_log: Sequence[dict]) -> Spec:
    """Modes captured (as % of all modes) and high-quality samples (%) over steps, on [0, 100]."""
    steps, modes = _column(metrics_log, "modes")
    k = [r["n_modes"] for r in metrics_log if r.get("modes") is not None]
    pct = [100.0 * m / n for m, n in zip(modes, k) if n]
    hq_steps, hq = _column(metrics_log, "hq")
    modes_name, hq_name = "modes captured (% of modes)", "high-quality samples (%)"
    return _lines({modes_name: binned(steps[:len(pct)], pct), hq_name: binned(hq_steps, [100.0 * h for h in hq])},
                  "percent", {modes_name: MODES_COLOUR, hq_name: HQ_COLOUR}, height=200, y_domain=(0, 100))


def image_metrics_charts(metrics_log: Sequence[dict]) -> tuple[Spec, Spec]:
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
        series = {name: binned(*_column(metrics_log, key)), floor_name: binned(*_column(metrics_log, floor_key))}
        out.append(_lines(series, title, dict(zip((name, floor_name), colours)), dashed=[floor_name], height=200))
    return out[0], out[1]


def w1_chart(metrics_log: Sequence[dict], labels: Sequence[str]) -> Spec:
    """Compare's exact W1 over steps, one line per run; dashed: its noise floor (said in the title)."""
    rows = []
    for rec in metrics_log:
        for i, label in enumerate(labels):
            for key, kind in (("w1_exact", "exact W1"), ("w1_floor", "noise floor")):
                values = rec.get(key) or []
                if i < len(values) and values[i] is not None and math.isfinite(values[i]):
                    rows.append({"step": rec["step"], "W1": float(values[i]), "run": label, "kind": kind})
    return {
        "data": {"values": rows},
        "mark": {"type": "line", "point": len(rows) < 60},
        "encoding": {
            "x": field("step", title="generator step", axis={"format": ",d"}),
            "y": field("W1", title="exact W1"),
            "color": field("run", "nominal", title=None, scale={"scheme": "tableau10"},
                           legend=_bottom_legend(symbolType="stroke", symbolStrokeWidth=2)),
            "strokeDash": field("kind", "nominal", legend=None, sort=["exact W1", "noise floor"]),
            "tooltip": [field("run", "nominal"), field("kind", "nominal"), field("step"),
                        field("W1", format=".4f")],
        },
        "height": 240, "autosize": FIT_WIDTH,
        "title": "Exact W1, generated vs real (dashed: real vs real floor)",
    }


# ----------------------------------------------------------------------------- Lipschitz health
def layer_norms_chart(labels: Sequence[str], layers: Sequence[Sequence[float]], height: int = 240) -> Spec:
    """The WGAN-GP paper's Figure 1b: per critic, ||dL/dh_l|| at each hidden layer, on a log scale.

    Zeros (gradients that underflowed) cannot sit on a log axis: they are left out, and the title says so.
    """
    rows = [{"layer": i + 1, "norm": float(v), "run": label} for label, norms in zip(labels, layers)
            for i, v in enumerate(norms) if v > 0 and math.isfinite(v)]
    dropped = sum(1 for norms in layers for v in norms if not (v > 0 and math.isfinite(v)))
    title = "Gradient of the critic's loss at each hidden layer (log scale)"
    if dropped:
        title += f"; {dropped} value(s) below float range left out"
    return {
        "data": {"values": rows},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": field("layer", title="hidden layer (1 = next to the input)", axis={"tickMinStep": 1, "format": "d"}),
            "y": field("norm", title="‖∂L/∂h‖", scale={"type": "log"}, axis={"format": ".0e"}),
            "color": field("run", "nominal", title=None, scale={"scheme": "tableau10"},
                           legend=_bottom_legend(columns=2)),
            "tooltip": [field("run", "nominal"), field("layer"), field("norm", format=".3g")],
        },
        "height": height, "autosize": FIT_WIDTH, "title": title,
    }


def _bars_with_rules(rows: list[dict], x_title: str, y_title: str, rules: Sequence[float], title: str,
                     height: int, x_axis: dict | None = None, tooltip: bool = False) -> Spec:
    """Bars from lo to hi and from 0 to count, with dashed red rules at `rules` on the same x axis.

    y2 = 0 is spelled out: with x and x2 but no y2, Vega-Lite takes the bars for horizontal ranges and
    draws each as a thin dash at its count (as the Altair charts here did until this was found).
    """
    bars: Spec = {
        "mark": {"type": "bar", "color": GENERATOR_COLOUR},
        "encoding": {"x": field("lo", title=x_title, **({"axis": x_axis} if x_axis else {})), "x2": {"field": "hi"},
                     "y": field("count", title=y_title), "y2": {"datum": 0}},
    }
    if tooltip:
        bars["encoding"]["tooltip"] = [field("lo", format=".3g"), field("hi", format=".3g"), field("count")]
    layers = [bars]
    if rules:
        layers.append({"data": {"values": [{"x": float(x)} for x in rules]},
                       "mark": {"type": "rule", "color": CRITIC_COLOUR, "strokeDash": DASH},
                       "encoding": {"x": field("x")}})
    return {"data": {"values": rows}, "layer": layers, "height": height, "autosize": FIT_WIDTH,
            "title": {"text": title, "fontSize": 12}}


def _bins(counts: np.ndarray, edges: np.ndarray) -> list[dict]:
    return [{"lo": float(lo), "hi": float(hi), "count": int(c)} for lo, hi, c in zip(edges[:-1], edges[1:], counts)]


def weight_histogram_chart(counts: np.ndarray, edges: np.ndarray, title: str, clip: float | None = None,
                           height: int = 160) -> Spec:
    """Figure 1c: the critic's weights; under clipping, red rules at ±c where they pile up."""
    rules = [-clip, clip] if clip is not None else []
    return _bars_with_rules(_bins(counts, edges), "weight", "weights", rules, title, height,
                            x_axis={"format": ".2g"}, tooltip=True)


def grad_norm_histogram_chart(norms: np.ndarray, height: int = 160) -> Spec:
    """||grad f|| on the interpolates: its distribution, with the 1 the penalty asks for marked."""
    norms = np.asarray(norms, dtype=np.float64)
    norms = norms[np.isfinite(norms)]
    top = max(2.0, float(norms.max()) if norms.size else 2.0)
    counts, edges = np.histogram(norms, bins=30, range=(0.0, top))
    return _bars_with_rules(_bins(counts, edges), "‖∇f‖ on interpolates", "points", [1.0],
                            "‖∇f‖ between the clouds (dashed: 1)", height)
