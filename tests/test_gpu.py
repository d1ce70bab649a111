"""On a CUDA GPU: auto precision is bf16, each precision trains, fp16 with loss scaling follows float32,
the penalty stays float32, every tensor stays on the GPU, and checkpoints move between GPU and CPU.

bench/gpu_check.sh runs this module. Without CUDA every test is skipped, with the reason.
"""
import math
from dataclasses import replace

import pytest
import torch
from trainer_checks import TINY_IMAGES, default_device_meta, fp16_against_fp32, held_off_device, weights

from explorer.checkpoints import checkpoint_bytes, load_checkpoint
from explorer.grid import GridConfig, make_grid
from explorer.image_training import (
    ImageConfig,
    config_from_checkpoint,
    image_snapshot,
    image_trainer_from_bytes,
    make_image_trainer,
)
from explorer.losses import critic_terms
from explorer.models import DCGANCritic
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")

# The lecture notes' 64x64 colour DCGAN, narrower: big enough for the GPU's kernels to matter.
GPU_IMAGES = dict(image_size=64, batch_size=32, g_features=16, c_features=16, n_metric=64, device="cuda")


def test_auto_precision_is_bf16_on_the_gpu():
    trainer = make_image_trainer(ImageConfig.for_loss("gan", **GPU_IMAGES))
    assert trainer.device.type == "cuda" and trainer.amp == "bf16" and trainer.critic.amp == "bf16"
    assert not trainer.scaler_c.enabled and not trainer.scaler_g.enabled      # bf16 needs no loss scaling
    trainer.step(3)
    assert all(math.isfinite(r["loss_c"]) for r in trainer.history)


@pytest.mark.parametrize("loss", ["gan", "wgan-gp"])
@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_each_precision_trains_on_the_gpu(loss, amp):
    trainer = make_image_trainer(ImageConfig.for_loss(loss, amp=amp, **GPU_IMAGES))
    before = weights(trainer)
    trainer.step(30)     # fp16 skips its first steps while the loss scale comes down from 2^16
    last = trainer.history[-1]
    assert all(math.isfinite(last[k]) for k in ("loss_c", "loss_g", "w_est"))
    assert (weights(trainer) - before).abs().max() > 1e-5
    assert trainer.scaler_c.enabled == (amp == "fp16")


@pytest.mark.parametrize("loss", ["gan", "wgan-gp"])
def test_fp16_with_loss_scaling_follows_float32_on_the_gpu(loss):
    """As on the CPU (tests/test_precision.py): the updates point the same way, the losses agree."""
    cosine, losses = fp16_against_fp32(loss, seed=0, device="cuda")
    assert cosine > 0.98
    for fp16, fp32 in losses:
        assert fp16 == pytest.approx(fp32, rel=0.05, abs=0.01)


def test_the_penalty_is_float32_on_the_gpu():
    real, fake = torch.randn(4, 3, 64, 64, device="cuda"), torch.randn(4, 3, 64, 64, device="cuda")
    for amp in ("bf16", "fp16"):
        critic = DCGANCritic(64, 3, 16, norm="layer").cuda().set_precision(amp)
        terms = critic_terms("wgan-gp", critic, real, fake, lam=10.0, scale=torch.tensor(256.0, device="cuda"))
        assert terms.gp.dtype == terms.loss.dtype == torch.float32 and math.isfinite(float(terms.gp))


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_an_image_run_keeps_everything_on_the_gpu(amp):
    with default_device_meta():
        trainer = make_image_trainer(ImageConfig.for_loss("wgan-gp", amp=amp, ema=0.9, **GPU_IMAGES))
        trainer.step(2)
        snap = image_snapshot(trainer, force_metrics=True)
    assert snap.metrics["sliced_w"] > 0
    assert held_off_device(trainer) == []


def test_the_toy_trainer_and_a_grid_run_on_the_gpu():
    base = ToyConfig.recommended("8gaussians", width=32, device="cuda")
    with default_device_meta():
        trainer = make_toy_trainer(base)
        trainer.step(30)
        snap = toy_snapshot(trainer, n=64, grid=16)
        grid = make_grid(GridConfig(base=replace(base), values_a=(0.1, 1.0), field_b=None, n=64, grid=16))
        grid.step(5)
        panels = grid.snapshot().panels
    assert trainer.engine == "autograd" and snap.metrics["w1_exact"] > 0 and len(panels) == 2
    assert held_off_device(trainer) == [] and all(held_off_device(t) == [] for t in grid.trainers)


def test_checkpoints_move_between_the_gpu_and_the_cpu():
    gpu = make_image_trainer(ImageConfig.for_loss("wgan-gp", amp="fp16", n_critic=1, **GPU_IMAGES))
    gpu.step(3)
    state = load_checkpoint(checkpoint_bytes(gpu))
    assert all(t.device.type == "cpu" for t in state["generator"].values())    # mapped to the CPU on read
    cpu = make_image_trainer(replace(config_from_checkpoint(state), device="cpu"))
    cpu.load_state_dict(state)          # a GPU's random state does not apply on the CPU: the seed's stream
    assert cpu.step_count == 3 and held_off_device(cpu) == []
    assert torch.equal(weights(cpu), weights(gpu))
    cpu.step(1)
    back = image_trainer_from_bytes(checkpoint_bytes(cpu))        # device "auto": the GPU again
    assert back.device.type == "cuda" and held_off_device(back) == [] and torch.equal(weights(back), weights(cpu))
    back.step(1)
    cpu_files = make_image_trainer(ImageConfig.for_loss("gan", **{**TINY_IMAGES, "device": "cpu"}))
    cpu_files.step(1)
    assert image_trainer_from_bytes(checkpoint_bytes(cpu_files)).device.type == "cuda"
