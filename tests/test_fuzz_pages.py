"""The fuzz inputs through the pages (AppTest): widgets, uploads and URL query parameters.

Each bad input gets an st.error / st.warning with a sentence; no exception element, no crashed
session, the last good values kept. The last test checks that no hostile file escaped to disk.
"""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.checkpoints import CHECKPOINT_FORMAT, checkpoint_bytes, load_checkpoint
from explorer.toy_training import ToyConfig, make_toy_trainer
from fuzz_inputs import BAD_CSV, BAD_IMAGE_UPLOADS, ROOT, TOKEN, _Evil, _rows, sandbox, tiny_checkpoint  # noqa: F401

PAGES_DIR = ROOT / "pages"
RUN_S = 90   # a cold page run imports torch and builds a model: generous on a 2-core box


def page_app(name: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGES_DIR / f"{name}.py"), default_timeout=RUN_S)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at


def assert_page_ok(at: AppTest, where: str) -> None:
    """The page ran to the end: no exception element, no traceback in any text."""
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    texts = [e.value for kind in ("error", "warning", "info", "markdown", "caption") for e in getattr(at, kind)]
    assert not any("Traceback" in str(t) for t in texts), where


def stop_sessions(at: AppTest) -> None:
    """Stop any background run a page started (AppTest does not release session resources)."""
    for key in ("g2_session", "cmp_session"):
        if key in at.session_state:
            at.session_state[key].close()


def widget(elements, label: str):
    for w in elements:
        if w.label.startswith(label):
            return w
    raise AssertionError(f"no widget labelled {label!r}: {[w.label for w in elements]}")


def button(at: AppTest, label: str):
    return widget(at.button, label)


def messages(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("error", "warning") for e in getattr(at, kind))


# ----------------------------------------------------------------------------- histograms page
BAD_PASTE = {
    "negative": "0.5, -1, 0.5", "nan": "nan, 1, 1", "inf": "inf, 1, 1", "text": "a, b, c", "empty": "",
    "all-zeros": "0, 0, 0", "one-bin": "1", "million-bins": "1," * 1_000_000, "stray-word": "1; 2; three",
    "huge-number": "1e400, 1, 1", "script": "<script>alert(1)</script>", "mismatched": None,
}


@pytest.mark.parametrize("case", sorted(BAD_PASTE))
def test_histograms_page_paste_refuses_bad_values(case):
    at = page_app("histograms").run()
    assert_page_ok(at, "histograms first run")
    emd_before = widget(at.metric, "EMD").value
    p_text = BAD_PASTE[case] if BAD_PASTE[case] is not None else "1, 2, 3"
    q_text = "1, 2, 3" if BAD_PASTE[case] is not None else "1, 2"
    widget(at.text_area, "P").set_value(p_text)
    widget(at.text_area, "Q").set_value(q_text)
    button(at, "Use pasted values").click()
    at.run()
    assert_page_ok(at, f"histograms paste {case}")
    assert at.error, f"{case}: no error message shown"
    assert "Nothing was changed" in at.error[0].value
    assert widget(at.metric, "EMD").value == emd_before       # the last good values are kept


@pytest.mark.parametrize("spikes", ["10:-1", "x:1", "500:1", "1:nan", "", ":", "1:1:1", "1:inf", "-3:1"])
def test_histograms_page_spike_generator_refuses_bad_text(spikes):
    at = page_app("histograms").run()
    for radio in at.radio:
        if radio.label in ("P is", "Q is"):
            radio.set_value("Spikes")
    at.run()
    widget(at.text_input, "bin:mass").set_value(spikes)
    at.run()
    assert_page_ok(at, f"spikes {spikes!r}")
    assert at.warning, f"{spikes!r}: no warning"
    assert button(at, "Use these for P and Q").disabled


# ----------------------------------------------------------------------------- 2-D GAN page: URL
BAD_QUERY = {
    "lam": ["1e9", "-1", "nan", "inf", "abc", ""],
    "n_critic": ["0", "21", "2.5", "1e3", "-1"],
    "width": ["7", "1000000", "-32", "x"],
    "depth": ["0", "99"],
    "batch_size": ["0", "100000", "63"],
    "seed": ["-1", "99999999999999999999", "1.5"],
    "dataset": ["../../etc/passwd", "mnist", "<b>x</b>"],
    "loss": ["evil", "WGAN-GP"],
    "lr_g": ["10", "0", "1e-300"],
    "clip": ["-0.01", "1e9"],
    "device": ["tpu"],
    "optimizer": ["sgd"],
}
# Each round puts one bad value in EVERY key at once (fewer page runs, same inputs tried).
QUERY_ROUNDS = [{k: v[i % len(v)] for k, v in BAD_QUERY.items()} for i in range(max(map(len, BAD_QUERY.values())))]


@pytest.mark.parametrize("query", QUERY_ROUNDS, ids=[f"round{i}" for i in range(len(QUERY_ROUNDS))])
def test_gan_2d_page_ignores_out_of_range_url_settings(query):
    at = page_app("gan_2d", query)
    at.run()
    try:
        assert_page_ok(at, f"?{query}")
        shown = messages(at)
        assert "Ignored settings" in shown, shown
        defaults = ToyConfig.recommended("8gaussians", "wgan-gp")   # what the page opens on
        for name in query:
            assert f"{name}=" in shown, f"{name} not reported: {shown}"
            assert at.session_state[f"g2_{name}"] == getattr(defaults, name)   # the default is used
        assert widget(at.metric, "Generator step").value == "0"                 # a run is ready
    finally:
        stop_sessions(at)


def test_gan_2d_page_unknown_and_repeated_url_keys_are_harmless():
    at = page_app("gan_2d", {"width": "32", "foo": "bar", "__proto__": "x", "lam": "12"})
    at.run()
    try:
        assert_page_ok(at, "unknown url keys")
        assert at.session_state["g2_lam"] == 12.0
    finally:
        stop_sessions(at)


def test_gan_2d_page_cuda_on_a_cpu_machine_explains():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the device is valid here")
    at = page_app("gan_2d", {"width": "32", "device": "cuda"}).run()
    try:
        assert_page_ok(at, "device=cuda")
        assert "not available" in messages(at)
    finally:
        stop_sessions(at)


# ----------------------------------------------------------------------------- 2-D GAN page: uploads
def gan_2d_with_points() -> AppTest:
    at = page_app("gan_2d", {"width": "32"}).run()
    widget(at.selectbox, "Dataset").set_value("points")
    return at.run()


@pytest.mark.parametrize("case", ["empty", "text-cells", "three-columns", "nan", "binary-garbage",
                                  "too-many-rows", "huge-coordinates", "too-few"])
def test_gan_2d_page_bad_csv_upload_gets_a_message(case):
    at = gan_2d_with_points()
    try:
        widget(at.file_uploader, "CSV").set_value((f"{TOKEN}.csv", BAD_CSV[case], "text/csv"))
        at.run()
        assert_page_ok(at, f"csv {case}")
        assert "Could not read the points" in messages(at), messages(at)
        assert button(at, "Start").disabled
    finally:
        stop_sessions(at)


def test_gan_2d_page_good_csv_upload_trains():
    at = gan_2d_with_points()
    try:
        widget(at.file_uploader, "CSV").set_value((f"{TOKEN}.csv", ("x,y\n" + _rows(50)).encode(), "text/csv"))
        at.run()
        assert_page_ok(at, "good csv")
        button(at, "Step +10").click()
        at.run()
        assert widget(at.metric, "Generator step").value == "10"
    finally:
        stop_sessions(at)


def _upload_checkpoint(data: bytes) -> AppTest:
    at = page_app("gan_2d", {"width": "32"}).run()
    widget(at.file_uploader, "Resume from a checkpoint").set_value((f"{TOKEN}.pt", data, "application/octet-stream"))
    return at.run()


def test_gan_2d_page_malicious_checkpoint_does_not_run(sandbox):
    marker = sandbox / f"{TOKEN}_page_pwned"
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "trainer": _Evil(str(marker))}, buf)
    at = _upload_checkpoint(buf.getvalue())
    try:
        assert_page_ok(at, "evil checkpoint")
        assert not marker.exists()
        assert "Could not resume" in messages(at)
    finally:
        stop_sessions(at)


@pytest.fixture(scope="module")
def page_checkpoint() -> bytes:
    """A checkpoint whose settings the 2-D GAN page offers (so the page gets past its settings check)."""
    trainer = make_toy_trainer(ToyConfig(seed=0, width=32, depth=2, batch_size=64, n_critic=1))
    trainer.step(3)
    return checkpoint_bytes(trainer)


def test_gan_2d_page_good_checkpoint_resumes(page_checkpoint):
    at = _upload_checkpoint(page_checkpoint)
    try:
        assert_page_ok(at, "good checkpoint")
        assert not at.error, messages(at)
        button(at, "Step +10").click()
        at.run()
        assert widget(at.metric, "Generator step").value == "13"
    finally:
        stop_sessions(at)


@pytest.mark.parametrize("case", ["truncated", "foreign", "history-of-ints", "step-none", "rng-garbage",
                                  "stride-zero", "wide-network"])
def test_gan_2d_page_bad_checkpoint_gets_a_message(case, page_checkpoint):
    state = load_checkpoint(page_checkpoint)
    change = {"history-of-ints": {"history": [1, 2]}, "step-none": {"step": None},
              "rng-garbage": {"rng": torch.zeros(3)}, "stride-zero": {"stride": 0}}.get(case, {})
    state.update(change)
    if case == "wide-network":     # valid, but a width the page does not offer
        state["config"] = dict(state["config"], width=4096)
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "trainer": state}, buf)
    data = {"truncated": page_checkpoint[:500], "foreign": b"\x80\x04K\x01."}.get(case, buf.getvalue())
    at = _upload_checkpoint(data)
    try:
        assert_page_ok(at, f"checkpoint {case}")
        if at.error:
            assert "Could not resume" in messages(at)
        else:   # accepted: then it must train without failing
            button(at, "Step +10").click()
            at.run()
            assert_page_ok(at, f"checkpoint {case} after a step")
            run = at.session_state["g2_session"]
            assert run.state != "error", f"{case}: accepted, then the run failed: {run.message}"
    finally:
        stop_sessions(at)


# ----------------------------------------------------------------------------- compare page
@pytest.mark.parametrize("values, ok", [("a, b", False), ("", False), (",,,", False), ("1e309", False),
                                        ("-5", False), ("nan", False), ("1," * 200, False), ("0", True),
                                        ("0.1, 1, 10", True)], ids=lambda v: str(v)[:12])
def test_compare_page_grid_values_are_checked(values, ok):
    at = page_app("compare").run()
    try:
        widget(at.radio, "What to compare").set_value("Grid")
        at.run()
        widget(at.text_input, "its values").set_value(values)
        at.run()
        assert_page_ok(at, f"grid values {values[:20]!r}")
        if ok:
            assert not at.error, messages(at)
        else:
            assert at.error and len(at.error[0].value) > 15, f"{values[:20]!r}: no message"
    finally:
        stop_sessions(at)


# ----------------------------------------------------------------------------- image GAN page
def image_page_with_uploads(files: list[tuple[str, bytes]]) -> AppTest:
    at = page_app("image_gan").run()
    widget(at.selectbox, "Dataset").set_value("upload")
    at.run()
    widget(at.file_uploader, "PNG/JPG").set_value([(n, d, "application/octet-stream") for n, d in files])
    return at.run()


@pytest.mark.parametrize("case", ["text-file", "truncated-png", "10000x10000-png", "zip-bomb",
                                  "zip-traversal-only", "corrupt-zip"])
def test_image_gan_page_bad_uploads_are_explained(case):
    at = image_page_with_uploads(BAD_IMAGE_UPLOADS[case]())
    assert_page_ok(at, f"image upload {case}")
    shown = " ".join(str(m.value) for m in at.markdown)
    assert "skipped" in " ".join(e.label for e in at.expander), [e.label for e in at.expander]
    assert TOKEN in shown                                   # each file is named with its reason
    assert button(at, "Start").disabled


def test_image_gan_page_malicious_checkpoint_does_not_run(sandbox):
    marker = sandbox / f"{TOKEN}_img_pwned"
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "trainer": _Evil(str(marker))}, buf)
    at = page_app("image_gan").run()
    widget(at.file_uploader, "Checkpoint").set_value((f"{TOKEN}.pt", buf.getvalue(), "application/octet-stream"))
    at.run()
    assert_page_ok(at, "evil image checkpoint")
    assert not marker.exists()
    assert "Could not use this checkpoint" in messages(at)


def test_image_gan_page_toy_checkpoint_is_refused(tiny_checkpoint):
    at = page_app("image_gan").run()
    widget(at.file_uploader, "Checkpoint").set_value((f"{TOKEN}.pt", tiny_checkpoint, "application/octet-stream"))
    at.run()
    assert_page_ok(at, "toy checkpoint on the image page")
    assert "Could not use this checkpoint" in messages(at)


# ----------------------------------------------------------------------------- nothing escaped
def test_no_fuzz_file_escaped_to_disk():
    """No file named after a hostile upload exists in the repo, the temp folder or their parents."""
    places = [ROOT, ROOT.parent, Path(tempfile.gettempdir()), Path("/")]
    found = [str(p) for place in places if place.is_dir() for p in place.glob(f"*{TOKEN}*")]
    found += [str(p) for p in ROOT.rglob(f"*{TOKEN}*") if ".pytest_cache" not in p.parts]
    assert found == [], found
