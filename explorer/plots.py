"""Figures and charts built from snapshots: the critic's landscape, curves over steps, PNG and GIF export.

Fields use matplotlib's object API (Figure + Agg canvas, never pyplot), so a page thread and a
worker thread can draw at the same time without sharing global state. Curves are Altair charts
built from plain records (trainer history and the session's metrics log).
"""
from __future__ import annotations

import io
import math
from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

REAL_COLOUR, FAKE_COLOUR = "orange", "green"   # the lecture notes' colours: real '+', generated 'x'
MAX_CHART_POINTS = 400                         # curves are averaged into at most this many bins
# Curve colours: a categorical pair that stays apart for colour-blind readers too (Tableau 10).
CRITIC_COLOUR, GENERATOR_COLOUR, FLOOR_COLOUR = "#e45756", "#4c78a8", "#7f7f7f"
# Fit the width only: with Streamlit's default ("fit" both ways) the height includes the legend below,
# which then squashes the plot itself to a few pixels. Height here is the plot's own.
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


# ----------------------------------------------------------------------------- the critic's landscape
def field_frame(snapshot: Any, arrows: bool = False, grad_map: bool = False, vmin: float | None = None,
                vmax: float | None = None, title: str | None = None, legend: bool = True,
                size: float = 4.8, dpi: int = 100, reuse: Figure | None = None) -> Figure:
    """The critic over [-lim, lim]^2 with real points (orange +) and generated points (green x).

    snapshot needs: field (g, g) critic values with axis 0 = y, lim, real (n, 2), fake (n, 2), step;
    for the options also push (n, 2) = grad f at the fakes and grad_norm_field (g, g).
    The background is the critic value f(x, y) (shared colour range via vmin/vmax, e.g. for two
    runs side by side) or, with grad_map, ||grad f|| on a diverging scale centred on 1: white where
    the norm is 1, the value the gradient penalty asks for. Contour lines of f are drawn on top.
    arrows: a short arrow at each generated point along grad f, where the generator moves it.
    reuse: a figure this function returned before; when its layout fits it is updated in place,
    which skips building axes, ticks and colour bar (about half the cost of a frame).
    """
    lim = float(snapshot.lim)
    layout = (bool(grad_map), bool(legend), float(size), int(dpi), lim)
    parts = getattr(reuse, "_frame_parts", None)
    if parts is None or parts["layout"] != layout:
        reuse = _new_frame(layout)
        parts = reuse._frame_parts
    ax, image, bar = parts["ax"], parts["image"], parts["bar"]
    field = np.ma.masked_invalid(np.asarray(snapshot.field, dtype=np.float64))
    if grad_map:
        norms = np.ma.masked_invalid(np.asarray(snapshot.grad_norm_field, dtype=np.float64))
        top = float(norms.max()) if norms.count() else 2.0
        # Centred on 1; the upper end at least 2 so a critic with norms all below 1 still reads blue.
        image.set_data(norms)
        image.set_norm(TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=max(2.0, top)))
    else:
        lo = vmin if vmin is not None else (float(field.min()) if field.count() else 0.0)
        hi = vmax if vmax is not None else (float(field.max()) if field.count() else 1.0)
        image.set_data(field)
        image.set_clim(lo, hi if hi > lo else lo + 1e-12)
    bar.update_normal(image)
    bar.locator = MaxNLocator(4)
    bar.update_ticks()
    for key in ("contour", "quiver"):
        if parts.get(key) is not None:
            parts.pop(key).remove()
    if field.count() and float(field.max() - field.min()) > 0:
        xs = np.linspace(-lim, lim, field.shape[1])
        ys = np.linspace(-lim, lim, field.shape[0])
        parts["contour"] = ax.contour(xs, ys, field, levels=10, colors="white" if grad_map else "black",
                                      linewidths=0.6, alpha=0.6)
    real, fake = np.asarray(snapshot.real), np.asarray(snapshot.fake)
    parts["real"].set_offsets(real)
    parts["fake"].set_offsets(fake)
    if arrows:
        push = np.asarray(snapshot.push, dtype=np.float64)
        length = np.linalg.norm(push, axis=1, keepdims=True)
        # Direction only (fixed length): under weight clipping the gradients are tiny, the map shows size.
        unit = np.divide(push, length, out=np.zeros_like(push), where=length > 0) * (0.08 * lim)
        parts["quiver"] = ax.quiver(fake[:, 0], fake[:, 1], unit[:, 0], unit[:, 1], angles="xy",
                                    scale_units="xy", scale=1, color="crimson", width=0.004, alpha=0.8)
    ax.set_title(title if title is not None else f"step {snapshot.step}", fontsize=9)
    return reuse


def _new_frame(layout: tuple) -> Figure:
    """Axes, image, colour bar, ticks and the two scatters of a frame, with placeholder data."""
    grad_map, legend, size, dpi, lim = layout
    fig = Figure(figsize=(size, size * 0.86), dpi=dpi)
    FigureCanvasAgg(fig)
    # Margins in inches, not fractions: the tick labels and the colour bar's title keep their size
    # (points) on a small panel, so a fixed fraction would clip them there.
    left, right = max(0.09, 0.36 / size), 0.62 / size
    ax = fig.add_axes((left, 0.08, 1 - left - right - 0.06, 0.84))
    cax = fig.add_axes((1 - right - 0.03, 0.08, 0.03, 0.84))
    image = ax.imshow(np.zeros((2, 2)), origin="lower", extent=(-lim, lim, -lim, lim),
                      cmap="RdBu_r" if grad_map else "viridis", interpolation="nearest")
    bar = fig.colorbar(image, cax=cax)
    cax.tick_params(labelsize=7)
    bar.set_label("‖∇f‖  (white = 1)" if grad_map else "critic value f", fontsize=8)
    empty = np.empty((0, 2))
    real = ax.scatter(empty[:, 0], empty[:, 1], c=REAL_COLOUR, marker="+", s=22, linewidths=0.9, label="real")
    fake = ax.scatter(empty[:, 0], empty[:, 1], c=FAKE_COLOUR, marker="x", s=14, linewidths=0.9,
                      label="generated")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    # Few fixed ticks: building tick objects is the slowest part of a matplotlib frame.
    ticks = np.linspace(-lim, lim, 5)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=7)
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks], fontsize=7)
    if legend:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.7, markerscale=1.2)
    fig._frame_parts = {"layout": layout, "ax": ax, "image": image, "bar": bar, "real": real, "fake": fake}
    return fig


def field_range(*snapshots: Any) -> tuple[float, float]:
    """(vmin, vmax) covering the critic values of every snapshot: one colour scale for a comparison."""
    lows = [float(np.nanmin(s.field)) for s in snapshots if np.isfinite(s.field).any()]
    highs = [float(np.nanmax(s.field)) for s in snapshots if np.isfinite(s.field).any()]
    if not lows:
        return (0.0, 1.0)
    return (min(lows), max(highs))


# ----------------------------------------------------------------------------- export
def figure_png(fig: Figure, dpi: int | None = None) -> bytes:
    """The figure as PNG bytes (at the figure's own dpi unless told otherwise)."""
    buf = io.BytesIO()
    if dpi is not None and dpi != fig.dpi:
        fig.savefig(buf, format="png", dpi=dpi)
    else:   # one draw, then a fast zlib level: ~10 ms less a frame than savefig, ~10% larger files
        Image.fromarray(figure_rgb(fig)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def figure_rgb(fig: Figure) -> np.ndarray:
    """The figure rendered to an (H, W, 3) uint8 array (H, W = figure size in inches x dpi)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def frames_to_gif(frames: Sequence[np.ndarray], fps: float = 5.0) -> bytes:
    """An animated, looping GIF from (H, W, 3) uint8 frames of one size, shown at fps frames a second."""
    if len(frames) == 0:
        raise ValueError("An animation needs at least one frame; train a few steps first.")
    if not (math.isfinite(fps) and 0 < fps <= 50):
        raise ValueError(f"fps must lie in (0, 50]; got {fps}.")
    shape = np.asarray(frames[0]).shape
    for i, frame in enumerate(frames):
        a = np.asarray(frame)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"Frame {i} must be an (H, W, 3) uint8 array; got {a.dtype} {a.shape}.")
        if a.shape != shape:
            raise ValueError(f"All frames must have one size; frame {i} is {a.shape}, frame 0 {shape}.")
    images = [Image.fromarray(np.asarray(f)).quantize(colors=255, method=Image.Quantize.MEDIANCUT)
              for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=max(20, int(round(1000 / fps))), disposal=1)
    return buf.getvalue()


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


def loss_chart(history: Sequence[dict]) -> alt.Chart:
    """Critic and generator loss over generator steps (bin means of trainer.history)."""
    df = _long({"critic loss": binned(*_column(history, "loss_c")),
                "generator loss": binned(*_column(history, "loss_g"))})
    return _lines(df, "loss", {"critic loss": CRITIC_COLOUR, "generator loss": GENERATOR_COLOUR})


def distance_chart(history: Sequence[dict], metrics_log: Sequence[dict]) -> alt.Chart:
    """The critic's estimate E f(real) - E f(fake) next to the exact W1 of the samples and its floor.

    Under the gradient penalty the estimate tracks W1; under weight clipping it is W1 times an
    unknown Lipschitz constant (small for small c). The floor is W1 between two real samples.
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


def history_table(history: Sequence[dict], metrics_log: Sequence[dict]) -> pd.DataFrame:
    """One row per recorded step: losses and the critic estimate, joined with the measured metrics
    (exact W1, floor, modes, HQ) at the steps where a snapshot measured them (empty elsewhere)."""
    left = pd.DataFrame(list(history))
    right = pd.DataFrame(list(metrics_log))
    if right.empty:
        return left
    if left.empty:
        return right
    right = right.drop(columns=[c for c in right.columns if c in left.columns and c != "step"])
    return left.merge(right, on="step", how="outer").sort_values("step", ignore_index=True)


# --- image GAN charts (images) ---
def image_metrics_chart(metrics_log: Sequence[dict]) -> alt.Chart:
    """Sliced W (generated vs held-out real, and its real-vs-real floor) and diversity over steps.

    Diversity (mean pairwise RMS distance of a fixed batch) falls towards 0 when the generator
    collapses; the dashed line is the same number for real images.
    """
    names = {"sliced_w": "sliced W (generated vs real)", "sliced_w_floor": "sliced W floor (real vs real)",
             "diversity": "diversity (generated)", "diversity_real": "diversity (real)"}
    df = _long({name: binned(*_column(metrics_log, key)) for key, name in names.items()})
    colours = dict(zip(names.values(), (CRITIC_COLOUR, "#ff9d98", GENERATOR_COLOUR, "#9ecae9")))   # floors: lighter
    return _lines(df, "value", colours, dashed=[names["sliced_w_floor"], names["diversity_real"]])
