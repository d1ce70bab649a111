"""The Image GAN page under AppTest: loads, trains a tiny run, shows a sample grid, handles bad uploads."""
import io
import time
from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest
from trainer_checks import one_thread  # noqa: F401  (one torch thread for this module's tests)

from explorer.checkpoints import checkpoint_bytes
from explorer.choices import PRECISION_NAMES, PRECISIONS
from explorer.image_training import ImageConfig, make_image_trainer

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "image_gan.py")
TIMEOUT = 120


def tiny_page(loss: str = "gan") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.radio(key="img_loss").set_value(loss).run()
    at.select_slider(key="img_batch").set_value(8)
    at.select_slider(key="img_gf").set_value(8)
    at.select_slider(key="img_cf").set_value(8)
    at.select_slider(key="img_latent").set_value(16)
    return at.run()


def captions(at: AppTest) -> list[str]:
    return [c for img in at.image for c in img.captions]


def test_page_loads_without_errors():
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "Image GAN"
    assert any("Press Start" in i.value for i in at.info)


def test_precision_offers_auto_first_with_names():
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    box = at.selectbox(key="img_amp")
    assert box.value == "auto" == ImageConfig.amp
    assert box.options == [PRECISION_NAMES[p] for p in PRECISIONS]


def test_manual_steps_show_a_sample_grid_and_metrics():
    at = tiny_page("wgan-gp")
    at.button(key="img_step").click().run()
    assert not at.exception and not at.error
    caps = captions(at)
    assert "Generated, fixed noise — step 20" in caps and "Real (held out)" in caps
    stale = [c.value for c in at.caption if c.value.startswith("These four were measured")]
    assert not stale, stale                              # metrics are fresh after a manual step
    labels = [m.label for m in at.metric]
    assert "Sliced W (generated vs real)" in labels and "Diversity (generated)" in labels
    states = [c.value for c in at.caption if c.value.startswith("State:")]
    assert states == ["State: **paused at step 20**"], states      # not "idle" after 20 steps
    assert at.button(key="img_pause").disabled and not at.button(key="img_step").disabled
    at.button(key="img_reset").click().run()
    assert not at.exception


def test_start_trains_in_the_background_and_pause_stops_it():
    at = tiny_page("gan")
    at.button(key="img_start").click().run()
    assert not at.exception
    deadline = time.monotonic() + 60
    step = 0
    while time.monotonic() < deadline and step == 0:
        time.sleep(1.0)
        at.run()
        steps = [int(c.rsplit(" ", 1)[1]) for c in captions(at) if c.startswith("Generated")]
        step = steps[0] if steps else 0
    assert step > 0, "the background run produced no snapshot"
    assert not at.button(key="img_pause").disabled and at.button(key="img_start").disabled
    at.button(key="img_pause").click().run()
    at.button(key="img_reset").click().run()
    assert not at.exception


def test_bad_checkpoint_upload_is_an_error_message_not_an_exception():
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.file_uploader(key="img_ckpt").upload("broken.pt", b"definitely not torch", "application/octet-stream").run()
    assert not at.exception
    assert any("Could not use this checkpoint" in e.value for e in at.error)


def test_good_checkpoint_upload_samples():
    trainer = make_image_trainer(ImageConfig.for_loss(loss="gan", batch_size=8, g_features=8, c_features=8,
                                             latent_dim=16, n_metric=16))
    trainer.step(1)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.file_uploader(key="img_ckpt").upload("run.pt", checkpoint_bytes(trainer), "application/octet-stream").run()
    assert not at.error
    at.button(key="img_ckpt_sample").click().run()
    assert not at.exception and "Samples from the uploaded generator" in captions(at)


def test_upload_dataset_reports_skipped_files():
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (0, 200, 0)).save(buf, format="PNG")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key="img_dataset").set_value("upload").run()
    assert at.button(key="img_start").disabled
    at.file_uploader(key="img_files").set_value([("a.png", buf.getvalue(), "image/png"),
                                                  ("b.png", b"not a picture", "image/png")]).run()
    assert not at.exception
    assert not at.button(key="img_start").disabled
    assert any("1 file(s) skipped" in e.label for e in at.expander)
