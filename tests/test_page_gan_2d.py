"""The 2-D GAN page driven by AppTest: start, hot changes, pause, URL settings, uploads, limits.

Fragments with run_every do not tick inside AppTest: each test clicks, waits briefly for the
background thread, and calls at.run() again to see the new state. A tiny model keeps it quick.
"""
import time
from dataclasses import replace
from functools import partial
from operator import attrgetter
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer import session as session_mod
from explorer.checkpoints import checkpoint_bytes
from explorer.choices import HOT_FIELDS
from explorer.replay_files import load_replay
from explorer.replays import ReplayRecipe
from explorer.run_key import run_key
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot
from session_fakes import state_digest, step_snap, wait_for

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "gan_2d.py")
TINY = {"width": "32", "depth": "1", "batch_size": "64", "n_critic": "1"}


@pytest.fixture
def app():
    apps = []

    def _app(**params) -> AppTest:
        at = AppTest.from_file(PAGE, default_timeout=60)
        for k, v in {**TINY, **params}.items():
            at.query_params[k] = v
        apps.append(at)
        return at.run()

    yield _app
    for at in apps:
        s = at.session_state["g2_session"] if "g2_session" in at.session_state else None
        if s is not None:
            s.close()
    assert session_mod.running_count() == 0 and session_mod.queued_count() == 0


def session_of(at):
    return at.session_state["g2_session"]


def wait_steps(s, more_than: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and (s.latest() is None or s.latest().step <= more_than):
        time.sleep(0.05)


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_start_change_lambda_pause(app):
    at = app()
    assert not at.exception
    s = session_of(at)
    assert s.state == "idle" and metric(at, "Generator step") == "0"   # step-0 critic drawn
    assert at.image                                                    # the frame is shown
    at.button[0].click().run()
    assert s.state == "running" and not at.exception
    wait_steps(s, 0)
    at.run()
    assert int(metric(at, "Generator step").replace(",", "")) > 0
    at.slider(key="g2_lam").set_value(3.0).run()                      # hot change, same run
    assert s.state == "running"
    assert s.call(attrgetter("cfg.lam")) == 3.0
    [b for b in at.button if b.label == "Pause"][0].click().run()
    assert s.state == "paused" and not s.message
    frozen = s.latest().step
    time.sleep(0.3)
    assert s.latest().step == frozen
    assert [b for b in at.button if b.label == "Resume"]
    # The link holds λ as the run started and the change at the step the worker applied it.
    changes = s.changes
    assert [c.hot for c in changes] == [{"lam": 3.0}] and changes[0].step > 0
    assert "lam" not in at.query_params
    assert at.query_params["changes"] in (f"{changes[0].step}:lam=3", [f"{changes[0].step}:lam=3"])


def query(at) -> dict:
    return {k: v if isinstance(v, str) else v[-1] for k, v in at.query_params.items()}


def test_a_link_with_its_changes_replays_the_run_bit_for_bit(app):
    """A visitor trains, moves λ and the critic iterations while it runs, pauses; the link in their
    address bar, opened by another visitor and stepped to the same step, trains the same weights and
    measures the same numbers, and its sliders follow the changes as the plan applies them."""
    at = app(arrows="1")
    s, lam_at_start = session_of(at), at.slider(key="g2_lam").value
    at.button[0].click().run()
    wait_steps(s, 5)
    at.slider(key="g2_lam").set_value(3.0).run()
    wait_steps(s, s.changes[-1].step + 10)
    at.slider(key="g2_n_critic").set_value(2).run()
    wait_steps(s, s.changes[-1].step + 10)
    [b for b in at.button if b.label == "Pause"][0].click().run()
    at.run()
    link, (step, digest) = query(at), s.call(state_digest)
    assert [c.hot for c in s.changes] == [{"lam": 3.0}, {"n_critic": 2}] and link["arrows"] == "1"

    other = AppTest.from_file(PAGE, default_timeout=60)
    for k, v in link.items():
        other.query_params[k] = v
    other.run()
    t = session_of(other)
    try:
        assert other.slider(key="g2_lam").value == lam_at_start != 3.0     # as the run started
        assert other.toggle(key="g2_arrows").value
        assert "The link plans λ 3 at step" in " ".join(c.value for c in other.caption)
        replayed = t.step(step)
        assert t.call(state_digest) == (step, digest)                       # the same run, bit for bit
        assert replayed.metrics == s.latest().metrics and t.planned == []
        other.run()
        assert other.slider(key="g2_lam").value == 3.0 and other.slider(key="g2_n_critic").value == 2
        assert not other.exception and query(other) == link                 # its own link is the same
    finally:
        t.close()


def test_an_unreadable_plan_in_a_link_is_ignored_with_a_warning(app):
    at = app(changes="50:lam=3;20:width=64")
    assert not at.exception
    assert any("Ignored the link's changes" in w.value for w in at.warning)
    assert session_of(at).schedule == []


def test_step_button_and_reset_on_architecture_change(app):
    at = app()
    s = session_of(at)
    [b for b in at.button if b.label.startswith("Step")][0].click().run()
    assert s.latest().step == 10 and s.state == "idle"
    assert metric(at, "Generator step") == "10"
    at.select_slider(key="g2_width").set_value(64).run()              # cold change: a new run
    assert s.latest().step == 0 and s.call(attrgetter("cfg.width")) == 64


def test_garbage_query_params_fall_back_with_a_warning(app):
    at = app(lam="abc", width="7", loss="nope", seed="-5", lr_g="1e-300", n_critic="1e99")
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    for bad in ("lam", "width", "loss", "seed", "lr_g", "n_critic"):
        assert bad in text
    default = ToyConfig.recommended("8gaussians", "wgan-gp")   # what the page opens on
    assert at.session_state["g2_lam"] == default.lam and at.session_state["g2_loss"] == default.loss
    assert at.session_state["g2_width"] == default.width


def test_url_settings_are_used(app):
    at = app(loss="wgan", clip="0.03", seed="42", lr_c="0.0003")
    assert not at.warning
    s = session_of(at)
    cfg = s.call(attrgetter("cfg"))
    assert (cfg.loss, cfg.clip, cfg.seed, cfg.lr_c, cfg.width) == ("wgan", 0.03, 42, 3e-4, 32)


def test_points_csv_upload(app):
    at = app(dataset="points")
    assert not at.exception and session_of(at).latest() is None
    assert [b for b in at.button if b.label == "Start"][0].disabled
    at.file_uploader(key="g2_points_file").set_value(("bad.csv", b"x,y\n1,2\nfoo,bar\n", "text/csv")).run()
    assert not at.exception and "Line 3" in at.error[0].value
    rows = "\n".join(f"{np.cos(a):.3f},{np.sin(a):.3f}" for a in np.linspace(0, 6, 50))
    at.file_uploader(key="g2_points_file").set_value(("ring.csv", rows.encode(), "text/csv")).run()
    assert not at.exception and not at.error
    s = session_of(at)
    assert s.latest() is not None and s.latest().real.shape[1] == 2


def test_checkpoint_upload(app):
    at = app()
    s = session_of(at)
    [b for b in at.button if b.label.startswith("Step")][0].click().run()
    at.file_uploader(key="g2_ckpt").set_value(("junk.pt", b"not a checkpoint", "application/octet-stream")).run()
    assert not at.exception
    assert "Could not resume" in at.error[0].value and s.latest().step == 10     # nothing lost
    trainer = make_toy_trainer(ToyConfig(width=32, depth=1, batch_size=64, n_critic=1, seed=5))
    trainer.step(7)
    at.file_uploader(key="g2_ckpt").set_value(("run.pt", checkpoint_bytes(trainer), "application/octet-stream")).run()
    assert not at.exception and not at.error
    assert s.latest().step == 7 and at.session_state["g2_seed"] == 5
    at.run()                                   # the widgets now match the file: no reset
    assert s.latest().step == 7


def test_over_the_cap_waits_in_the_queue_and_starts_by_itself(app):
    old = session_mod.max_runs()
    session_mod.set_max_runs(1)
    other = session_mod.Session(partial(make_toy_trainer, ToyConfig(width=8, depth=1, batch_size=8)),
                                step_snap)               # another visitor holds the only slot
    try:
        assert other.start()
        at = app()
        at.button[0].click().run()
        assert not at.exception
        s = session_of(at)
        assert s.state == "queued" and at.button[0].label == "Queued…" and at.button[0].disabled
        queued = [w.value for w in [*at.warning, *at.info, *at.error, *at.caption] if "in line" in w.value]
        assert len(queued) == 1, queued                  # said once, with its place and an estimate
        assert "Queued" in queued[0] and "starts by itself in at most about 10 minutes" in queued[0]
        assert not any("try again" in w.value for w in at.warning)
        session_mod.set_max_runs(2)                      # a slot frees: the run starts by itself
        end = time.monotonic() + 10
        while time.monotonic() < end and s.state != "running":
            time.sleep(0.05)
        assert s.state == "running"
        at.run()
        assert any("2 runs share this box; this one:" in c.value and "steps/s" in c.value for c in at.caption)
        assert not any("in line" in w.value for w in at.warning)
    finally:
        other.close()
        session_mod.set_max_runs(old)


def test_the_lipschitz_health_panel(app):
    at = app(loss="wgan", depth="3")
    [b for b in at.button if b.label.startswith("Step")][0].click().run()
    assert not at.exception
    health = session_of(at).latest().lipschitz
    assert len(health["layers"]) == 3 and 0 <= health["at_bound"] <= 1
    assert any(health["diagnosis"] == c.value for c in at.caption)     # the one-line diagnosis, always
    before = len(at.get("vega_lite_chart"))
    at.toggle(key="g2_health").set_value(True).run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == before + 3                 # ‖∇f‖, per layer, weights
    assert any("Lipschitz health" in h.value for h in at.subheader)


def test_only_the_losss_own_knob_is_live_and_small_numbers_keep_their_digits(app):
    at = app(loss="wgan", clip="0.001")
    assert at.slider(key="g2_lam").disabled and not at.select_slider(key="g2_clip").disabled
    [b for b in at.button if b.label.startswith("Step")][0].click().run()
    grad = metric(at, "‖∇f‖ on interpolates")     # three significant figures, so clipping's tiny norm shows
    assert float(grad.split(" ± ")[0]) > 0, grad
    at.radio(key="g2_loss").set_value("wgan-gp").run()
    assert not at.slider(key="g2_lam").disabled and at.select_slider(key="g2_clip").disabled
    at.radio(key="g2_loss").set_value("gan").run()
    assert at.slider(key="g2_lam").disabled and at.select_slider(key="g2_clip").disabled


def test_a_cold_change_says_that_a_new_run_starts(app):
    at = app()
    [b for b in at.button if b.label.startswith("Step")][0].click().run()
    at.radio(key="g2_loss").set_value("wgan").run()
    assert not at.exception
    note = " ".join(i.value for i in at.info)
    assert "new run starts at step 0" in note and "loss changed" in note and "step 10" in note
    assert session_of(at).latest().step == 0


def test_the_page_starts_from_the_recommended_settings_and_can_return_to_them():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    try:
        rec = ToyConfig.recommended("8gaussians", "wgan-gp")
        for name in ("lam", "n_critic", "lr_g", "width", "ema"):
            assert at.session_state[f"g2_{name}"] == getattr(rec, name), name
        at.slider(key="g2_n_critic").set_value(7).run()
        assert at.session_state["g2_n_critic"] == 7
        at.button(key="g2_recommended").click().run()
        assert at.session_state["g2_n_critic"] == rec.n_critic and not at.exception
    finally:
        session_of(at).close()



def test_start_on_settings_another_visitor_trains_shows_that_run(app):
    """AppTest gives every AppTest in a process the same browser session, so the other visitor is a
    Session of its own, made from the settings the page builds (its key must be the page's)."""
    cfg = replace(ToyConfig.recommended("8gaussians", "wgan-gp"), width=32, depth=1, batch_size=64, n_critic=1)
    other = session_mod.Session(partial(make_toy_trainer, cfg), partial(toy_snapshot, grid=16),
                                key=run_key("toy", cfg), hot_fields=HOT_FIELDS)
    try:
        assert other.start()
        wait_steps(other, 0)
        at = app()
        s = session_of(at)
        assert s.run_key == other.run_key                                # the same settings, the same key
        at.button[0].click().run()
        assert not at.exception and s.state == "running" and s.shared_with == 1 == other.shared_with
        note = [c.value for c in at.caption if c.value.startswith("Shared with 1 other visitor")]
        assert len(note) == 1 and "your own copy from this step" in note[0]
        assert s.worker_pid == other.worker_pid and s.latest().step > 0   # the run as it stands
        at.slider(key="g2_lam").set_value(cfg.lam + 2.0).run()            # a hot change: a copy of one's own
        assert not at.exception and s.shared_with == 0 == other.shared_with
        assert s.state == "running" and s.call(attrgetter("cfg.lam")) == cfg.lam + 2.0
        assert other.state == "running" and other.call(attrgetter("cfg.lam")) == cfg.lam   # goes on as it was
        assert not any(c.value.startswith("Shared with") for c in at.caption)
    finally:
        other.close()


def metrics_named(at, label: str) -> list[str]:
    return [m.value for m in at.metric if m.label == label]


def test_the_timeline_says_there_is_nothing_to_scrub_with_one_frame(app):
    at = app()
    at.toggle(key="g2_look_back").set_value(True).run()
    assert not at.exception
    assert any("Nothing to scrub yet: one frame is kept" in i.value for i in at.info)
    assert metrics_named(at, "Generator step") == ["0"]             # the live frame only


def test_the_timeline_shows_the_chosen_frame_with_its_logged_numbers_and_goes_back_to_live(app):
    at = app()
    s = session_of(at)
    for _ in range(2):
        [b for b in at.button if b.label.startswith("Step")][0].click().run()
    at.toggle(key="g2_look_back").set_value(True).run()
    assert not at.exception
    assert at.select_slider(key="g2_tl_step").options == ["0", "10", "20"]
    assert metrics_named(at, "Generator step") == ["20", "20"]      # the newest kept frame first
    at.select_slider(key="g2_tl_step").set_value(10).run()
    assert not at.exception
    assert metrics_named(at, "Generator step") == ["20", "10"]      # live above, the kept frame below
    logged = next(r for r in s.metrics_log() if r["step"] == 10)
    assert metrics_named(at, "Exact W1 (generated vs real)")[1] == f"{logged['w1_exact']:.3g}"
    assert any("kept at step 10, with the numbers measured at step 10" in c.value for c in at.caption)
    assert any("The run is at step 20 now" in c.value for c in at.caption)
    [b for b in at.button if b.label.startswith("Step")][0].click().run()   # a new frame: the choice stays
    assert at.select_slider(key="g2_tl_step").options == ["0", "10", "20", "30"]
    assert metrics_named(at, "Generator step") == ["30", "10"]
    at.button(key="g2_tl_back").click().run()                  # back to live
    assert not at.exception and not at.session_state["g2_look_back"]
    assert metrics_named(at, "Generator step") == ["30"]


def test_looking_back_while_the_run_trains_does_not_pause_it(app):
    at = app()
    s = session_of(at)
    [b for b in at.button if b.label.startswith("Step")][0].click().run()
    at.toggle(key="g2_look_back").set_value(True).run()
    at.button[0].click().run()                                      # Start
    assert s.state == "running"
    at.select_slider(key="g2_tl_step").set_value(0).run()
    assert not at.exception and s.state == "running"
    assert metrics_named(at, "Generator step")[1] == "0"
    before = s.latest().step
    wait_steps(s, before)
    assert s.state == "running" and s.latest().step > before


def test_the_defaults_show_their_replay_and_train_live_from_its_checkpoint(monkeypatch, tmp_path):
    """The page's defaults, untouched: the first request records their replay (20 steps here) on a
    worker while the live view shows step 0; then the replay's slider, and a live run forked from the
    checkpoint at or before the chosen step that goes on as the recorded run did."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EXPLORER_REPLAY_STEPS", "20")
    default = ToyConfig.recommended("8gaussians", "wgan-gp")
    name = ReplayRecipe(run_key("toy", default), None, None, steps=20).name
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    s = session_of(at)
    try:
        assert not at.exception
        assert any("Recording a replay of these settings" in i.value for i in at.info)
        assert metrics_named(at, "Generator step") == ["0"]             # the live view, meanwhile
        assert wait_for(lambda: load_replay(tmp_path / "replays", name) is not None, 60)
        at.run()
        assert not at.exception and not any("Recording" in i.value for i in at.info)
        slider = at.select_slider(key="g2_rp_step")
        assert slider.options == [str(step) for step in range(21)] and slider.value == 20   # the end first
        slider.set_value(13).run()
        assert metrics_named(at, "Generator step") == ["13"]            # the recorded frame, no live one
        replay = load_replay(tmp_path / "replays", name)
        frame = replay.frames[13]
        assert metrics_named(at, "Exact W1 (generated vs real)") == [f"{frame.metrics['w1_exact']:.3g}"]
        assert any("starts at step 12, the nearest checkpoint at or before step 13" in c.value for c in at.caption)
        at.button(key="g2_rp_fork").click().run()                        # Train live from here
        assert not at.exception and s.state == "running"
        assert [t.value for t in at.toast] == ["Training live from the recorded run's checkpoint at step 12."]
        assert s.run_key == run_key("toy", default, checkpoint=replay.checkpoints[12])
        assert "g2_rp_step" not in [w.key for w in at.select_slider]   # the live run instead of the replay
        wait_steps(s, 20)
        s.pause()
        history = s.call(attrgetter("history"))
        assert history[:20] == replay.history                           # steps 1..12 restored, 13..20 retrained
    finally:
        s.close()


def test_a_visitor_on_the_recorded_defaults_builds_no_trainer_until_start(monkeypatch, tmp_path):
    """With the defaults' replay recorded, a new visitor's page shows it and asks no worker for a step-0
    trainer (under bench/classroom.py's load a page waited up to 1.7 s for one it never drew); Start
    builds the run and trains it."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EXPLORER_REPLAY_STEPS", "20")
    name = ReplayRecipe(run_key("toy", ToyConfig.recommended("8gaussians", "wgan-gp")), None, None, steps=20).name
    first = AppTest.from_file(PAGE, default_timeout=60).run()     # the first visitor starts the recording
    session_of(first).close()
    assert wait_for(lambda: load_replay(tmp_path / "replays", name) is not None, 60)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    s = session_of(at)
    try:
        assert not at.exception and at.select_slider(key="g2_rp_step").value == 20
        assert s.latest() is None and s.worker_pid is None and s.state == "idle"
        at.button(key="g2_start").click().run()
        assert not at.exception and s.state == "running" and s.worker_pid is not None
        wait_steps(s, 5)
        assert s.latest().step > 5
    finally:
        s.close()
