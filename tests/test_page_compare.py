"""The Compare page under AppTest: loads, switches preset and mode, steps, shows panels; no thread left."""
import time
from functools import partial
from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer import compare as C
from explorer.replay_files import load_replay
from explorer.replays import ReplayRecipe
from explorer.run_key import run_key
from explorer.session import Session
from explorer.toy_training import ToyConfig
from session_fakes import wait_for

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "compare.py")
MODES = ("Side by side",)   # the page's first mode, the one it opens on
LIVE_GRID = 48                # the page's lattice per panel while training (pages/compare.py)


def _app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    # tiny sizes so every step is fast
    at.select_slider(key="cmp_width").set_value(16)
    at.slider(key="cmp_depth").set_value(1)
    at.select_slider(key="cmp_batch").set_value(32)
    at.run()
    assert not at.exception, at.exception
    return at


def _stop(at: AppTest) -> None:
    session = at.session_state["cmp_session"]
    session.close()


def step_counts(runs) -> tuple[list[int], int]:
    """Each trainer's step count and the lock-step counter (read in the worker)."""
    return [t.step_count for t in runs.trainers], runs.step_count


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label.startswith(label))


def _step(at: AppTest):
    """Press Step; the snapshot the page then draws (the page must not have raised)."""
    _button(at, "Step").click()
    at.run()
    assert not at.exception, at.exception
    return at.session_state["cmp_session"].latest()


def test_side_by_side_preset_step_and_panels():
    at = _app()
    try:
        assert "Compare runs side by side" in at.title[0].value
        at.selectbox(key="cmp_preset").set_value("lambda 0.1 vs 1 vs 10")
        at.run()
        snap = _step(at)
        assert snap.step == 10 and len(snap.panels) == 3
        assert [p.step for p in snap.panels] == [10, 10, 10]
        text = " ".join(m.value for m in at.markdown)
        assert "λ = 0.1" in text and "λ = 10" in text and "exact W1" in text
        assert len(at.get("imgs")) >= 1 or len(at.get("image")) >= 1
    finally:
        _stop(at)



def test_the_snapshot_strip_names_the_steps_its_worker_keeps():
    at = _app()
    try:
        _step(at)
        session = at.session_state["cmp_session"]
        kept = [frame.step for frame in session.call(C.strip_frames)]
        assert kept and kept == session.call(C.strip_steps)
        caption = next(c.value for c in at.caption if "frame(s) at steps" in c.value)
        assert caption.startswith(f"{len(kept)} frame(s) at steps {', '.join(map(str, kept))};")
    finally:
        _stop(at)

def test_start_pause_runs_in_lockstep():
    at = _app()
    try:
        _button(at, "Start").click()
        at.run()
        session = at.session_state["cmp_session"]
        assert session.state == "running"
        deadline = time.monotonic() + 30
        while session.latest().step == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        _button(at, "Pause").click()
        at.run()
        assert not at.exception, at.exception
        counts, common = session.call(step_counts)
        assert len(set(counts)) == 1 and common > 0
    finally:
        _stop(at)


def test_critic_only_and_grid_modes():
    at = _app()
    try:
        at.radio(key="cmp_mode").set_value("Critic only (WGAN-GP Figure 1)")
        at.run()
        snap = _step(at)
        assert len(snap.panels) == 6 and snap.step == 10
        at.radio(key="cmp_mode").set_value("Grid")
        at.run()
        at.text_input(key="cmp_va").set_value("0.1, 10")
        at.run()
        snap = _step(at)
        assert len(snap.panels) == 4 and snap.step == 10
        assert len(at.dataframe) == 1
    finally:
        _stop(at)


def test_the_grid_trains_each_run_to_the_end_on_the_workers_and_shows_its_rows():
    import torch

    from explorer.grid import GridConfig
    from explorer.sweep import train_one
    at = _app()
    try:
        at.radio(key="cmp_mode").set_value("Grid").run()
        at.text_input(key="cmp_va").set_value("0.1, 10").run()     # x critic iterations 1, 5: four runs
        at.number_input(key="cmp_sw_steps").set_value(60).run()
        at.button(key="cmp_sw_go").click().run()
        assert not at.exception, at.exception
        deadline = time.monotonic() + 180
        while not any("4 of 4 runs finished" in c.value for c in at.caption) and time.monotonic() < deadline:
            time.sleep(1.0)
            at.run()
        assert any("4 of 4 runs finished" in c.value for c in at.caption)
        table = at.dataframe[-1].value
        assert list(table["λ (penalty weight)"]) == [0.1, 0.1, 10.0, 10.0]
        assert list(table["critic iterations"]) == [1, 5, 1, 5] and list(table["steps"]) == [60] * 4
        base = ToyConfig(dataset="8gaussians", width=16, depth=1, batch_size=32, seed=0)   # the page's base
        first = GridConfig(base=base, field_a="lam", values_a=(0.1, 10.0), field_b="n_critic",
                           values_b=(1.0, 5.0)).member_configs()[0]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)   # as a worker trains
        try:
            here = train_one(first, 60, ("lam", "n_critic"))
        finally:
            torch.set_num_threads(threads)
        assert table["w1_ratio"][0] == here["w1_ratio"] and table["modes"][0] == here["modes"]   # the same run
        pictures = [str(e.proto) for e in at.get("imgs") + at.get("image")]
        assert len(pictures) == 5 and "final samples" in pictures[-1]                # the 4 panels, then the sheet
        assert any("Table (CSV)" in str(e.proto) for e in at.get("download_button"))
    finally:
        _stop(at)


def test_bad_grid_values_give_a_message_not_a_traceback():
    at = _app()
    try:
        at.radio(key="cmp_mode").set_value("Grid")
        at.run()
        at.text_input(key="cmp_va").set_value("0.1, oops")
        at.run()
        assert not at.exception
        assert any("oops" in e.value for e in at.error)
        at.text_input(key="cmp_va").set_value(", ".join(str(v) for v in range(1, 10)))
        at.run()
        assert any("at most 16" in e.value for e in at.error)
    finally:
        _stop(at)


def test_the_depth_mode_shows_figure_1b_and_1c():
    at = _app()
    try:
        at.radio(key="cmp_mode").set_value("Gradients with depth (WGAN-GP Figure 1b)")
        at.run()
        assert not at.exception, at.exception
        at.slider(key="cmp_depth_deep").set_value(5)
        at.run()
        snap = _step(at)
        assert snap.step == 10 and len(snap.panels) == 4
        assert snap.labels[0] == "clipping, c = 0.1" and snap.labels[-1].startswith("gradient penalty")
        assert all(len(p.lipschitz["layers"]) == 5 for p in snap.panels)
        charts = at.get("vega_lite_chart")
        assert len(charts) >= 5                     # the per-layer chart and four weight histograms
        captions = " ".join(c.value for c in at.caption)
        assert "Figure 1b" in captions and "penalty" in captions
    finally:
        _stop(at)


def test_grid_names_its_axes_in_words_and_hides_an_unused_second_axis():
    at = _app()
    try:
        at.radio(key="cmp_mode").set_value("Grid").run()
        first = at.selectbox(key="cmp_fa")
        assert first.format_func("lam") == "λ (penalty weight)"
        at.selectbox(key="cmp_fb").set_value("none").run()
        assert not at.exception
        assert not any(t.key == "cmp_vb" for t in at.text_input)     # no values box for "none"
        at.radio(key="cmp_mode").set_value("Critic only (WGAN-GP Figure 1)").run()
        assert at.selectbox(key="cmp_dataset").disabled               # its datasets are chosen above the panels
    finally:
        _stop(at)


def run_configs(runs) -> list:
    """Each lock-step run's config (read in the worker)."""
    return [t.cfg for t in runs.trainers]


def test_measured_presets_say_what_a_minute_shows_and_runs_start_from_the_recommendation():
    from explorer import compare as C
    from explorer.toy_training import ToyConfig
    at = _app()
    try:
        captions = " ".join(c.value for c in at.caption)
        assert C.PRESET_NOTES["WGAN-GP vs weight clipping"] in captions
        at.selectbox(key="cmp_preset").set_value("GAN vs WGAN-GP").run()
        assert not at.exception
        assert C.PRESET_NOTES["GAN vs WGAN-GP"] in " ".join(c.value for c in at.caption)
        runs = at.session_state["cmp_session"].call(run_configs)
        assert runs[0].ema == ToyConfig.recommended("8gaussians", "gan").ema and runs[0].width == 16
    finally:
        _stop(at)



def test_the_same_comparison_another_visitor_trains_is_one_run():
    """The other visitor is a Session of its own (every AppTest in a process is one browser session),
    made from the comparison the page builds by default with the tiny sizes of _app()."""
    base = ToyConfig(width=16, depth=1, batch_size=32, seed=0)
    cfg = C.preset_config(list(C.PRESETS)[0], base, strip_every=200, n=256, grid=64, live_grid=LIVE_GRID,
                          recommended=True)
    other = Session(partial(C.make_runs, cfg), C.take_snapshot, key=run_key(f"compare:{MODES[0]}", cfg))
    at = _app()
    try:
        assert other.start()
        mine = at.session_state["cmp_session"]
        assert mine.run_key == other.run_key
        _button(at, "Start").click()
        at.run()
        assert not at.exception, at.exception
        assert mine.state == "running" and mine.shared_with == 1 and mine.worker_pid == other.worker_pid
        assert any(c.value.startswith("Shared with 1 other visitor") for c in at.caption)
        _button(at, "Pause").click()
        at.run()                                          # a pause: a copy of one's own, paused
        assert mine.state == "paused" and other.state == "running" and other.shared_with == 0
    finally:
        _stop(at)
        other.close()


def test_the_timeline_shows_every_panel_at_the_chosen_kept_step():
    at = _app()
    try:
        at.toggle(key="cmp_look_back").set_value(True).run()
        assert not at.exception
        assert any("Nothing to scrub yet: one frame is kept" in i.value for i in at.info)
        for _ in range(2):
            _step(at)
        session = at.session_state["cmp_session"]
        assert at.select_slider(key="cmp_tl_step").options == ["0", "10", "20"]
        at.select_slider(key="cmp_tl_step").set_value(10).run()
        assert not at.exception
        text = [m.value for m in at.markdown]
        assert any(t.startswith("**Step 20**") for t in text)                       # the live view goes on
        assert any(t.startswith("**The frame kept at step 10** · numbers under the panels from step 10")
                   for t in text)
        logged = next(r for r in session.metrics_log() if r["step"] == 10)
        for w1 in logged["w1_exact"]:   # each panel's exact W1 at step 10, under the kept frame's panels
            assert sum(f"exact W1 {w1:.3g}" in t for t in text) >= 1
        assert any("The run is at step 20 now" in c.value for c in at.caption)
        at.button(key="cmp_tl_back").click().run()
        assert not at.exception and not at.session_state["cmp_look_back"]
        assert not any(m.value.startswith("**The frame kept") for m in at.markdown)
    finally:
        _stop(at)


def test_a_preset_on_the_defaults_shows_its_replay_and_trains_live_from_its_checkpoint(monkeypatch, tmp_path):
    """The default preset on the shared settings' defaults: recorded once (20 steps here), then every panel
    of the chosen frame, and "Train live from here" forks the runs from the checkpoint at or before it."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EXPLORER_REPLAY_STEPS", "20")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    session = at.session_state["cmp_session"]
    try:
        assert not at.exception and any("Recording a replay" in i.value for i in at.info)
        rec = ToyConfig.recommended("8gaussians")   # the page opens on its first dataset's network and batch
        cfg = C.preset_config(at.session_state["cmp_preset"], ToyConfig(width=rec.width, batch_size=rec.batch_size),
                              strip_every=200, n=256, grid=64, live_grid=LIVE_GRID, recommended=True)
        name = ReplayRecipe(run_key(f"compare:{MODES[0]}", cfg), None, None, steps=20).name
        assert wait_for(lambda: load_replay(tmp_path / "replays", name) is not None, 60)
        at.run()
        assert not at.exception and at.select_slider(key="cmp_rp_step").value == 20
        at.select_slider(key="cmp_rp_step").set_value(9).run()
        assert len(at.image) == 2                                             # a picture a panel
        assert any(m.value.startswith("**The recorded frame at step 9**") for m in at.markdown)
        assert any("starts at step 8, the nearest checkpoint at or before step 9" in c.value for c in at.caption)
        at.button(key="cmp_rp_fork").click().run()
        assert not at.exception and session.state == "running"
        data = load_replay(tmp_path / "replays", name).checkpoints[8]
        assert session.run_key == run_key(f"compare:{MODES[0]}", cfg, checkpoint=data)
        assert "cmp_rp_step" not in [w.key for w in at.select_slider]
    finally:
        _stop(at)


def test_a_visitor_on_the_recorded_preset_builds_no_runs_until_start(monkeypatch, tmp_path):
    """With the default preset's replay recorded, a new visitor's page shows it and asks no worker for
    step-0 runs it would not draw; Start builds them and trains."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EXPLORER_REPLAY_STEPS", "20")
    first = AppTest.from_file(PAGE, default_timeout=120).run()   # the first visitor starts the recording
    rec = ToyConfig.recommended("8gaussians")
    cfg = C.preset_config(first.session_state["cmp_preset"], ToyConfig(width=rec.width, batch_size=rec.batch_size),
                          strip_every=200, n=256, grid=64, live_grid=LIVE_GRID, recommended=True)
    name = ReplayRecipe(run_key(f"compare:{MODES[0]}", cfg), None, None, steps=20).name
    _stop(first)
    assert wait_for(lambda: load_replay(tmp_path / "replays", name) is not None, 60)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    session = at.session_state["cmp_session"]
    try:
        assert not at.exception and at.select_slider(key="cmp_rp_step").value == 20
        assert session.latest() is None and session.worker_pid is None and session.state == "idle"
        at.button(key="cmp_start").click().run()
        assert not at.exception and session.state == "running" and session.worker_pid is not None
    finally:
        _stop(at)


def test_the_page_opens_on_its_datasets_recommended_network_and_a_new_dataset_brings_its_own():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    try:
        assert not at.exception, at.exception
        for dataset in ("8gaussians", "25gaussians", "8gaussians"):
            if at.selectbox(key="cmp_dataset").value != dataset:
                at.selectbox(key="cmp_dataset").set_value(dataset).run()
            rec = ToyConfig.recommended(dataset)
            assert not at.exception, at.exception
            assert not at.warning, [w.value for w in at.warning]
            assert (at.select_slider(key="cmp_width").value, at.select_slider(key="cmp_batch").value) == \
                (rec.width, rec.batch_size)
        at.select_slider(key="cmp_width").set_value(256).run()     # and the slider still moves
        assert at.select_slider(key="cmp_width").value == 256 and not at.exception
        at.radio(key="cmp_mode").set_value("Grid").run()
        at.selectbox(key="cmp_dataset").set_value("25gaussians").run()   # a grid keeps its small networks
        assert at.select_slider(key="cmp_width").value == 64 and not at.exception
    finally:
        _stop(at)
