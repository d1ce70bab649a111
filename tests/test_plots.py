"""Frames, PNG and GIF from snapshots: sizes, colours where they must be, bad input refused."""
import io
import threading
import types

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from PIL import Image

from explorer import plots
from explorer.toy_training import metrics_table


def synthetic_snapshot(step=7, lim=3.0, grid=64, n=64, seed=0):
    """A critic f(x, y) = x (so grad f = (1, 0) everywhere, norm 1) and two point clouds."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(-lim, lim, grid)
    xx, yy = np.meshgrid(axis, axis)            # rows = y, like critic_field's axis 0
    fake = rng.normal(size=(n, 2))
    return types.SimpleNamespace(
        step=step, lim=lim, field=xx.copy(), grad_norm_field=np.ones((grid, grid)),
        real=rng.normal(size=(n, 2)) + 1.0, fake=fake, push=np.tile([1.0, 0.0], (n, 1)),
        history=[{"step": i + 1, "loss_c": -i / 10, "loss_g": i / 20, "w_est": 1 / (i + 1), "gp": 0.1}
                 for i in range(1000)],
        metrics={"w1_exact": 0.5, "w1_floor": 0.1, "modes": 6, "n_modes": 8, "hq": 0.7, "w_est": 0.4})


def test_field_frame_is_the_lecture_picture():
    snap = synthetic_snapshot()
    fig = plots.field_frame(snap)
    ax = fig.axes[0]
    assert ax.get_xlim() == (-3.0, 3.0) and ax.get_ylim() == (-3.0, 3.0)
    real, fake = (next(c for c in ax.collections if c.get_label() == name) for name in ("real", "generated"))
    assert np.allclose(real.get_offsets(), snap.real) and np.allclose(fake.get_offsets(), snap.fake)
    assert np.allclose(real.get_facecolor()[0], to_rgba("orange"))
    assert np.allclose(fake.get_facecolor()[0], to_rgba("green"))
    image = ax.images[0]
    assert image.origin == "lower" and tuple(image.get_extent()) == (-3, 3, -3, 3)
    assert ax.get_title() == "step 7"
    # The critic f = x grows to the right: the image's right column holds the largest values.
    data = image.get_array()
    assert data[:, -1].min() > data[:, 0].max()


def test_shared_colour_range_and_grad_map_centred_on_one():
    snap = synthetic_snapshot()
    fig = plots.field_frame(snap, vmin=-10, vmax=10)
    assert fig.axes[0].images[0].get_clim() == (-10, 10)
    fig = plots.field_frame(snap, grad_map=True)
    norm = fig.axes[0].images[0].norm
    assert norm.vcenter == 1.0 and norm.vmin == 0.0 and norm.vmax >= 2.0
    assert plots.field_range(snap, synthetic_snapshot(lim=5.0)) == (-5.0, 5.0)


def test_arrows_point_along_the_gradient():
    snap = synthetic_snapshot()
    fig = plots.field_frame(snap, arrows=True)
    quiver = [c for c in fig.axes[0].collections if c.__class__.__name__ == "Quiver"][0]
    assert np.all(quiver.U > 0) and np.allclose(quiver.V, 0)     # grad of f = x is +x everywhere


def test_reused_figure_draws_the_same_pixels():
    first, second = synthetic_snapshot(step=1, seed=1), synthetic_snapshot(step=2, seed=2)
    second.field = -second.field
    fig = plots.field_frame(first, arrows=True)
    again = plots.field_frame(second, arrows=True, reuse=fig)
    assert again is fig                                           # updated in place
    fresh = plots.field_frame(second, arrows=True)
    assert np.array_equal(plots.figure_rgb(again), plots.figure_rgb(fresh))
    other = plots.field_frame(second, grad_map=True, reuse=fig)  # another layout: a new figure
    assert other is not fig and other.axes[0].images[0].norm.vcenter == 1.0


def full_draw(fig) -> np.ndarray:
    fig.canvas.draw()                     # matplotlib's own draw of every artist, no background kept
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)


@pytest.mark.parametrize("options", [{}, {"grad_map": True, "arrows": True}, {"legend": True, "arrows": True}])
def test_blitted_frames_match_a_full_draw(options):
    fig = None
    for step in range(1, 4):   # the first frame (which keeps the background) and two drawn over it
        snap = synthetic_snapshot(step=step, seed=step)
        snap.field = snap.field * step          # a new colour range and title every frame
        fig = plots.field_frame(snap, reuse=fig, **options)
        blitted = plots.figure_rgb(fig).astype(int)
        fresh = plots.field_frame(snap, **options)
        # At most one grey level on one tick mark, which the blit draws twice where it meets the frame.
        assert np.abs(blitted - full_draw(fresh)).max() <= 1
        assert np.abs(blitted - full_draw(fig)).max() <= 1
        assert fig.axes[0].title.get_text() == f"step {step}"


def test_constant_or_nan_field_still_draws():
    snap = synthetic_snapshot()
    snap.field = np.zeros_like(snap.field)                        # no contour levels to draw
    assert plots.figure_png(plots.field_frame(snap)).startswith(b"\x89PNG")
    snap.field[:5] = np.nan
    assert plots.figure_png(plots.field_frame(snap, grad_map=True, arrows=True)).startswith(b"\x89PNG")


def test_png_and_rgb_have_the_figure_size():
    fig = plots.field_frame(synthetic_snapshot(), size=4.0, dpi=50)
    width, height = (fig.get_size_inches() * 50).round().astype(int)
    png = Image.open(io.BytesIO(plots.figure_png(fig)))
    assert png.size == (width, height)
    rgb = plots.figure_rgb(fig)
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8


def test_frames_to_gif_round_trip():
    frames = [np.full((20, 30, 3), v, dtype=np.uint8) for v in (0, 120, 250)]
    gif = Image.open(io.BytesIO(plots.frames_to_gif(frames, fps=4)))
    assert gif.format == "GIF" and gif.size == (30, 20) and gif.n_frames == 3
    assert gif.info["duration"] == 250 and gif.info["loop"] == 0
    gif.seek(1)
    assert abs(np.asarray(gif.convert("RGB")).astype(int).mean() - 120) < 3


@pytest.mark.parametrize("frames, fps, match", [
    ([], 5, "at least one"),
    ([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], 5, "one size"),
    ([np.zeros((4, 4), np.uint8)], 5, "uint8"),
    ([np.zeros((4, 4, 3), np.uint8)], 0, "fps"),
])
def test_frames_to_gif_refuses_bad_input(frames, fps, match):
    with pytest.raises(ValueError, match=match):
        plots.frames_to_gif(frames, fps)


def test_frames_from_threads_do_not_mix():
    """Two threads drawing at once (Figure API, no pyplot state) get their own pictures."""
    results = {}

    def draw(key, lim):
        results[key] = plots.figure_rgb(plots.field_frame(synthetic_snapshot(lim=lim), title=key))

    threads = [threading.Thread(target=draw, args=(k, lim)) for k, lim in (("a", 3.0), ("b", 5.0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alone = plots.figure_rgb(plots.field_frame(synthetic_snapshot(lim=3.0), title="a"))
    assert np.array_equal(results["a"], alone)


def test_history_table_joins_metrics():
    snap = synthetic_snapshot()
    table = metrics_table(snap.history[:10], [{"step": 5, **snap.metrics}])
    assert len(table) == 10 and table.loc[table.step == 5, "w1_exact"].item() == 0.5
    # steps 1-4 come before any measurement; steps 5-10 carry step 5's, and say so
    assert table["w1_exact"].isna().sum() == 4 and (table.loc[table.step >= 5, "measured_at"] == 5).all()
    assert "loss_c" in table.columns and table["w_est"].notna().all()   # history's w_est wins


def test_the_colour_bar_names_a_discriminators_logit():
    snap = synthetic_snapshot()
    fig = plots.field_frame(snap, value_label="discriminator logit")
    assert fig._frame_parts["bar"].ax.get_ylabel() == "discriminator logit"
    assert plots.field_frame(snap)._frame_parts["bar"].ax.get_ylabel() == "critic value f"


def test_a_sweeps_sheet_has_a_cell_per_run_a_column_per_seed_and_says_why_a_run_failed():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(64, 2))
    rows = [{"lam": lam, "seed": seed, "w1_ratio": 1.5, "modes": 8, "hq": 0.9,
             "samples": {"real": real, "fake": real + 0.1}} for lam in (0.1, 10.0) for seed in (0, 1)]
    rows[3] = {"lam": 10.0, "seed": 1, "error": "Diverged at step 3"}
    sheet = np.asarray(Image.open(io.BytesIO(plots.sweep_sheet_png(("lam", "seed"), rows, size=2.0, dpi=50))))
    assert sheet.shape[:2] == (round(2 * 2.35 * 50), 2 * 2 * 50)     # two rows of runs, a column per seed
    r, g, b = (sheet[..., i].astype(int) for i in range(3))
    orange = (r > 200) & (g > 90) & (g < 160) & (b < 60)            # the generated points
    red = (r > 140) & (g < 40) & (b < 60)                           # the failed run's message
    h, w = sheet.shape[0] // 2, sheet.shape[1] // 2
    cells = [(i, j) for i in range(2) for j in range(2)]
    assert [orange[i * h:(i + 1) * h, j * w:(j + 1) * w].sum() > 20 for i, j in cells] == [True, True, True, False]
    assert [red[i * h:(i + 1) * h, j * w:(j + 1) * w].sum() > 5 for i, j in cells] == [False, False, False, True]
    with pytest.raises(ValueError, match="no runs"):
        plots.sweep_sheet_png(("seed",), [])


def test_colour_scales_end_on_round_numbers_around_the_values():
    assert plots.round_range(-0.37, 1.62) == (-0.5, 2.0)
    assert plots.round_range(0.0, 2.3) == (0.0, 2.4)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        centre, half = rng.normal() * 10, abs(rng.normal()) * 10 + 1e-6
        lo, hi = plots.round_range(centre - half, centre + half)
        assert lo <= centre - half and hi >= centre + half and 2 * half >= 0.6 * (hi - lo)


def test_a_drifting_critic_keeps_its_colour_scale_for_most_frames():
    """A live run's values move a little every frame: the scale (and the colour bar, drawn again only
    when it changes) moves when they cross a round number."""
    snap = synthetic_snapshot()
    fig, scales = None, []
    for i in range(40):
        snap.field = snap.field * 1.01 + 0.002        # 1% wider and a little higher every frame
        fig = plots.field_frame(snap, reuse=fig)
        lo, hi = fig.axes[0].images[0].get_clim()
        assert lo <= snap.field.min() and hi >= snap.field.max()
        scales.append((lo, hi))
    assert len(set(scales)) <= 6                      # 40 frames, the values 49% wider at the end
