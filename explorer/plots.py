"""Figures built from snapshots: the critic's landscape with the samples, Compare's snapshot strips,
PNG and GIF export (matplotlib and Pillow). The Altair charts are in explorer/charts.py.

Fields use matplotlib's object API (Figure + Agg canvas, never pyplot), so two page threads can
draw at the same time without sharing global state.
"""
from __future__ import annotations

import io
import math
import textwrap
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox
from PIL import Image

REAL_COLOUR, FAKE_COLOUR = "orange", "green"   # the lecture notes' colours: real '+', generated 'x'


# ----------------------------------------------------------------------------- the critic's landscape
def field_frame(snapshot: Any, arrows: bool = False, grad_map: bool = False, vmin: float | None = None,
                vmax: float | None = None, title: str | None = None, legend: bool = True,
                size: float = 4.8, dpi: int = 100, reuse: Figure | None = None,
                value_label: str = "critic value f") -> Figure:
    """The critic over [-lim, lim]^2 with real points (orange +) and generated points (green x).

    snapshot needs: field (g, g) critic values with axis 0 = y, lim, real (n, 2), fake (n, 2), step;
    for the options also push (n, 2) = grad f at the fakes and grad_norm_field (g, g).
    The background is the critic value f(x, y) (shared colour range via vmin/vmax, e.g. for two
    runs side by side) or, with grad_map, ||grad f|| on a diverging scale centred on 1: white where
    the norm is 1, the value the gradient penalty asks for. Contour lines of f are drawn on top.
    arrows: a short arrow at each generated point along grad f, where the generator moves it.
    value_label: the colour bar's name for f ("discriminator logit" under the plain GAN).
    reuse: a figure this function returned before; when its layout fits it is updated in place,
    which skips building axes, ticks and colour bar (about half the cost of a frame).
    """
    lim = float(snapshot.lim)
    layout = (bool(grad_map), bool(legend), float(size), int(dpi), lim, value_label)
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
        top = max(2.0, round_range(0.0, top)[1])
        image.set_data(norms)
        if isinstance(image.norm, TwoSlopeNorm):   # a new norm object would rebuild the colour bar's scale
            rescaled = image.norm.vmax != top
            image.norm.vmax = top
        else:
            rescaled = True
            image.set_norm(TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=top))
    else:
        lo = vmin if vmin is not None else (float(field.min()) if field.count() else 0.0)
        hi = vmax if vmax is not None else (float(field.max()) if field.count() else 1.0)
        clim = round_range(lo, hi)
        image.set_data(field)
        rescaled = tuple(image.get_clim()) != clim
        if rescaled:
            image.set_clim(*clim)
    # (set_norm / set_clim have already redrawn the colour bar through its callback: no update_normal)
    if rescaled:
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


def round_range(lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] widened to the round numbers just outside it: the ends of a colour scale.

    A live run's critic values drift a little every frame. A scale that followed them exactly had the
    colour bar and its ticks drawn again for every frame, which cost as much as the rest of the frame
    (py-spy on the server under bench/classroom.py: 465 of the 1,118 samples spent in its frames). On
    round ends the scale stays put until the values cross one, and figure_rgb pastes the bar back
    meanwhile; the same values get the same scale whoever draws them (a shared run's frames are drawn
    by any of its watchers, ui/frame_cache.py). The values fill three fifths of the scale or more.

        >>> round_range(-0.37, 1.62)
        (-0.5, 2.0)
        >>> round_range(3.0, 3.0)
        (3.0, 3.000000000001)
    """
    if not hi > lo:
        return (lo, lo + 1e-12)
    ticks = MaxNLocator(4).tick_values(lo, hi)
    return (min(float(f"{ticks[0]:.12g}"), lo), max(float(f"{ticks[-1]:.12g}"), hi))


def _new_frame(layout: tuple) -> Figure:
    """Axes, image, colour bar, ticks and the two scatters of a frame, with placeholder data."""
    grad_map, legend, size, dpi, lim, value_label = layout
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
    bar.set_label("‖∇f‖  (white = 1)" if grad_map else value_label, fontsize=8)
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


# ----------------------------------------------------------------------------- pictures the painter draws
def field_png(snapshot: Any, reuse: Figure | None = None, **options: Any) -> tuple[bytes, Figure]:
    """field_frame's picture as a PNG, and its figure to draw the next frame on (explorer/painter.py)."""
    fig = field_frame(snapshot, reuse=reuse, **options)
    return figure_png(fig), fig


def panels_png(panels: Sequence[tuple[Any, float | None, float | None]], titles: Sequence[str],
               reuse: list[Figure] | None = None, **options: Any) -> tuple[list[bytes], list[Figure]]:
    """One PNG per (panel, vmin, vmax) of scaled_panels, titled, and their figures for the next frame."""
    reuse = reuse or []
    figures = [field_frame(p, vmin=lo, vmax=hi, title=title, reuse=reuse[i] if i < len(reuse) else None, **options)
               for i, ((p, lo, hi), title) in enumerate(zip(panels, titles))]
    return [figure_png(fig) for fig in figures], figures


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
    """The figure rendered to an (H, W, 3) uint8 array (H, W = figure size in inches x dpi).

    A field frame (field_frame) is blitted: its axes, ticks and labels, which never change between
    frames and cost most of a full draw (text), are drawn once and kept as a background; each frame
    pastes that back and draws only what changes over it, in the order a full draw uses. A live
    Compare frame (two panels, gradient maps) costs ~25 ms instead of ~115 ms of the server's CPU.
    """
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    parts = getattr(fig, "_frame_parts", None)
    if parts is None:
        canvas.draw()
    else:
        _blit(canvas, parts)
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _changing(parts: dict) -> list:
    """A field frame's artists that change from frame to frame (its colour bar aside), and those a
    full draw puts over them: the frame of the axes and the tick marks that touch it."""
    ax = parts["ax"]
    marks = [tick.tick1line for axis in (ax.xaxis, ax.yaxis) for tick in axis.get_major_ticks()]
    found = [parts["image"], parts["real"], parts["fake"], ax.title, *ax.spines.values(), *marks]
    found += [parts[key] for key in ("contour", "quiver") if parts.get(key) is not None]
    if ax.get_legend() is not None:     # drawn over the points
        found.append(ax.get_legend())
    return found


def _blit(canvas: FigureCanvasAgg, parts: dict) -> None:
    ax, cax = parts["ax"], parts["bar"].ax
    changing = _changing(parts)
    if parts.get("background") is None:
        title_at = ax.title.get_position()     # (a draw with the frame hidden would move the title)
        for artist in (*changing, cax):
            artist.set_visible(False)
        canvas.draw()
        parts["background"] = canvas.copy_from_bbox(canvas.figure.bbox)
        for artist in (*changing, cax):
            artist.set_visible(True)
        ax.title.set_position(title_at)
    canvas.restore_region(parts["background"])
    renderer = canvas.get_renderer()
    for artist in sorted(changing, key=lambda a: a.get_zorder()):   # a stable sort, as Axes.draw does
        artist.draw(renderer)
    # The colour bar with its ticks costs as much again (under the gradient map's two-slope norm every
    # tick goes through masked arrays), and it only changes with its range: pasted back while it stays.
    norm = parts["image"].norm
    scale = (type(norm).__name__, norm.vmin, norm.vmax, getattr(norm, "vcenter", None))
    if parts.get("bar_scale") == scale:
        canvas.restore_region(parts["bar_pixels"])
    else:
        cax.draw(renderer)
        box = Bbox.intersection(cax.get_tightbbox(renderer).padded(2), canvas.figure.bbox)
        parts["bar_scale"], parts["bar_pixels"] = scale, canvas.copy_from_bbox(box)


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


# ----------------------------------------------------------------------------- panels side by side
SCALES = ("standardized, shared", "per panel", "raw, shared")   # colour scales of a comparison


def scaled_panels(panels: list, mode: str = SCALES[0]) -> list[tuple[Any, float | None, float | None]]:
    """(panel, vmin, vmax) per panel for one colour-scale policy (see SCALES).

    standardized, shared: each field becomes (f - mean f) / std f over the lattice, one range for all
    (a critic is only defined up to a constant, and clipping shrinks its scale: shapes compare, sizes not).
    per panel: each its own range. raw, shared: the values as they are, one range for all.
    """
    if mode not in SCALES:
        raise ValueError(f"Unknown colour scale {mode!r}; choose one of {', '.join(SCALES)}.")
    if mode == "per panel":
        return [(p, None, None) for p in panels]
    if mode == "standardized, shared":
        panels = [replace(p, field=(p.field - np.nanmean(p.field)) / (np.nanstd(p.field) or 1.0)) for p in panels]
    finite = [p.field[np.isfinite(p.field)] for p in panels]
    finite = [f for f in finite if f.size]
    lo = min((float(f.min()) for f in finite), default=0.0)
    hi = max((float(f.max()) for f in finite), default=1.0)
    return [(p, lo, hi) for p in panels]


def panel_rgb(panel: Any, vmin, vmax, title: str, size: float = 3.2) -> np.ndarray:
    return figure_rgb(field_frame(panel, vmin=vmin, vmax=vmax, title=title, legend=False, size=size, dpi=80))


def strip_images(strip: list, mode: str = SCALES[0], size: float = 3.2) -> list[np.ndarray]:
    """One RGB row image per strip frame: the runs side by side at that step (one GIF frame each).

    With a shared scale every frame of the strip uses one range, so colours compare across steps too.
    """
    if not strip:
        raise ValueError("The strip is empty: train a few steps first.")
    flat = scaled_panels([p for s in strip for p in s.panels], mode)
    k = len(strip[0].panels)
    rows = []
    for j, s in enumerate(strip):
        cells = [panel_rgb(p, lo, hi, f"{s.labels[i]} · step {s.step}", size)
                 for i, (p, lo, hi) in enumerate(flat[j * k:(j + 1) * k])]
        rows.append(np.concatenate(cells, axis=1))
    return rows


def strip_sheet_png(strip: list, mode: str = SCALES[0]) -> bytes:
    """The strip as one PNG sheet: a row per run, a column per step."""
    rows = strip_images(strip, mode)
    k = len(strip[0].panels)
    w = rows[0].shape[1] // k
    # transpose the layout: runs down, steps across
    sheet = np.concatenate([np.concatenate([r[:, i * w:(i + 1) * w] for r in rows], axis=1) for i in range(k)], axis=0)
    buf = io.BytesIO()
    Image.fromarray(sheet).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def strip_gif(strip: list, mode: str = SCALES[0], fps: float = 2.0) -> bytes:
    """The strip as an animated GIF: the runs side by side, one frame per strip step."""
    return frames_to_gif(strip_images(strip, mode), fps)


# ----------------------------------------------------------------------------- a sweep's sheet
def sweep_sheet_png(keys: Sequence[str], rows: Sequence[dict], size: float = 1.9, dpi: int = 90) -> bytes:
    """A sweep's runs as small multiples: each run's final generated points (orange) over real ones
    (grey), titled with its grid values and W1 / floor, modes and high-quality share. One column per
    value of the grid's last field (the seeds, as a sweep is usually written), the runs in the grid's
    order; a run that failed says why in its cell. rows: explorer/sweep.py's rows with their samples."""
    if not rows:
        raise ValueError("The sweep has no runs to draw.")
    last = keys[-1] if keys else None
    ncols = len({row.get(last) for row in rows}) if last else min(8, len(rows))
    ncols = max(1, min(ncols, 8))
    nrows = math.ceil(len(rows) / ncols)
    fig = Figure(figsize=(size * ncols, (size + 0.35) * nrows), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    lim = max((float(np.abs(row["samples"]["real"]).max()) for row in rows if "samples" in row), default=2.0) * 1.15
    for i, row in enumerate(rows):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[], aspect="equal")
        where = " ".join(f"{k}={row.get(k)}" for k in keys)
        if "error" in row or "samples" not in row:
            ax.text(0.5, 0.5, "\n".join(textwrap.wrap(row.get("error", "no samples"), 28)[:5]), ha="center",
                    va="center", fontsize=6, color="#b00020", transform=ax.transAxes)
            ax.set_title(where, fontsize=6.5)
            continue
        real, fake = row["samples"]["real"], row["samples"]["fake"]
        ax.scatter(real[:, 0], real[:, 1], s=1.5, c="#9e9e9e", linewidths=0)
        ax.scatter(fake[:, 0], fake[:, 1], s=1.5, c="#f57c00", linewidths=0)
        modes = f" · {row['modes']} modes · hq {100 * row['hq']:.0f}%" if row.get("modes") is not None else ""
        ax.set_title(f"{where}\nW1/floor {row['w1_ratio']:.2f}{modes}", fontsize=6.5)
    return figure_png(fig)


# ----------------------------------------------------------------------------- Lipschitz health
def lipschitz_figure(health: dict, title: str = "", size: float = 8.0, dpi: int = 100) -> Figure:
    """The critic's gradient at each hidden layer (log scale, the WGAN-GP paper's Figure 1b) beside
    the histogram of its weights (Figure 1c), from a snapshot's `lipschitz` dict."""
    fig = Figure(figsize=(size, size * 0.4), dpi=dpi)
    FigureCanvasAgg(fig)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    layers = np.asarray(health["layers"], dtype=np.float64)
    shown = layers > 0
    if shown.any():
        left.semilogy(np.arange(1, len(layers) + 1)[shown], layers[shown], marker="o", color="#4c78a8")
    left.set_xlabel("hidden layer (1 = next to the input)", fontsize=8)
    left.set_ylabel("‖∂L/∂h‖", fontsize=8)
    left.set_title("gradient at each layer", fontsize=9)
    counts, edges = np.asarray(health["weight_counts"]), np.asarray(health["weight_edges"])
    right.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4c78a8")
    if health.get("clip") is not None:
        for x in (-health["clip"], health["clip"]):
            right.axvline(x, color="#e45756", linestyle="--", linewidth=1)
    bound = f", {100 * health['at_bound']:.1f}% at ±c" if health.get("at_bound") is not None else ""
    right.set_title(f"the critic's weights{bound}", fontsize=9)
    right.set_xlabel("weight", fontsize=8)
    for ax in (left, right):
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
