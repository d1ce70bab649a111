"""DCGAN networks, image training steps, metrics, snapshots, checkpoints and headless runs (CPU, tiny)."""
import json
import math
import time

import numpy as np
import pytest
import torch
from trainer_checks import one_thread  # noqa: F401  (one torch thread for this module's tests)

from explorer import image_training
from explorer.checkpoints import load_checkpoint, save_checkpoint
from explorer.choices import NORMS
from explorer.image_training import (ImageConfig, config_from_checkpoint, generator_from_checkpoint,
                                     image_snapshot, image_trainer_from_checkpoint, make_image_trainer,
                                     train_images)
from explorer.metrics import diversity, sliced_w
from explorer.models import DCGANCritic, DCGANGenerator

TINY = dict(batch_size=8, g_features=8, c_features=8, latent_dim=16, n_metric=16)


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("norm", NORMS)
def test_dcgan_shapes_for_every_size_and_norm(size, norm):
    channels = 1 if size == 28 else 3
    G = DCGANGenerator(size, channels, latent_dim=12, features=4, norm=norm)
    C = DCGANCritic(size, channels, features=4, norm=norm)
    x = G(torch.randn(3, 12))
    assert x.shape == (3, channels, size, size) and x.abs().max() <= 1
    assert C(x).shape == (3, 1)
    assert G(torch.randn(3, 12, 1, 1)).shape == x.shape       # DCGAN-style 4-D noise works too


def test_dcgan_uses_the_4_2_1_pattern():
    G, C = DCGANGenerator(64, 3, 100, 64), DCGANCritic(64, 3, 64)
    convs = [m for m in [*G.modules(), *C.modules()] if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert len(convs) == 10
    body = convs[1:5] + convs[5:9]      # all but the generator's first and the critic's last layer
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) and m.padding == (1, 1) for m in body)
    assert G.net[0].out_channels == 512 and C.net[-1].in_channels == 512   # (ngf*8) x 4 x 4


def test_bad_network_settings_raise():
    with pytest.raises(ValueError, match="image size"):
        DCGANGenerator(48)
    with pytest.raises(ValueError, match="normalization"):
        DCGANCritic(28, 1, 8, norm="weird")


def test_config_defaults_follow_the_loss():
    assert ImageConfig.for_loss(loss="gan").n_critic == 1 and ImageConfig.for_loss(loss="gan").c_norm == "batch"
    gp = ImageConfig.for_loss(loss="wgan-gp")
    assert gp.n_critic == 5 and gp.c_norm == "layer" and gp.channels == 1
    assert ImageConfig.for_loss(image_size=64).channels == 3 and ImageConfig.for_loss(dataset="mnist", image_size=64).channels == 1
    with pytest.raises(ValueError, match="Batch norm"):
        make_image_trainer(ImageConfig.for_loss(loss="wgan-gp", c_norm="batch", **TINY))
    with pytest.raises(ValueError, match="Image size"):
        make_image_trainer(ImageConfig.for_loss(image_size=30, **TINY))


@pytest.mark.parametrize("loss", ["gan", "wgan", "wgan-gp"])
def test_one_training_step_of_each_loss(loss):
    cfg = ImageConfig.for_loss(loss=loss, n_critic=2, clip=0.02, **TINY)
    trainer = make_image_trainer(cfg)
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    rec = trainer.step(1)
    assert rec["step"] == 1 and all(math.isfinite(rec[k]) for k in ("loss_c", "loss_g", "w_est"))
    assert math.isfinite(rec["gp"]) == (loss == "wgan-gp")
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.generator.parameters()))
    if loss == "wgan":
        assert max(p.abs().max().item() for p in trainer.critic.parameters()) <= 0.02 + 1e-7


def test_same_seed_same_run():
    a = make_image_trainer(ImageConfig.for_loss(loss="gan", **TINY))
    b = make_image_trainer(ImageConfig.for_loss(loss="gan", **TINY))
    ra, rb = a.step(3), b.step(3)
    assert ra.pop("gp") != rb.pop("gp") and ra == rb     # gp is nan (not computed) for gan


def test_sliced_w_known_answers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1, 8, 8))
    assert sliced_w(x, x) == pytest.approx(0.0, abs=1e-12)
    v = rng.normal(size=(1, 1, 8, 8))
    # A shift by v: every 1-D projection moves by theta.v, so SW_2^2 = E (theta.v)^2 = ||v||^2 / D.
    expected = np.linalg.norm(v) / 8.0
    assert sliced_w(x, x + v, n_projections=2000) == pytest.approx(expected, rel=0.1)
    assert sliced_w(x, x + v) == sliced_w(x, x + v)                      # fixed projections
    with pytest.raises(ValueError):
        sliced_w(x, np.zeros((3, 5)))


def test_diversity_known_answers():
    assert diversity(torch.stack([-torch.ones(1, 4, 4), torch.ones(1, 4, 4)])) == pytest.approx(2.0)
    assert diversity(torch.zeros(5, 1, 4, 4)) == 0.0
    u8 = np.stack([np.zeros((1, 2, 2), np.uint8), np.full((1, 2, 2), 255, np.uint8)])
    assert diversity(u8) == pytest.approx(2.0)


def test_snapshot_has_grids_and_a_growing_metrics_log():
    trainer = make_image_trainer(ImageConfig.for_loss(loss="gan", **TINY))
    s0 = image_snapshot(trainer)
    trainer.step(2)
    s1 = image_snapshot(trainer, force_metrics=True)
    assert s0.fake_grid.dtype == np.uint8 and s0.fake_grid.shape == s0.real_grid.shape == (242, 242, 3)
    assert [r["step"] for r in s1.metrics_log] == [0, 2] and len(s1.history) == 2
    m = s1.metrics
    assert m["sliced_w"] > m["sliced_w_floor"] > 0 and 0 < m["diversity"] and 0 < m["diversity_real"]
    assert not np.array_equal(s0.fake_grid, s1.fake_grid)


def test_live_measurements_take_at_most_their_share_of_the_time():
    trainer = make_image_trainer(ImageConfig.for_loss(loss="gan", **TINY))
    image_snapshot(trainer)                                   # the first one always measures
    cache = trainer.extras["images"]
    for cost, measured in ((10.0, False), (0.01, True)):
        trainer.step(1)
        cache["measured_at"] = time.monotonic() - 3 * image_training.METRIC_EVERY_S
        cache["measure_cost"] = cost                          # 10 s a measurement: wait 200 s at 5%
        before = len(cache["log"])
        image_snapshot(trainer)
        assert (len(cache["log"]) > before) is measured
    trainer.step(1)
    cache["measure_cost"] = 10.0
    assert image_snapshot(trainer, force_metrics=True).metrics_log[-1]["step"] == trainer.step_count


def test_every_loss_averages_the_generator_and_the_snapshot_keeps_the_raw_grid():
    assert {ImageConfig.for_loss(loss).ema for loss in ("gan", "wgan", "wgan-gp")} == {0.999}
    trainer = make_image_trainer(ImageConfig.for_loss(loss="gan", **TINY))
    trainer.step(3)
    assert image_snapshot(trainer).raw_grid is None          # live frames: the average only (one pass)
    snap = image_snapshot(trainer, force_metrics=True)       # a still one: the trained generator's too
    assert trainer.eval_generator is trainer.ema_generator
    assert snap.raw_grid is not None and snap.raw_grid.shape == snap.fake_grid.shape
    assert not np.array_equal(snap.raw_grid, snap.fake_grid)      # the average is not the trained weights
    plain = make_image_trainer(ImageConfig.for_loss(loss="gan", ema=0.0, **TINY))
    assert image_snapshot(plain, force_metrics=True).raw_grid is None and plain.eval_generator is plain.generator


def test_mixed_precision_runs_on_the_cpu_and_hands_back_float32():
    torch.manual_seed(0)
    G = DCGANGenerator(28, 1, 16, 8)
    z = torch.randn(4, 16)
    plain = G(z)
    for amp in ("bf16", "fp16"):          # autocast on the CPU: rounded like the dtype, returned as float32
        low = G.set_precision(amp)(z)
        assert low.dtype == torch.float32 and not torch.equal(low, plain)
        assert torch.allclose(low, plain, atol=0.02)
    assert torch.allclose(G.set_precision("off", channels_last=True)(z), plain, atol=1e-6)
    with pytest.raises(ValueError, match="mixed precision"):
        G.set_precision("fp8")
    with pytest.raises(ValueError, match="mixed precision"):
        G.set_precision("auto")           # resolved for a device first (explorer/precision.py)
    assert make_image_trainer(ImageConfig.for_loss(**TINY)).amp == "off"   # auto on a CPU: float32


def test_checkpoint_round_trip(tmp_path):
    cfg = ImageConfig.for_loss(loss="wgan-gp", n_critic=1, **TINY)
    trainer = make_image_trainer(cfg)
    trainer.step(2)
    save_checkpoint(trainer, tmp_path / "ckpt.pt")
    state = load_checkpoint(tmp_path / "ckpt.pt")
    again = image_trainer_from_checkpoint(state)
    assert again.step_count == 2 and again.cfg.c_features == 8 and again.history == trainer.history
    for a, b in zip(trainer.generator.state_dict().values(), again.generator.state_dict().values()):
        assert torch.equal(a, b)
    assert trainer.step(1) == again.step(1)                     # resumes exactly
    G = generator_from_checkpoint(state)
    assert G(torch.zeros(2, 16)).shape == (2, 1, 28, 28)


def test_wrong_architecture_checkpoint_is_a_clear_error(tmp_path):
    small = make_image_trainer(ImageConfig.for_loss(loss="gan", **TINY))
    state = load_checkpoint(_save(small, tmp_path))
    bigger = make_image_trainer(ImageConfig.for_loss(loss="gan", **{**TINY, "g_features": 16}))
    with pytest.raises(ValueError, match="do not match"):
        bigger.load_state_dict(state)
    state["config"]["g_features"] = 16                          # config and weights disagree
    with pytest.raises(ValueError, match="do not fit"):
        generator_from_checkpoint(state)
    with pytest.raises(ValueError, match="not from the Image GAN"):
        config_from_checkpoint({"config": {"width": 128}, "generator": {}})
    state["config"]["image_size"] = 31
    with pytest.raises(ValueError, match="not valid"):
        config_from_checkpoint(state)


def _save(trainer, folder):
    path = folder / "c.pt"
    save_checkpoint(trainer, path)
    return path


def test_train_images_headless_writes_outputs(tmp_path):
    result = train_images(ImageConfig.for_loss(loss="gan", **TINY), steps=4, out_dir=str(tmp_path))
    for key in ("steps", "seconds", "images_per_s", "sliced_w", "diversity"):
        assert key in result
    assert result["steps"] == 4 and result["images_per_s"] > 0 and result["device"] == "cpu"
    names = {p.name for p in tmp_path.iterdir()}
    assert {"checkpoint.pt", "samples.png", "real.png", "evolution.gif", "metrics.json", "config.json"} <= names
    assert (tmp_path / "evolution.gif").read_bytes()[:6] == b"GIF89a"
    assert len(json.loads((tmp_path / "metrics.json").read_text())["history"]) == 4
    with pytest.raises(ValueError):
        train_images(ImageConfig(**TINY), steps=0)
