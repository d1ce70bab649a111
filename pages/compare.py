"""Compare: GAN runs side by side in lock-step (GP vs clipping and friends), Figure 1's critics, grids."""
from __future__ import annotations

from dataclasses import replace
from functools import partial

import streamlit as st

from explorer import compare as C
from explorer import grid as Grid
from explorer import plots
from explorer import training_charts as charts
from explorer.choices import TOY_DATASET_NAMES, TOY_DATASETS
from explorer.depth import MAX_DEPTH, DepthConfig, make_depth_runs
from explorer.grid import MEMBER_FIELDS
from explorer.painter import paint
from explorer.replays import ReplayRecipe, replay_steps
from explorer.run_key import run_key
from explorer.session import Session
from explorer.toy_training import ToyConfig
from ui import frame_cache
from ui.grid_sweep import grid_sweep
from ui.live import CHART_S, FRAME_S, curves_note, live_frames, page_run
from ui.navigation import run_inside_app_navigation
from ui.replay import replay_panel, replay_ready, untouched
from ui.run_controls import is_live, run_buttons, shared_note, speed, visitor_session
from ui.slots import Slots
from ui.timeline import look_back, now_note
from ui.vega import vega_chart

run_inside_app_navigation()   # first: a link straight to this page must still get the app around it

SNAPSHOT_S = 0.3       # the worker snapshots every panel at most this often (and at most 12% of its time)
LIVE_GRID = 48         # the critic's lattice per panel while training (64 when it stands still)
STEP_CLICK = 10        # steps per click on "Step"
P = "cmp_"             # prefix of this page's session_state keys
MODES = ("Side by side", "Critic only (WGAN-GP Figure 1)", "Grid", "Gradients with depth (WGAN-GP Figure 1b)")
DATASETS = tuple(d for d in TOY_DATASETS if d != "points")   # the built-in ones
NICE = TOY_DATASET_NAMES
SCALE_SAYS = {   # what each colour scale of the critic's values shows, in a sentence
    "standardized, shared": "Colours: each critic's values minus their mean, divided by their spread, on one scale: "
                            "the shapes compare, the sizes do not (a clipped critic's values are tiny).",
    "per panel": "Colours: each panel on its own scale, from its smallest value to its largest.",
    "raw, shared": "Colours: the critics' values as they are, on one scale for every panel: a clipped critic, "
                   "whose values are tiny, is one flat colour.",
}
FIELD_NAMES = {"lam": "λ (penalty weight)", "clip": "c (weight clip)", "n_critic": "critic iterations",
               "lr_g": "generator learning rate", "lr_c": "critic learning rate", "seed": "seed"}


START = ToyConfig.recommended(DATASETS[0])   # the network and batch the page opens on (its first dataset's)
GRID_WIDTH = 64        # a grid trains up to 16 runs: its networks stay small whatever the dataset


def width_for(mode: str, rec: ToyConfig) -> int:
    """The width the slider proposes: the grid's own, else the dataset's recommended one."""
    return GRID_WIDTH if mode == MODES[2] else rec.width


def follow_dataset() -> None:
    """A new dataset brings the width and batch ToyConfig.recommended proposes for it (every run's
    losses and learning rates already come from there); both sliders still move."""
    rec = ToyConfig.recommended(st.session_state[P + "dataset"])
    st.session_state[P + "width"] = width_for(st.session_state[P + "mode"], rec)
    st.session_state[P + "batch"] = rec.batch_size


def new_session() -> Session:
    """This page's run handle: in a worker process, its 'trainer' steps every panel together."""
    return Session(None, C.take_snapshot, snapshot_every_s=SNAPSHOT_S, snapshot_share=0.12,
                   still_snapshot_fn=C.take_still_snapshot)


def floats(text: str) -> tuple:
    """'0.1, 1, 10' -> (0.1, 1.0, 10.0); ValueError with the bad item."""
    out = []
    for item in text.replace(";", ",").split(","):
        if item.strip():
            try:
                out.append(float(item))
            except ValueError:
                raise ValueError(f"{item.strip()!r} is not a number.") from None
    if not out:
        raise ValueError("Give at least one value.")
    return tuple(out)


def fmt(v) -> str:
    """Three significant figures: a clipped critic's tiny values stay visible (4.2e-05, not 0.000)."""
    return "–" if v is None else f"{v:.3g}"


# ----------------------------------------------------------------------------- settings
st.title("Compare runs side by side")
st.markdown(
    "Every panel is the same run except for what you compare: same data stream, same initial "
    "weights, same noise and seed. All panels advance in **lock-step** (one step counter) and share "
    "axes, so the difference between a gradient-penalty critic and a weight-clipped one is visible at "
    "a glance: the WGAN-GP paper's Figure 1, live.")

with st.sidebar:
    mode = st.radio("What to compare", MODES, key=P + "mode")
    st.header("Shared settings")
    dataset = st.selectbox("Dataset", DATASETS, key=P + "dataset", format_func=NICE.get,
                           disabled=mode == MODES[1], on_change=follow_dataset,
                           help="The critic-only mode picks its datasets above its panels." if mode == MODES[1] else
                           "A new dataset brings the network width and batch recommended for it.")
    width = st.select_slider("Width (units per layer)", (16, 32, 64, 128, 256), width_for(mode, START),
                             key=P + "width")
    if mode == MODES[3]:   # the paper's deep critics: up to 12 layers (a slider of its own)
        depth = st.slider("Depth (hidden layers)", 1, MAX_DEPTH, MAX_DEPTH, key=P + "depth_deep")
    else:
        depth = st.slider("Depth (hidden layers)", 1, 4, 3, key=P + "depth")
    batch = st.select_slider("Batch size", (32, 64, 128, 256, 512), START.batch_size, key=P + "batch")
    seed = int(st.number_input("Seed", 0, 2**31 - 1, 0, key=P + "seed"))
    scale = st.radio("Colour scale of the critic", plots.SCALES, key=P + "scale",
                     help="Clipped critics take tiny values, GP critics values of order W1: "
                          "standardized fields ((f − mean) / std) share one scale and compare shapes.")
    arrows = st.toggle("Arrows: where each critic pushes the generated points", key=P + "arrows")
    grad_map = st.toggle("Gradient-norm maps ‖∇f‖ (1 = white)", key=P + "grad_map", value=True,
                         help="Where weight clipping fails shows best here: the penalised critic's map is white "
                              "(‖∇f‖ = 1) between the clouds, the clipped one's deep blue (‖∇f‖ ≪ 1).")
base = ToyConfig(dataset=dataset, width=width, depth=depth, batch_size=batch, seed=seed)

error = None
try:
    if mode == MODES[0]:
        preset = st.selectbox("Preset", list(C.PRESETS), key=P + "preset")
        if preset in C.PRESET_NOTES:
            st.caption(C.PRESET_NOTES[preset])
        strip_every = st.number_input("Snapshot strip: a frame every N generator steps", 10, 100_000, 200,
                                      step=10, key=P + "strip_every")
        cfg = C.preset_config(preset, base, strip_every=int(strip_every), n=256, grid=64, live_grid=LIVE_GRID,
                              recommended=True)
        cfg.validate()
        factory = partial(C.make_runs, replace(cfg))
        st.caption("“Identical” means: each run has its own random generator, seeded alike, so runs with "
                   "the same critic iterations see the very same batches; a run with more critic "
                   "iterations reads further along the same stream every generator step.")
    elif mode == MODES[1]:
        a, b, c3 = st.columns(3)
        picked = a.multiselect("Datasets", DATASETS, list(DATASETS[:3]), key=P + "co_data", format_func=NICE.get,
                               help="One column of panels per dataset.")
        lam = b.number_input("λ (gradient penalty)", 0.0, 100.0, 10.0, key=P + "co_lam")
        clip = c3.select_slider("c (weight clipping)", (0.001, 0.01, 0.1), 0.01, key=P + "co_clip")
        cfg = C.CriticOnlyConfig(datasets=tuple(picked), lam=lam, clip=clip, width=width, depth=depth,
                                 batch_size=batch, seed=seed, n=256, grid=64)
        cfg.validate()
        factory = partial(C.make_critic_only, replace(cfg))
        st.caption("The “generator” is held fixed at the real data plus unit-variance Gaussian noise; "
                   "only the critics train (one critic step per step), toward the optimal critic, as in the "
                   "paper, which trains them to optimality: let it run for a thousand steps or more. Top row: "
                   "weight clipping; bottom row: gradient penalty. What to look for: the clipped critic ends "
                   "as a few straight ramps (it can only tilt, its ‖∇f‖ far below 1), the penalised one "
                   "follows the data's shape with ‖∇f‖ ≈ 1 around it.")
    elif mode == MODES[3]:
        a, b = st.columns(2)
        lam = a.number_input("λ of the penalised critic", 0.0, 100.0, 10.0, key=P + "d_lam")
        lr = b.select_slider("Critic learning rate", (1e-4, 3e-4, 1e-3, 3e-3), 1e-3, key=P + "d_lr",
                             format_func=lambda v: f"{v:g}")
        cfg = DepthConfig(dataset=dataset, depth=depth, width=width, lam=lam, lr=lr, batch_size=batch, seed=seed,
                          n=256, grid=48)
        cfg.validate()
        factory = partial(make_depth_runs, replace(cfg))
        st.caption(f"Four critics of {depth} hidden ReLU layers (no batch norm) learn to tell the data from a fixed "
                   "“generator” (the data plus unit noise), one step = one critic update each: three with "
                   "weights clipped at c = 0.1, 0.01 and 0.001, one with the gradient penalty. Watch the chart "
                   "of the gradient at each layer: with clipping it shrinks or grows by a constant factor per "
                   "layer (a straight line on the log scale, hundreds of steps to build up), with the penalty "
                   "it stays level; and the clipped critics' weights pile up at ±c (WGAN-GP paper, Figure 1b, 1c).")
    else:
        a, b = st.columns(2)
        fa = a.selectbox("First axis", MEMBER_FIELDS, 0, key=P + "fa", format_func=FIELD_NAMES.get)
        va = a.text_input("its values", "0.1, 1, 10", key=P + "va")
        fb = b.selectbox("Second axis", ("none",) + MEMBER_FIELDS, 3, key=P + "fb",
                         format_func=lambda f: FIELD_NAMES.get(f, f))
        vb = b.text_input("its values", "1, 5", key=P + "vb") if fb != "none" else ""
        cfg = Grid.GridConfig(base=base, field_a=fa, values_a=floats(va), field_b=None if fb == "none" else fb,
                              values_b=floats(vb) if fb != "none" else ())
        cfg.member_configs()
        factory = partial(Grid.make_grid, replace(cfg))
        st.caption("Each run of the grid is the very run the 2-D page would train with those settings, "
                   "all of them in lock-step: the same data, weights and noise for equal seeds.")
except ValueError as err:
    error, factory, cfg = str(err), None, None

session = visitor_session("compare", new_session)
st.session_state[P + "session"] = session
if error:
    st.error(f"Cannot build this comparison: {error}")
    st.stop()
cold = (mode, repr(cfg))
if st.session_state.get(P + "cold") != cold:
    session.reset(factory, key=run_key(f"compare:{mode}", cfg))   # the same comparison: one run for all
    st.session_state[P + "cold"] = cold


# ----------------------------------------------------------------------------- controls
run_buttons(session, P, step_n=STEP_CLICK, reset=lambda: session.reset(factory))
# A preset on the shared settings' defaults, before it is trained, is shown recorded (ui/replay.py).
on_defaults = (mode == MODES[0] and cfg.strip_every == 200
               and base == ToyConfig(dataset=DATASETS[0], width=START.width, batch_size=START.batch_size))
replay = ReplayRecipe(run_key(f"compare:{mode}", cfg), partial(C.make_runs, replace(cfg)), C.take_still_snapshot,
                      replay_steps()) if on_defaults else None
on_replay = replay is not None and untouched(session)   # replay_panel below
shows_replay = on_replay and replay_ready(replay)   # it will show the replay (else the recording's note)
try:
    if session.state == "idle" and not shows_replay:   # the replay stands for the untrained runs
        session.prepare()
except ValueError as err:
    st.error(str(err))
live, drawn_state = is_live(session), session.state   # training or queued: views rerun
page_run()   # this run draws one live frame; the live view's own runs draw the rest


def render_panels(snap: C.CompareSnapshot, small: bool, cache: str) -> list[bytes]:
    """The panels as PNGs on one colour scale, drawn by the painter process (explorer/painter.py) once
    per snapshot and view for every visitor who watches it (ui/frame_cache.py). cache: the view's name
    (live, timeline), which with the run names the painter's lane (its figures, updated in place)."""
    view = ("compare", scale, arrows, grad_map, small)

    def draw() -> list[bytes]:
        titles = [f"{label} · step {snap.step}" for label in snap.labels]
        return paint(plots.panels_png, plots.scaled_panels(snap.panels, scale), titles,
                     lane=(view, cache, session.run_key or id(session)), legend=False, size=2.6 if small else 4.0,
                     dpi=80, arrows=arrows, grad_map=grad_map)
    return frame_cache.drawn(snap, view, draw)


def draw_panels(snap: C.CompareSnapshot, columns: int, small: bool, cache: str, slots: Slots) -> None:
    """The panels in rows of `columns`, one colour scale (see the sidebar), metrics under each.
    cache: the prefix of the session_state entries that keep their figures (the live view's, the timeline's)."""
    frames = render_panels(snap, small, cache)
    for row in range(0, len(frames), columns):
        cols = slots.columns(f"row {row}", st, columns)
        for col, i in zip(cols, range(row, min(row + columns, len(frames)))):
            m = snap.panels[i].metrics
            slots.show(f"picture {i}", col, "image", frames[i], width="stretch", output_format="PNG")
            diverged = f"{snap.labels[i]}: {snap.diverged[i]}" if snap.diverged[i] else ""
            slots.line(f"diverged {i}", col, "error", diverged)
            lines = [f"**{snap.labels[i]}**", f"exact W1 {fmt(m['w1_exact'])}"
                     + (f" (floor {fmt(m['w1_floor'])})" if m.get("w1_floor") is not None else ""),
                     f"critic estimate {fmt(m['w_est'])}"]
            if m.get("modes") is not None:
                lines.append(f"modes {m['modes']}/{m['n_modes']} · high quality {100 * m['hq']:.0f}%")
            lines.append(f"‖∇f‖ on interpolates {fmt(m['gp_grad_norm_mean'])} ± {fmt(m['gp_grad_norm_std'])}")
            health = snap.panels[i].lipschitz
            if health and health["at_bound"] is not None:
                lines.append(f"weights at ±c: {100 * health['at_bound']:.1f}%")
            slots.show(f"numbers {i}", col, "markdown", "  \n".join(lines))
            slots.line(f"health {i}", col, "caption", health["diagnosis"] if health else "")


@st.fragment(run_every=FRAME_S if live else None)
def live_view() -> None:
    if live and session.state != drawn_state:   # stopped by itself: redraw buttons and messages
        st.rerun(scope="app")
    slots = None   # the view is laid out at the first frame: till then the last loop's frame stays up
    for snap in live_frames(session, P + "shown", live):   # frame after frame while it trains
        if snap is not None:   # the figures first, so the frame on screen is replaced at once
            render_panels(snap, mode in (MODES[2], MODES[3]), P)
        slots = slots or Slots()
        draw_frame(snap, session.state, slots)


def draw_frame(snap: C.CompareSnapshot | None, state: str, slots: Slots) -> None:
    """One frame of the live view: the step line and the panels with their numbers (each sent to the
    browser only when it changed since the last frame)."""
    slots.line("message", st, "error" if state == "error" else "warning", session.message)
    slots.line("shared", st, "caption", shared_note(session))
    if snap is None:
        slots.show("start", st, "info",
                   "Press Start to train every panel together, or Step to go a few steps at a time.")
        return
    measured = snap.step if snap.measured_at is None else snap.measured_at   # numbers: once a second
    slots.show("step", st, "markdown", f"**Step {snap.step:,}** · {state}{speed(session)} · "
               f"{session.run_seconds:.0f} s of training · numbers under the panels from step {measured:,} · "
               f"colour scale: {scale}")
    draw_snapshot(snap, P, slots)


def draw_snapshot(snap: C.CompareSnapshot, cache: str, slots: Slots) -> None:
    """A snapshot's panels as the mode lays them out, with their numbers: the live frame, or a kept one
    on the timeline. cache: the prefix of the session_state entries that keep its figures."""
    slots.show("scale", st, "caption", SCALE_SAYS[scale] if not grad_map else
               "Background: ‖∇f‖ on one scale for every panel, white at 1 (what the penalty asks for), blue "
               "below, red above. Switch the maps off to see the critic's values.")
    if mode == MODES[1]:
        draw_panels(snap, len(cfg.datasets), small=False, cache=cache, slots=slots)
        slots.show("under", st, "caption", "Under the panels, exact W1 is between the fixed real and noisy "
                   "samples: an optimal 1-Lipschitz critic's estimate reaches it; the GP critic's ‖∇f‖ sits near 1.")
    elif mode in (MODES[2], MODES[3]):
        draw_panels(snap, min(4, len(snap.panels)), small=True, cache=cache, slots=slots)
        if mode == MODES[2]:
            fields = [cfg.field_a] + ([cfg.field_b] if cfg.field_b else [])
            numbers = {c: st.column_config.NumberColumn(c, format="%.3g") for c in
                       ("W1 exact", "W1 floor", "‖∇f‖ mean", "‖∇f‖ std")}
            slots.show("table", st, "dataframe", Grid.grid_table(snap, cfg.member_configs(), fields),
                       hide_index=True, column_config={**{f: FIELD_NAMES[f] for f in fields}, **numbers,
                                                       "HQ %": st.column_config.NumberColumn("HQ %", format="%.1f")})
    else:
        draw_panels(snap, len(snap.panels), small=False, cache=cache, slots=slots)


def timeline() -> None:
    """Look back: a step slider over the frames the session kept, every panel drawn as the live view
    draws it. Only runs of the whole page draw it (moving the slider is one), never the live loop, so
    the runs train on and their live view goes on above."""
    moment = look_back(session, P, "Look back: a timeline over these runs' kept frames",
                       "Rewind every panel to an earlier step and look again; the runs go on meanwhile.")
    if moment is None:
        return
    frame = moment.frame
    # The numbers under the panels are the frame's own, measured at its measured_at and logged there:
    # Compare's log keeps only each run's W1, its floor and the critic's estimate, fewer than a panel shows.
    measured = frame.step if frame.measured_at is None else frame.measured_at
    st.markdown(f"**The frame kept at step {frame.step:,}** · numbers under the panels from step {measured:,} · "
                f"colour scale: {scale}")
    draw_snapshot(frame, P + "tl_", Slots())
    st.caption(now_note(session))


@st.fragment(run_every=CHART_S if live else None)
def curves() -> None:
    """The slower charts: W1 over steps (side by side); the gradient at each layer of every critic and
    their weights (side by side, and the depth mode's Figures 1b and 1c)."""
    snap, log = session.latest(), session.metrics_log()
    if snap is None:
        return
    if mode == MODES[0] and len(log) > 1:
        if note := curves_note(live):
            st.caption(note)
        vega_chart(charts.w1_chart(log, snap.labels))
    healths = [p.lipschitz for p in snap.panels]
    if mode not in (MODES[0], MODES[3]) or not all(healths):
        return
    vega_chart(charts.layer_norms_chart(snap.labels, [h["layers"] for h in healths]))
    for col, label, h in zip(st.columns(len(healths)), snap.labels, healths):
        bound = f" · {100 * h['at_bound']:.0f}% at ±c" if h["at_bound"] is not None else ""
        vega_chart(charts.weight_histogram_chart(h["weight_counts"], h["weight_edges"], f"{label}{bound}", h["clip"]),
                   col)


def train_live_from(kind: str, compared: C.CompareConfig, step: int, data: bytes) -> None:
    """The replay's "Train live from here": the runs from its checkpoint at `step` (visitors who fork the
    same checkpoint share them)."""
    session.reset(partial(C.runs_from_bytes, compared, data), key=run_key(kind, compared, checkpoint=data))
    session.start()


def draw_recorded(frame: C.CompareSnapshot) -> None:
    """A replay's frame: every panel with the numbers measured at its step."""
    st.markdown(f"**The recorded frame at step {frame.step:,}** · numbers under the panels from that step · "
                f"colour scale: {scale}")
    draw_snapshot(frame, P + "rp_", Slots())



def strip_file(draw, scale: str) -> bytes:
    """A strip download, on its click (a deferred download, in a thread of its own): the frames come
    from the run's worker then, not on every run of the page, and draw() makes the file."""
    return draw(session.call(C.strip_frames), scale)


if not (on_replay
        and replay_panel(replay, P, draw_recorded, partial(train_live_from, f"compare:{mode}", replace(cfg)))):
    live_view()
    timeline()
    curves()
if mode == MODES[2]:   # the grid's runs apart, each trained to the end on a worker of its own
    grid_sweep(cfg.member_configs(), (cfg.field_a,) + ((cfg.field_b,) if cfg.field_b else ()), FIELD_NAMES, P)

# ----------------------------------------------------------------------------- snapshot strip
if mode == MODES[0] and session.latest() is not None:
    with st.expander("Snapshot strip (frames at fixed steps, every run)"):
        try:
            steps = session.call(C.strip_steps)
        except (RuntimeError, TimeoutError):   # the run's worker is gone: its message is shown above
            steps = []
        st.caption(f"{len(steps)} frame(s) at steps {', '.join(map(str, steps))}; at most "
                   f"{cfg.strip_max} are kept (the interval doubles when full). Colour scale: {scale}.")
        d1, d2 = st.columns(2)
        d1.download_button("Strip sheet (PNG)", partial(strip_file, plots.strip_sheet_png, scale), "compare_strip.png",
                           "image/png", on_click="ignore", disabled=not steps)
        d2.download_button("Side-by-side (GIF)", partial(strip_file, plots.strip_gif, scale), "compare_strip.gif",
                           "image/gif", on_click="ignore", disabled=not steps)
