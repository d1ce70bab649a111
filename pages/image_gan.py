"""Image GAN: train a small DCGAN (gan, wgan or wgan-gp) on Shapes, digits or your pictures, live."""
from dataclasses import asdict, replace
from functools import partial
from itertools import chain

import numpy as np
import streamlit as st

from explorer import choices as CH
from explorer.checkpoints import checkpoint_bytes
from explorer.choices import HOT_FIELDS, IMAGE_DATASET_NAMES, IMAGE_OFFER, NORMS
from explorer.image_training import (
    ImageConfig,
    describe_image_checkpoint,
    image_snapshot,
    image_trainer_from_bytes,
    make_image_trainer,
    samples_from_checkpoint,
)
from explorer.plots import frames_to_gif
from explorer.pool import get_pool
from explorer.run_key import run_key
from explorer.session import Session
from explorer.training_charts import image_metrics_charts, loss_chart
from explorer.uploads import load_uploaded_images
from ui.budget import admit_upload
from ui.live import CHART_S, FRAME_S, curves_note, live_frames, page_run
from ui.navigation import run_inside_app_navigation
from ui.run_controls import is_live, run_buttons, shared_note, speed, visitor_session
from ui.timeline import look_back, now_note
from ui.vega import vega_chart

run_inside_app_navigation()   # first: a link straight to this page must still get the app around it

ss = st.session_state
OFFER = IMAGE_OFFER     # what the widgets offer (explorer/choices.py; an uploaded checkpoint is held to it too)
# Short names: the sidebar's select box cuts longer ones; the download sizes are in the help text.
DATASET_NAMES, LOSS_NAMES = IMAGE_DATASET_NAMES, CH.LOSS_NAMES


def _png(rgb: np.ndarray) -> bytes:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@st.cache_data(max_entries=4, show_spinner="Reading your pictures…")
def decode_uploads(files: tuple[tuple[str, bytes], ...], size: int, channels: int):
    try:
        images, skipped = load_uploaded_images(list(files), size, channels)
    except ValueError as err:
        return None, [str(err)]
    return images, skipped


def new_session() -> Session:
    """This page's run handle: the run trains in a worker process; the factory is swapped on Reset."""
    # Sliced W and diversity are re-measured at most every 2 s while training, but always after a
    # manual step, on pause and at the end, when the user reads them. A snapshot at most every 0.2 s:
    # the worker takes one only when the live view has drawn the last (each 0.4 s), and a training
    # step here is long (~75 ms), so a later start would often miss the view's next frame.
    return Session(None, image_snapshot, hot_fields=HOT_FIELDS, snapshot_every_s=0.2,
                   still_snapshot_fn=partial(image_snapshot, force_metrics=True))


# ----------------------------------------------------------------------------- controls
st.title("Image GAN")
st.caption("A DCGAN (4-2-1 convolutions, as in the lecture notes) learns to draw images from noise. "
           "Compare the plain GAN, weight clipping and the gradient penalty; the grid shows the "
           "generator's output for the same noise throughout, so you watch it learn. What to expect with "
           "the defaults on a 2-core CPU (one thread a run): about 1,800 steps in two minutes, and then one "
           "blob per image of the right size and grey, discs and ovals recognisable, the corners of "
           "triangles and stars not yet. WGAN-GP takes about five times as long per step.")

with st.sidebar:
    st.subheader("Data")
    dataset = st.selectbox("Dataset", list(DATASET_NAMES), format_func=DATASET_NAMES.get, key="img_dataset",
                           help="Shapes are drawn by the app (no download): one plain shape per image, or "
                                "several overlapping ones like the lecture notes' PurdueShapes5GAN. MNIST "
                                "(10 MB) and Fashion-MNIST (30 MB) download once into the app's cache folder.")
    size = st.selectbox("Image size", CH.IMAGE_SIZES, key="img_size",
                        help="28x28 grey is fast on a CPU; 64x64 colour is the lecture notes' size.")
    colour = st.toggle("Colour", value=size != 28, key="img_colour",
                       disabled=dataset in ("mnist", "fashion-mnist"))
    st.subheader("Loss")
    loss = st.radio("Loss", list(LOSS_NAMES), format_func=LOSS_NAMES.get,
                    index=list(LOSS_NAMES).index(ImageConfig.loss), key="img_loss",
                    help="GAN is the default on a CPU: it runs several times more steps a minute than WGAN-GP.")
    base = ImageConfig.for_loss(loss)     # the settings that go with this loss: the widgets start there
    lam = st.slider("λ (gradient-penalty weight)", *OFFER["lam"][:2], base.lam, 0.5, key="img_lam",
                    disabled=loss != "wgan-gp")
    clip = st.select_slider("clip c (weight clipping)", OFFER["clip"], base.clip, key="img_clip",
                            disabled=loss != "wgan")
    n_critic = st.slider("Critic iterations per generator step", *OFFER["n_critic"][:2], base.n_critic,
                         key=f"img_nc_{loss}")
    lr_g = st.select_slider("Generator learning rate", OFFER["lr_g"], base.lr_g, key="img_lr_g")
    lr_c = st.select_slider("Critic learning rate", OFFER["lr_c"], base.lr_c, key="img_lr_c")
    with st.expander("Networks and optimizer"):
        beta1 = st.slider("Adam β1", *OFFER["beta1"][:2], base.beta1, 0.05, key="img_beta1")
        beta2 = st.select_slider("Adam β2", OFFER["beta2"], base.beta2,
                                key=f"img_beta2_{loss}", help="DCGAN uses 0.999, WGAN-GP 0.9.")
        batch = st.select_slider("Batch size", OFFER["batch_size"], base.batch_size, key="img_batch")
        latent = st.select_slider("Latent size", OFFER["latent_dim"], base.latent_dim, key="img_latent")
        g_feat = st.select_slider("Generator feature maps", OFFER["g_features"], base.g_features, key="img_gf")
        c_feat = st.select_slider("Critic feature maps", OFFER["c_features"], base.c_features, key="img_cf")
        g_norm = st.selectbox("Generator norm", NORMS, NORMS.index(base.g_norm), key="img_gnorm")
        c_norms = [n for n in NORMS if not (loss == "wgan-gp" and n == "batch")]
        c_norm = st.selectbox("Critic norm", c_norms, c_norms.index(base.c_norm), key=f"img_cnorm_{loss}",
                              help="No batch norm with a gradient penalty: it mixes the images of a batch.")
        ema = st.select_slider("Generator averaging (EMA decay)", OFFER["ema"], base.ema, key="img_ema",
                               format_func=lambda v: "off" if v == 0 else f"{v:g}",
                               help="The samples and numbers come from an exponential moving average of the "
                                    "generator's weights (Yazici et al. 2019): smoother shapes sooner. 0: off.")
        seed = st.number_input("Seed", *OFFER["seed"][:2], 0, key="img_seed")
        device = st.selectbox("Device", CH.DEVICES, key="img_device")
        amp = st.selectbox("Mixed precision", CH.PRECISIONS, format_func=CH.PRECISION_NAMES.get, key="img_amp",
                           help="Auto trains in bf16 on a GPU and in float32 on a CPU. bf16 needs no loss scaling; "
                                "fp16 always scales its losses, and skips a step now and then when they overflow. "
                                "The gradient penalty is computed in float32 either way. On a CPU, bf16 and fp16 "
                                "run too, but slower than float32.")

channels = 1 if (dataset in ("mnist", "fashion-mnist") or not colour) else 3
cfg = ImageConfig.for_loss(loss, lam=lam, clip=clip, n_critic=n_critic, lr_g=lr_g, lr_c=lr_c, beta1=beta1,
                           beta2=beta2, batch_size=batch, seed=int(seed), device=device, dataset=dataset,
                           image_size=size, channels=channels, latent_dim=latent, g_features=g_feat,
                           c_features=c_feat, g_norm=g_norm, c_norm=c_norm, amp=amp, ema=ema)

uploads = None
if dataset == "upload":
    files = st.file_uploader("PNG/JPG pictures, or a zip of them", type=["png", "jpg", "jpeg", "zip"],
                             accept_multiple_files=True, key="img_files")
    refusal = admit_upload(*files) if files else None
    if refusal:
        st.warning(refusal)
    elif files:
        uploads, skipped = decode_uploads(tuple((f.name, f.getvalue()) for f in files), size, channels)
        if skipped:
            with st.expander(f"{len(skipped)} file(s) skipped", expanded=uploads is None):
                st.write("\n".join(f"- {s}" for s in skipped))
    if uploads is None:
        st.info("Upload a few pictures (or a zip) to train on them; they are resized and centre-cropped.")

session = visitor_session("image_gan", new_session)
st.session_state["img_session"] = session   # tests and teardown reach the run through this
cold = {k: v for k, v in asdict(cfg).items() if k not in HOT_FIELDS}
if ss.get("img_cold") != (cold, None if uploads is None else uploads.shape) and not ss.get("img_resumed"):
    # The key: visitors who press Start on the same settings (and pictures) watch one run.
    session.reset(partial(make_image_trainer, replace(cfg), uploads), key=run_key("images", cfg, data=uploads))
    ss.img_cold = (cold, None if uploads is None else uploads.shape)
    ss.pop("img_hot", None)
hot = {k: getattr(cfg, k) for k in HOT_FIELDS}
if ss.get("img_hot") != hot:             # a slider moved: the worker applies it at the next step
    session.update(**hot)
    ss.img_hot = hot


def reset_run() -> None:
    ss.img_resumed = False
    ss.pop("img_cold", None)      # the page below builds a fresh trainer from the settings
    session.reset()


can_train = dataset != "upload" or uploads is not None
live, drawn_state = is_live(session), session.state   # training or queued: views rerun
page_run()   # this run draws one live frame; the live view's own runs draw the rest
run_buttons(session, "img_", step_n=20, step_label="Train 20 steps", reset=reset_run, can_train=can_train,
            pause_message="Paused.")


def state_label(state: str, step: int | None) -> str:
    """What the run is doing, in words: 'idle' after manual steps would read as 'nothing happened'."""
    if state == "running":
        return f"training…{speed(session)}"
    if state == "error":
        return "failed"
    if state == "queued":
        return "waiting for its turn"
    if not step:
        return "ready"
    return f"{'stopped' if state == 'stopped' else 'paused'} at step {step:,}"


# ----------------------------------------------------------------------------- live view
show_raw = cfg.ema > 0 and st.toggle(
    "Show the trained generator's own samples", key="img_raw",
    help="The grid and every number come from the averaged generator (EMA of the weights); this shows the "
         "generator being trained instead (the numbers stay the average's), drawn whenever the run stands "
         "still (a step, a pause, the end) so that live frames stay quick.")


@st.fragment(run_every=FRAME_S if live else None)
def live_view() -> None:
    if live and session.state != drawn_state:   # stopped by itself: redraw the buttons too
        st.rerun(scope="app")
    frames = live_frames(session, "img_shown", live)
    first = next(frames)   # (it may wait for a new snapshot) till then the last loop's frame stays up
    caption, error, shared = st.empty(), st.empty(), st.empty()
    left, right = st.columns(2)
    generated, real, numbers = left.empty(), right.empty(), st.empty()
    shown = None   # the numbers drawn: they are re-measured every few seconds, not every frame
    said = {}      # the lines drawn: a line is sent to the browser again only when it changes
    for snap in chain([first], frames):
        state = session.state
        line = (f"State: **{state_label(state, snap.step if snap is not None else None)}**"
                + (f" — {session.message}" if session.message else ""))
        if said.get("state") != line:
            caption.caption(line)
        if state == "error":
            error.error(session.message)
        note = shared_note(session)
        if said.get("shared") != note:   # (an if statement: Streamlit would show a bare expression's value)
            if note:
                shared.caption(note)
            else:
                shared.empty()
        said.update(state=line, shared=note)
        if snap is None:
            generated.info("Press Start (or Train 20 steps) to begin.")
            return
        grid, says = generated_grid(snap, " (the trained generator's own grid comes at the next pause)")
        generated.image(grid, width="stretch", output_format="PNG", caption=says)   # PNG: JPEG blurs digits
        if shown is None:   # the held-out grid is fixed for the run: drawn (and encoded) once a loop
            real.image(snap.real_grid, caption="Real (held out)", width="stretch", output_format="PNG")
        if (snap.measured_at, snap.measured_at == snap.step) != shown:
            with numbers.container():
                draw_numbers(snap)
            shown = (snap.measured_at, snap.measured_at == snap.step)


def generated_grid(snap, missing: str) -> tuple[np.ndarray, str]:
    """The generated grid to show and its caption (missing: what the caption adds when the trained
    generator's own grid is asked for but the snapshot has none)."""
    raw = show_raw and snap.raw_grid is not None
    whose = " by the trained generator" if raw else " by the averaged generator" if cfg.ema > 0 else ""
    later = missing if show_raw and not raw else ""
    return snap.raw_grid if raw else snap.fake_grid, f"Generated{whose}, fixed noise — step {snap.step}{later}"


def timeline() -> None:
    """Look back: a step slider over the grids the session kept, drawn as the live view draws them, with
    the numbers logged at or before their step. Only runs of the whole page draw it (moving the slider
    is one), never the live loop, so the run trains on and its live view goes on above."""
    moment = look_back(session, "img_", "Look back: a timeline over this run's kept samples",
                       "Rewind to an earlier step of this run and look again; the run goes on meanwhile.")
    if moment is None:
        return
    frame = moment.frame   # a logged record holds its step, as a snapshot's metrics do (measured_at)
    shown = frame if moment.record is None else replace(frame, metrics=dict(moment.record))
    left, right = st.columns(2)
    grid, says = generated_grid(shown, " (the trained generator's own grid was not kept with this frame)")
    left.image(grid, caption=says, width="stretch", output_format="PNG")
    right.image(shown.real_grid, caption="Real (held out)", width="stretch", output_format="PNG")
    draw_numbers(shown)
    st.caption(f"The frame kept at step {frame.step:,}, with the numbers measured at step {shown.measured_at:,}. "
               + now_note(session))


def draw_numbers(snap) -> None:
    """The four numbers, and the step at which they were measured."""
    m = snap.metrics
    c = st.columns(4)
    c[0].metric("Sliced W (generated vs real)", f"{m['sliced_w']:.4f}",
                help="POT's sliced Wasserstein-2 distance on pixels, 128 fixed random directions.")
    c[1].metric("Sliced W floor (real vs real)", f"{m['sliced_w_floor']:.4f}")
    c[2].metric("Diversity (generated)", f"{m['diversity']:.3f}", help="Mean pairwise RMS pixel distance; "
                "falls towards 0 when the generator collapses.")
    c[3].metric("Diversity (real)", f"{m['diversity_real']:.3f}")
    if snap.measured_at != snap.step:   # metrics are re-measured every few seconds, not every snapshot
        st.caption(f"These four were measured at step {snap.measured_at:,}; they are re-measured every few "
                   "seconds of training.")


@st.fragment(run_every=CHART_S if live else None)
def curves_and_downloads() -> None:
    snap = session.latest()
    if snap is None:
        return
    if note := curves_note(live):
        st.caption(note)
    vega_chart(loss_chart(snap.history, "discriminator" if loss == "gan" else "critic"))
    for col, chart in zip(st.columns(2), image_metrics_charts(snap.metrics_log)):
        vega_chart(chart, col)
    kept = session.frames()
    frames = [f.fake_grid for f in kept]
    if len(frames) > 1:
        st.subheader("Evolution of the generator output")
        every = -(-len(frames) // 8)          # at most 8, evenly spread, in one row
        for col, frame, f in zip(st.columns(8), frames[::every], kept[::every]):
            col.image(frame, caption=f"step {f.step:,}", width="stretch", output_format="PNG")
    d = st.columns(3)
    # on_click="ignore": a download must not rerun the page (and redraw the training view).
    d[0].download_button("Samples (PNG)", _png(snap.fake_grid), "samples.png", "image/png", key="img_dl_png",
                         on_click="ignore", width="stretch")
    d[0].download_button("Samples for slides (PNG, 4x)", lambda: _png(np.kron(snap.fake_grid, np.ones((4, 4, 1),
                         np.uint8))), "samples_large.png", "image/png", key="img_dl_png_large", on_click="ignore",
                         width="stretch", help="Each pixel drawn as 4 x 4: sharp on a projector.")
    if len(frames) > 1:
        d[1].download_button("Evolution (GIF)", lambda: frames_to_gif(frames, fps=6), "evolution.gif",
                             "image/gif", key="img_dl_gif", on_click="ignore", width="stretch")
    d[2].download_button("Checkpoint", partial(session.call, checkpoint_bytes), "image_gan.pt",
                         "application/octet-stream", key="img_dl_ckpt", on_click="ignore", width="stretch")


live_view()
timeline()
curves_and_downloads()

# ----------------------------------------------------------------------------- checkpoints
with st.expander("Resume or sample from a checkpoint"):
    up = st.file_uploader("Checkpoint (.pt) saved by this page or `python -m explorer images --out`",
                          type=["pt"], key="img_ckpt")
    refusal = admit_upload(up) if up is not None else None
    if refusal:
        st.warning(refusal)
    elif up is not None:
        data = up.getvalue()
        try:   # opened and checked in a worker process, not in the web server
            found = get_pool().call(describe_image_checkpoint, data, device)
            loaded = ImageConfig(**found["config"])
            st.caption(f"{LOSS_NAMES[loaded.loss]}, {loaded.dataset}, {loaded.image_size}x{loaded.image_size}, "
                       f"step {found['step']:,}" + (f". {found['note']}" if found["note"] else ""))
            a, b = st.columns(2)
            if a.button("Sample from it", key="img_ckpt_sample"):
                st.image(get_pool().call(samples_from_checkpoint, data), caption="Samples from the uploaded generator")
            if b.button("Resume training from it", key="img_ckpt_resume"):
                own = uploads if loaded.dataset == "upload" else None
                factory = partial(image_trainer_from_bytes, data, own, device)
                session.reset(factory)
                session.prepare()
                ss.img_resumed = True
                st.success(f"Loaded at step {session.latest().step}; press Start to continue.")
        except (ValueError, OSError, RuntimeError) as err:
            st.error(f"Could not use this checkpoint: {err}")
