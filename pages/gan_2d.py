"""2-D GAN: train GAN / WGAN / WGAN-GP live and watch the critic's landscape move."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from functools import partial

import streamlit as st

from explorer import plots
from explorer import training_charts as charts
from explorer.checkpoints import checkpoint_bytes
from explorer.choices import DEVICES, HOT_FIELDS, LOSSES, TOY_CLIPS, TOY_DATASET_NAMES, TOY_DATASETS, TOY_OFFER
from explorer.hot_schedule import MAX_CHANGES
from explorer.painter import paint
from explorer.pool import get_pool
from explorer.replays import ReplayRecipe, replay_steps
from explorer.run_key import digest, run_key
from explorer.session import Session
from explorer.toy_data import DEFAULT_SPREAD, parse_points_csv
from explorer.toy_training import (
    PUBLISHED_QUALITY,
    ToyConfig,
    describe_toy_checkpoint,
    make_toy_trainer,
    metrics_table,
    toy_snapshot,
    toy_trainer_from_bytes,
)
from ui import frame_cache, links
from ui.budget import admit_upload
from ui.live import CHART_S, FRAME_S, curves_note, live_frames, page_run
from ui.navigation import run_inside_app_navigation
from ui.replay import replay_panel, replay_ready, untouched
from ui.run_controls import is_live, run_buttons, shared_note, speed, visitor_session
from ui.slots import Slots
from ui.timeline import look_back, now_note
from ui.vega import vega_chart

run_inside_app_navigation()   # first: a link straight to this page must still get the app around it

SNAPSHOT_S = 0.3       # the worker takes a snapshot at most this often (and at most 10% of its time)
# The critic field: the lecture notes' 128 x 128 grid at rest, 64 x 64 while training (a 128 grid
# costs as much as ~3 training steps, 64 about two; bench/app_overhead.py).
LIVE_GRID, STILL_GRID = 64, 128
STEP_CLICK = 10        # generator steps per click on "Step"
P = "g2_"              # prefix of this page's session_state keys

DEFAULT = ToyConfig.recommended("8gaussians", "wgan-gp")   # the page opens on these
# What the widgets offer and a URL may set: a tuple of allowed values, or (low, high, type) for a range
# (explorer/choices.py, where an uploaded checkpoint's sizes are held to the same).
SETTINGS = TOY_OFFER
KEEP = ("dataset", "loss", "seed", "device")   # what "recommended settings" leaves as the visitor set it
COLD = tuple(k for k in SETTINGS if k not in HOT_FIELDS)   # changing these starts a new run
TOGGLES = ("arrows", "grad_map", "raw", "health")   # the view's switches, in the link too
LABELS = {"lam": "λ", "clip": "c", "n_critic": "critic iterations", "lr_g": "generator lr", "lr_c": "critic lr"}


def parse_setting(name: str, raw: str):
    """A URL value -> the setting, or ValueError if it is not one the page offers."""
    spec = SETTINGS[name]
    if isinstance(spec[-1], type):
        low, high, kind = spec
        value = kind(float(raw)) if kind is float else int(raw)
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(raw)
        return value
    for option in spec:
        if str(option) == raw or (isinstance(option, float) and _float_eq(raw, option)):
            return option
    raise ValueError(raw)


def _float_eq(raw: str, option: float) -> bool:
    try:
        return math.isclose(float(raw), option, rel_tol=1e-9)
    except ValueError:
        return False


def sig(value: float) -> str:
    """Three significant figures: weight clipping's tiny gradients read 0.00048, not 0.00."""
    return f"{value:.3g}"


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def new_session() -> Session:
    """This page's run handle: the run trains in a worker process; the page draws its snapshots."""
    # Live frames re-measure their numbers once a second (measure=None); a still frame measures them.
    return Session(None, partial(toy_snapshot, grid=LIVE_GRID, measure=None), hot_fields=HOT_FIELDS,
                   snapshot_every_s=SNAPSHOT_S, still_snapshot_fn=partial(toy_snapshot, grid=STILL_GRID))


@st.cache_data(max_entries=8, show_spinner=False)
def read_points(data: bytes):
    return parse_points_csv(data)


def load_uploaded_checkpoint() -> None:
    """on_change of the checkpoint uploader: rebuild the run from the file, or say why not."""
    upload = st.session_state.get(P + "ckpt")
    if upload is None:
        return
    refusal = admit_upload(upload)
    if refusal:
        st.session_state[P + "ckpt_error"] = refusal
        return
    data, points, device = upload.getvalue(), st.session_state.get(P + "points"), st.session_state[P + "device"]
    try:   # the file is opened and checked in a worker process, not in the web server
        found = get_pool().call(describe_toy_checkpoint, data, points, device)
        values = {k: found["config"][k] for k in SETTINGS}
        off = [f"{k}={_fmt(v)}" for k, v in values.items() if _not_offered(k, v)]
        if off:
            raise ValueError(f"The checkpoint uses settings this page does not offer ({', '.join(off)}); "
                             "resume it with `python -m explorer toy` instead.")
    except (ValueError, RuntimeError) as err:   # wrong, corrupt or foreign file: nothing changes
        st.session_state[P + "ckpt_error"] = str(err)
        return
    st.session_state.pop(P + "ckpt_error", None)
    for k, v in values.items():
        st.session_state[P + k] = v
    # Two visitors who resume the same file with the same data and device train one run.
    key = run_key("toy", replace(DEFAULT, **values), data=points, checkpoint=data)
    st.session_state[P + "resume"] = (partial(toy_trainer_from_bytes, data, points, device), key, found["step"],
                                      found["note"])


def apply_recommended(names: tuple = tuple(SETTINGS)) -> None:
    """The settings ToyConfig.recommended proposes for the chosen dataset and loss (the button, and
    on_change of the dataset); every slider still moves afterwards."""
    rec = ToyConfig.recommended(st.session_state[P + "dataset"], st.session_state[P + "loss"])
    for name in names:
        value = getattr(rec, name)
        if name not in KEEP and not _not_offered(name, value):
            st.session_state[P + name] = value


LOSS_FIELDS = HOT_FIELDS + ("optimizer",)   # what follows a change of the loss (the network stays as set)


def _not_offered(name: str, value) -> bool:
    try:
        return parse_setting(name, _fmt(value)) != value
    except ValueError:
        return True


# ----------------------------------------------------------------------------- settings
st.title("2-D GAN, live")
st.markdown(
    "Orange **+** are real samples, green **×** the generator's; the background is the critic f. "
    "Switch on the **gradient-norm map**: under WGAN-GP the critic's ‖∇f‖ sits near **1** (white) "
    "between the two clouds, as the penalty asks, while under weight clipping it is far from 1 "
    "and the arrows (where the generator is pushed) lose their way. Change λ, clip, critic "
    "iterations or learning rates while it runs; other settings start a new run."
)

if P + "init" not in st.session_state:   # first run of this visitor: URL settings, else defaults
    bad = []
    for name in SETTINGS:
        value = getattr(DEFAULT, name)
        if name in st.query_params:
            try:
                value = parse_setting(name, st.query_params[name])
            except (ValueError, OverflowError):
                bad.append(f"{name}={st.query_params[name]!r}")
        st.session_state[P + name] = value
    for name, on in links.toggles_from(st.query_params, TOGGLES).items():
        st.session_state[P + name] = on
    # The link's hot changes by step: the first run follows them (explorer/hot_schedule.py).
    st.session_state[P + "plan"], unusable = links.plan_from(st.query_params, parse_setting, HOT_FIELDS)
    st.session_state[P + "link_points"] = st.query_params.get(links.POINTS)
    st.session_state[P + "init"] = True
    if bad:
        st.warning(f"Ignored settings in the link that are out of range or unreadable: {', '.join(bad)}. "
                   "Using the defaults for those.")
    if unusable:
        st.warning(unusable)

session = visitor_session("gan_2d", new_session)
st.session_state[P + "session"] = session   # tests and teardown reach the run through this
links.follow_plan(session, P, HOT_FIELDS)   # the sliders show what a link's plan has set so far

with st.sidebar:
    st.header("Data and model")
    st.caption("Changing any of these starts a new run at step 0: download the checkpoint first to keep "
               "this one.")
    st.selectbox("Dataset", TOY_DATASETS, key=P + "dataset", format_func=TOY_DATASET_NAMES.get,
                 on_change=apply_recommended)
    points = points_digest = None
    if st.session_state[P + "dataset"] == "points":
        upload = st.file_uploader("CSV of x,y rows", type=["csv", "txt"], key=P + "points_file")
        refusal = admit_upload(upload) if upload is not None else None
        if refusal:
            st.warning(refusal)
        elif upload is not None:
            try:
                points = read_points(upload.getvalue())
                points_digest = digest(upload.getvalue())
            except ValueError as err:
                st.error(f"Could not read the points: {err}")
        linked = st.session_state.get(P + "link_points")
        if linked and points_digest and not points_digest.startswith(linked):
            st.warning("These points are not the file the link's run trained on (their SHA-256 differs), so "
                       "this run will not be the one the link showed.")
    st.session_state[P + "points"] = points
    st.radio("Loss", LOSSES, key=P + "loss", horizontal=True, on_change=apply_recommended, args=(LOSS_FIELDS,),
             format_func={"gan": "GAN", "wgan": "WGAN (clip)", "wgan-gp": "WGAN-GP"}.get)
    st.button("Recommended settings", key=P + "recommended", on_click=apply_recommended,
              help="What the app proposes for this dataset and loss (ToyConfig.recommended). A new dataset "
                   "brings them all; a new loss its own (λ, c, critic iterations, learning rates, optimizer).")
    st.select_slider("Width (units per layer)", SETTINGS["width"], key=P + "width")
    st.slider("Depth (hidden layers)", *SETTINGS["depth"][:2], key=P + "depth")
    st.select_slider("Batch size", SETTINGS["batch_size"], key=P + "batch_size")
    st.selectbox("Optimizer", SETTINGS["optimizer"], key=P + "optimizer")
    st.number_input("Seed", 0, 2**31 - 1, step=1, key=P + "seed")
    st.selectbox("Device", DEVICES, key=P + "device")
    st.select_slider("Generator averaging (EMA decay)", SETTINGS["ema"], key=P + "ema",
                     format_func=lambda v: "off" if v == 0 else f"{v:g}",
                     help="The points and numbers come from an exponential moving average of the generator's "
                          "weights (Yazici et al. 2019): steadier than the generator itself. 0: off.")
    st.header("Changeable while running")
    loss_now = st.session_state[P + "loss"]      # only the loss's own knob is live
    st.slider("λ, gradient-penalty weight (WGAN-GP)", *SETTINGS["lam"][:2], step=0.5, key=P + "lam",
              disabled=loss_now != "wgan-gp")
    st.select_slider("c, weight clip (WGAN)", TOY_CLIPS, key=P + "clip", disabled=loss_now != "wgan")
    st.slider("Critic iterations per generator step", *SETTINGS["n_critic"][:2], key=P + "n_critic")
    st.select_slider("Generator learning rate", SETTINGS["lr_g"], key=P + "lr_g", format_func=lambda v: f"{v:g}")
    st.select_slider("Critic learning rate", SETTINGS["lr_c"], key=P + "lr_c", format_func=lambda v: f"{v:g}")
    st.file_uploader("Resume from a checkpoint (.pt)", type=["pt"], key=P + "ckpt",
                     on_change=load_uploaded_checkpoint)

values = {k: st.session_state[P + k] for k in SETTINGS}
cfg = replace(DEFAULT, **values)

if P + "ckpt_error" in st.session_state:
    st.error(f"Could not resume from that file: {st.session_state[P + 'ckpt_error']}")

cold = {**{k: values[k] for k in COLD}, "points": points_digest}
hot = {k: values[k] for k in HOT_FIELDS}
if P + "resume" in st.session_state:     # a checkpoint was just loaded: it becomes the run
    resumed, key, at_step, note = st.session_state.pop(P + "resume")
    session.reset(resumed, key=key)
    st.session_state[P + "cold"], st.session_state[P + "hot"] = cold, hot
    st.session_state[P + "resumed"], st.session_state[P + "start_hot"] = True, hot
    st.success(f"Resumed from the checkpoint at step {at_step:,}. Press Start to go on.")
    if note:
        st.info(note)
elif st.session_state.get(P + "cold") != cold:
    before, was = st.session_state.get(P + "cold"), session.latest()
    plan = st.session_state.pop(P + "plan", [])   # a link's changes: for the run it opens with only
    # The key: visitors who press Start on the same settings (and data, and plan) watch one run.
    session.reset(partial(make_toy_trainer, replace(cfg), points), key=run_key("toy", cfg, data=points,
                  schedule=plan), schedule=plan)
    st.session_state[P + "cold"], st.session_state[P + "hot"] = cold, hot
    st.session_state[P + "resumed"] = False
    if before is not None and was is not None and was.step > 0:
        changed = ", ".join(k.replace("_", " ") for k in cold if before.get(k) != cold[k])
        st.info(f"A new run starts at step 0: the {changed} changed, and a run cannot change that while it "
                f"trains. The previous run had reached step {was.step:,}.")
elif st.session_state.get(P + "hot") != hot:
    changed = {k: v for k, v in hot.items() if st.session_state[P + "hot"].get(k) != v}
    applied, was = len(session.changes), session.latest()
    session.update(**changed)
    st.session_state[P + "hot"] = hot
    if was is not None and was.step > 0:   # the link below then holds the step it took effect at
        session.wait_for_changes(applied + 1, timeout=1.0)

# ----------------------------------------------------------------------------- controls
ready = not (values["dataset"] == "points" and points is None)


run_buttons(session, P, step_n=STEP_CLICK, can_train=ready,
            reset=lambda: session.reset(partial(make_toy_trainer, replace(cfg), points)))
if session.planned:
    st.caption(f"The link plans {links.describe(session.planned, LABELS.get, _fmt)}: each change comes after "
               "exactly that many steps, as in the run the link was made from. Changing a setting yourself "
               "drops the rest of the plan.")
# On the defaults, before a run is trained, the run they make is shown recorded (ui/replay.py); a link's
# plan of changes makes another run.
replay = ReplayRecipe(run_key("toy", DEFAULT), partial(make_toy_trainer, DEFAULT),
                      partial(toy_snapshot, grid=LIVE_GRID), replay_steps())
on_replay = cfg == DEFAULT and not session.schedule and untouched(session)   # replay_panel below
shows_replay = on_replay and replay_ready(replay)   # it will show the replay (else the recording's note)
try:
    if ready and session.state == "idle" and not shows_replay:
        session.prepare()            # show the untrained critic at step 0
except ValueError as err:
    st.error(str(err))
if not ready:
    st.info("Upload a CSV file of x,y points in the sidebar to train on your own data.")

t1, t2, t3 = st.columns(3)
arrows = t1.toggle("Arrows: where the critic pushes each generated point", key=P + "arrows")
grad_map = t2.toggle("Gradient-norm map ‖∇f‖ (1 = white)", key=P + "grad_map")
raw = values["ema"] > 0 and st.toggle(
    "Draw the trained generator's own points", key=P + "raw",
    help="The green points and every number come from the averaged generator (EMA of the weights); "
         "this shows the generator being trained instead (the numbers stay the average's).")
health_panel = t3.toggle("Lipschitz health panel", key=P + "health",
                         help="‖∇f‖ between the clouds, the gradient at each hidden layer and the critic's "
                              "weights: why weight clipping fails (WGAN-GP paper, section 3).")
live, drawn_state = is_live(session), session.state   # training or queued: views rerun
page_run()   # this run draws one live frame; the live view's own runs draw the rest
# Under the plain GAN the critic is a discriminator, and its output a logit (D = sigmoid of it).
value_label = "discriminator logit" if values["loss"] == "gan" else "critic value f"


# ----------------------------------------------------------------------------- live view
@st.fragment(run_every=FRAME_S if live else None)
def live_view() -> None:
    if live and (session.state != drawn_state or links.plan_moved(session, P)):
        st.rerun(scope="app")   # stopped by itself, or a planned change: redraw buttons, sliders, the link
    slots = None   # the view is laid out at the first frame: till then the last loop's frame stays up
    for snap in live_frames(session, P + "shown", live):   # frame after frame while it trains
        if snap is not None:
            render_snapshot(snap, P)   # the figure first, so the frame on screen is replaced at once
        slots = slots or Slots()
        draw_frame(snap, session.state, slots)


def draw_frame(snap, state: str, slots: Slots) -> None:
    """One frame of the live view: the landscape and, beside it, the step and the numbers (each sent to
    the browser only when it changed since the last frame)."""
    slots.line("message", st, "error" if state == "error" else "warning", session.message)
    slots.line("shared", st, "caption", shared_note(session))
    if snap is None:
        slots.show("start", st, "info", "Press Start to train, or Step to go a few steps at a time.")
        return
    right = draw_snapshot(snap, P, slots)
    measured = snap.step if snap.measured_at is None else snap.measured_at
    slots.show("state", right, "caption", f"{state}{speed(session)} · {session.run_seconds:.0f} s of training · "
               f"numbers from step {measured:,} (while training they are measured once a second, the picture "
               "every frame)")


def render_snapshot(snap, cache: str) -> bytes:
    """The snapshot's landscape as a PNG, drawn by the painter process (explorer/painter.py) once per
    snapshot and view for every visitor who watches it (ui/frame_cache.py). cache: the view's name
    (live, timeline), which with the run names the painter's lane (its figure, updated in place)."""
    view = ("gan_2d", arrows, grad_map, raw, value_label)

    def draw() -> bytes:
        shown = replace(snap, fake=snap.fake_raw) if raw and snap.fake_raw is not None else snap
        return paint(plots.field_png, shown, lane=(view, cache, session.run_key or id(session)), arrows=arrows,
                     grad_map=grad_map, legend=False, value_label=value_label)
    return frame_cache.drawn(snap, view, draw)


def draw_snapshot(snap, cache: str, slots: Slots):
    """A snapshot's landscape and, beside it, its step and numbers: the live frame, or a kept one on the
    timeline. cache: the prefix of the session_state entries that keep its figure. Returns the right column."""
    left, right = slots.columns("frame", st, [3, 2])
    # PNG as drawn: the default would re-encode every frame as a JPEG (slower, and blurs the contours)
    slots.show("picture", left, "image", render_snapshot(snap, cache), width="stretch", output_format="PNG")
    m = snap.metrics
    slots.show("step", right, "metric", "Generator step", f"{snap.step:,}")
    slots.show("w1", right, "metric", "Exact W1 (generated vs real)", sig(m["w1_exact"]),
               help="POT's exact W1 between 256 generated and 256 real points.")
    slots.show("floor", right, "metric", "Noise floor (real vs real)", sig(m["w1_floor"]),
               help="The mean W1 between two real samples of the same size, over 8 such pairs: W1 near "
                    "this is as good as 256 points can tell.")
    if m.get("modes") is not None:
        slots.show("modes", right, "metric", "Modes captured", f"{m['modes']} / {m['n_modes']}")
        slots.show("hq", right, "metric", "High-quality samples", f"{100 * m['hq']:.0f}%",
                   help="Generated points within 3 standard deviations of a mode centre.")
        published = PUBLISHED_QUALITY.get((values["dataset"], cfg.spread or DEFAULT_SPREAD[values["dataset"]]))
        slots.show("quality", right, "caption",
                   "A sample is high quality within 3 standard deviations of its nearest centre; a mode is "
                   "captured when it is the nearest centre of at least one such sample (VEEGAN, PacGAN), "
                   "here on 256 samples." + (f" Published on this data: {published}" if published else ""))
    else:
        for name in ("modes", "hq", "quality"):
            slots.clear(name, right)
    slots.show("grad", right, "metric", "‖∇f‖ on interpolates",
               f"{sig(m['gp_grad_norm_mean'])} ± {sig(m['gp_grad_norm_std'])}",
               help="Where the gradient penalty looks: ~1 under WGAN-GP.")
    slots.line("lipschitz", right, "caption", snap.lipschitz["diagnosis"] if snap.lipschitz else "")
    return right


def timeline() -> None:
    """Look back: a step slider over the frames the session kept, each drawn as the live view draws
    it, with the numbers logged at or before its step. Only runs of the whole page draw it (moving the
    slider is one), never the live loop, so the run trains on and its live view goes on above."""
    moment = look_back(session, P, "Look back: a timeline over this run's kept frames",
                       "Rewind to an earlier step of this run and look again; the run goes on meanwhile.")
    if moment is None:
        return
    frame = moment.frame
    shown = frame if moment.record is None else replace(frame, metrics=moment.numbers,
                                                        measured_at=moment.numbers_step)
    right = draw_snapshot(shown, P + "tl_", Slots())
    numbers = frame.step if shown.measured_at is None else shown.measured_at
    right.caption(f"The frame kept at step {frame.step:,}, with the numbers measured at step {numbers:,}. "
                  + now_note(session))


@st.fragment(run_every=CHART_S if live else None)
def curves() -> None:
    snap = session.latest()
    if snap is None:
        return
    log = session.metrics_log()
    if snap.history:
        if note := curves_note(live):
            st.caption(note)
        a, b = st.columns(2)
        # Heights come from the charts themselves: a fixed element height would squash the plot
        # under its legend.
        vega_chart(charts.distance_chart(snap.history, log), a)
        vega_chart(charts.loss_chart(snap.history, "discriminator" if values["loss"] == "gan" else "critic"), b)
        if any(r.get("modes") is not None for r in log):
            vega_chart(charts.quality_chart(log))
    health = snap.lipschitz
    if health_panel and health:
        st.subheader("Lipschitz health")
        st.info(health["diagnosis"])
        h1, h2, h3 = st.columns(3)
        vega_chart(charts.grad_norm_histogram_chart(health["grad_norms"]), h1)
        vega_chart(charts.layer_norms_chart(["this critic"], [health["layers"]], height=160), h2)
        bound = f" · {100 * health['at_bound']:.1f}% at ±c" if health["at_bound"] is not None else ""
        vega_chart(charts.weight_histogram_chart(health["weight_counts"], health["weight_edges"],
                                                 f"the critic's weights{bound}", health["clip"]), h3)


def train_live_from(step: int, data: bytes) -> None:
    """The replay's "Train live from here": a live run from its checkpoint at `step` (visitors who fork
    the same checkpoint, or upload it, share one run)."""
    session.reset(partial(toy_trainer_from_bytes, data, None, DEFAULT.device),
                  key=run_key("toy", DEFAULT, checkpoint=data))
    session.start()


if not (on_replay
        and replay_panel(replay, P, lambda frame: draw_snapshot(frame, P + "rp_", Slots()), train_live_from)):
    live_view()
    timeline()
    curves()


# ----------------------------------------------------------------------------- downloads
def gif_bytes() -> bytes:
    """The frames the session kept (at most 60, evenly spread over the run) as an animation."""
    fig, frames = None, []
    for snap in session.frames():
        fig = plots.field_frame(snap, arrows=arrows, grad_map=grad_map, size=4.8, dpi=100, reuse=fig,
                                value_label=value_label)
        frames.append(plots.figure_rgb(fig))
    return plots.frames_to_gif(frames, fps=5)


def frame_png(snap, dpi: int | None = None) -> bytes:
    """The snapshot's landscape at download size, as a PNG."""
    figure = plots.field_frame(snap, arrows=arrows, grad_map=grad_map, value_label=value_label, size=6.0)
    return plots.figure_png(figure, dpi=dpi)


snap = session.latest()
if snap is not None:
    # The cheap files are bytes made now (Streamlit content-hashes them); the pictures and the GIF are
    # made on a click (a deferred callable, replaced by the next run's): drawing the frame at download
    # size took a third of a new visitor's page run (py-spy), for a button most never press.
    with st.expander("Downloads"):
        d1, d2, d3, d4, d5 = st.columns(5)
        d1.download_button("Frame (PNG)", partial(frame_png, snap), "gan2d_frame.png", "image/png", on_click="ignore")
        d1.download_button("Frame for slides (PNG, 1800 px)", partial(frame_png, snap, dpi=300),
                           "gan2d_frame_large.png", "image/png", on_click="ignore")
        d2.download_button("Metrics (CSV)", metrics_table(snap.history, session.metrics_log())
                           .to_csv(index=False), "gan2d_metrics.csv", "text/csv", on_click="ignore")
        d3.download_button("Config (JSON)", json.dumps(asdict(cfg), indent=2), "gan2d_config.json",
                           "application/json", on_click="ignore")
        # Made in the run's worker on a click: asked for on every page run, a training visitor's every
        # slider move waited for the worker's turn (it trains at the lowest priority). Should the worker be
        # gone by then, the button says it could not make the file (the run's message says why).
        d4.download_button("Checkpoint", partial(session.call, checkpoint_bytes), "gan2d_checkpoint.pt",
                           "application/octet-stream", on_click="ignore")
        if d5.button("Make GIF", help=f"An animation of the {len(session.frames())} frames kept so far."):
            st.session_state[P + "gif"] = gif_bytes()
        if P + "gif" in st.session_state:
            d5.download_button("Training (GIF)", st.session_state[P + "gif"], "gan2d_training.gif",
                               "image/gif", on_click="ignore")
        st.caption(f"As of step {snap.step:,} (pause for the latest). The link in your address bar holds "
                   "every setting, seed included, and every change made while it trained, at the step it took "
                   "effect: share it to reproduce this run, bit for bit on the same kind of machine. A "
                   "checkpoint resumes it here or with `python -m explorer toy`.")
        if session.changes_lost:
            st.caption(f"More than {MAX_CHANGES} changes were made while this run trained: the link holds the "
                       "first ones, so it reproduces the run only up to the next change.")
        if values["dataset"] == "points":
            st.caption("A link cannot carry your points file: whoever opens it uploads the same file (the link "
                       "holds its digest, and the page says if the file differs).")


# ----------------------------------------------------------------------------- the link
latest = session.latest()
if latest is None or latest.step == 0:      # nothing trained yet: the settings now are the run's start
    st.session_state[P + "start_hot"] = hot
started = {**values, **st.session_state.get(P + "start_hot", hot)}
url = links.params_for(started, DEFAULT, _fmt, session.changes + session.planned,
                       {"arrows": arrows, "grad_map": grad_map, "raw": bool(raw), "health": health_panel},
                       resumed=st.session_state.get(P + "resumed", False), points=points_digest)
if dict(st.query_params) != url:        # the link reproduces this run (seed and changes included)
    st.query_params.from_dict(url)
