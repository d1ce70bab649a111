"""Device handling without a GPU: every tensor a trainer, a snapshot or a metric makes names its
device (tests/trainer_checks.py), and a checkpoint written on one device opens on another."""
import io
import logging
from unittest import mock

import pytest
import torch
from trainer_checks import TINY_IMAGES, default_device_meta, held_off_device, one_thread  # noqa: F401

from explorer import checkpoints
from explorer.checkpoints import checkpoint_bytes, load_checkpoint
from explorer.grid import GridConfig, make_grid
from explorer.image_training import ImageConfig, image_snapshot, image_trainer_from_bytes, make_image_trainer
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot, toy_trainer_from_bytes

TINY_IMAGES = {**TINY_IMAGES, "n_critic": 1, "ema": 0.9}   # ema: the averaged generator's tensors too
TINY_TOY = dict(width=8, depth=1, batch_size=16, n_critic=1, ema=0.9, engine="autograd")   # the GPU's engine


@pytest.mark.parametrize("loss, amp", [("gan", "off"), ("wgan-gp", "fp16")])
def test_an_image_run_names_the_device_of_everything_it_makes(loss, amp):
    with default_device_meta():
        trainer = make_image_trainer(ImageConfig.for_loss(loss, amp=amp, **TINY_IMAGES))
        trainer.step(2)
        snap = image_snapshot(trainer, force_metrics=True)
    assert snap.metrics["sliced_w"] > 0 and snap.fake_grid.dtype.name == "uint8"
    assert held_off_device(trainer) == []


def test_a_toy_run_and_a_grid_name_the_device_of_everything_they_make():
    with default_device_meta():
        trainer = make_toy_trainer(ToyConfig(**TINY_TOY))
        trainer.step(3)
        snap = toy_snapshot(trainer, n=32, grid=8)
        grid = make_grid(GridConfig(base=ToyConfig(**TINY_TOY), values_a=(0.1, 1.0), field_b=None, n=32, grid=8))
        grid.step(2)
        panels = grid.snapshot().panels
    assert snap.metrics["w1_exact"] > 0 and len(panels) == 2
    assert held_off_device(trainer) == [] and all(held_off_device(t) == [] for t in grid.trainers)


def test_the_check_catches_a_tensor_made_without_a_device():
    trainer = make_toy_trainer(ToyConfig(**TINY_TOY))
    trainer.extras["stray"] = torch.zeros(2, device="meta")
    assert held_off_device(trainer) == ["extras['stray'] on meta"]
    with default_device_meta(), pytest.raises((RuntimeError, NotImplementedError)):
        torch.zeros(2).cpu().numpy()      # what the run above would hit on a tensor it left unplaced


def gpu_file(trainer) -> bytes:
    """The checkpoint as a GPU would write it: every storage tagged cuda:0, a CUDA generator's state."""
    state = trainer.state_dict()
    state["rng"], state["rng_device"] = torch.zeros(16, dtype=torch.uint8), "cuda"   # Philox: seed, offset
    buf = io.BytesIO()
    with mock.patch("torch.serialization.location_tag", lambda storage: "cuda:0"):
        torch.save({"format": checkpoints.CHECKPOINT_FORMAT, "version": 1, "trainer": state}, buf)
    return buf.getvalue()


def test_a_checkpoint_written_on_a_gpu_opens_on_a_cpu(caplog):
    trainer = make_image_trainer(ImageConfig.for_loss("wgan-gp", amp="fp16", **TINY_IMAGES))
    trainer.step(2)
    data = gpu_file(trainer)
    with pytest.raises(RuntimeError, match="CUDA"):      # what a load without map_location would do here
        torch.load(io.BytesIO(data), weights_only=True)
    with caplog.at_level(logging.INFO, logger="explorer.training"):
        again = image_trainer_from_bytes(data)
    assert "does not apply on cpu" in caplog.text        # CUDA's random state has no meaning on a CPU
    assert again.device.type == "cpu" and again.step_count == 2 and held_off_device(again) == []
    for a, b in zip(trainer.generator.state_dict().values(), again.generator.state_dict().values()):
        assert torch.equal(a, b)
    again.step(1)
    toy = make_toy_trainer(ToyConfig(**TINY_TOY))
    toy.step(2)
    assert toy_trainer_from_bytes(gpu_file(toy)).step_count == 2


def test_load_maps_every_tensor_to_the_cpu_then_the_trainer_takes_them_to_its_device():
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    data = checkpoint_bytes(make_toy_trainer(ToyConfig(**TINY_TOY)))
    with mock.patch.object(checkpoints.torch, "load", spy):
        load_checkpoint(data)
    assert calls == [{"map_location": "cpu", "weights_only": True}]
