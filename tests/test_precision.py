"""Mixed precision on the CPU: the very autocast and loss-scaling code a GPU runs (explorer/precision.py).

torch autocasts to bf16 and fp16 on the CPU and its GradScaler works there, so these tests train
each precision for a few steps, compare fp16 with loss scaling against float32, and check that the
gradient penalty is computed in float32 and survives float16's small range.
"""
import math

import pytest
import torch
from torch import nn
from trainer_checks import TINY_IMAGES, fp16_against_fp32, one_thread, set_scale, weights  # noqa: F401

from explorer.checkpoints import checkpoint_bytes, load_checkpoint
from explorer.image_training import ImageConfig, image_trainer_from_checkpoint, make_image_trainer
from explorer.losses import critic_terms, gradient_penalty, input_grad_norms
from explorer.models import DCGANCritic, MLPCritic, MLPGenerator
from explorer.precision import LossScaler, resolve_precision
from explorer.training import Diverged, TrainConfig, Trainer


def test_auto_is_bf16_on_cuda_and_float32_elsewhere():
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert resolve_precision("auto", torch.device("cpu")) == "off"
    assert resolve_precision("fp16", torch.device("cpu")) == "fp16"     # an explicit choice is kept
    with pytest.raises(ValueError, match="mixed precision"):
        resolve_precision("fp8", torch.device("cpu"))
    with pytest.raises(ValueError, match="mixed precision"):
        ImageConfig.for_loss(amp="half").validate()
    assert ImageConfig().amp == "auto"


@pytest.mark.parametrize("loss", ["gan", "wgan-gp"])
@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_each_precision_trains_a_few_steps(loss, amp):
    trainer = make_image_trainer(ImageConfig.for_loss(loss, amp=amp, **TINY_IMAGES))
    assert trainer.amp == amp and trainer.generator.amp == trainer.critic.amp == amp
    assert trainer.scaler_c.enabled == trainer.scaler_g.enabled == (amp == "fp16")   # fp16 only with scaling
    if amp == "fp16":
        set_scale(trainer, 4.0)   # where these tiny networks do not overflow (see below for overflow)
    before = weights(trainer)
    trainer.step(3)
    for record in trainer.history:
        assert all(math.isfinite(record[k]) for k in ("loss_c", "loss_g", "w_est"))
        assert math.isfinite(record["gp"]) == (loss == "wgan-gp")
    assert (weights(trainer) - before).abs().max() > 1e-5


@pytest.mark.parametrize("loss", ["gan", "wgan-gp"])
@pytest.mark.parametrize("seed", [0, 1])
def test_fp16_with_loss_scaling_follows_float32(loss, seed):
    """Three seeded steps in fp16 (scaled) and in float32 from the same weights and random numbers.

    Weight by weight the runs may differ by up to 2 lr a step: Adam moves each weight by about lr
    whatever its gradient's size, so a gradient near zero whose sign rounding flips moves the other
    way. What must agree is the update as a whole and the losses: measured, the updates' cosine is
    0.993-0.997 (bf16, with 3 fewer mantissa bits, 0.976-0.987) and the losses agree within 2.3%.
    """
    cosine, losses = fp16_against_fp32(loss, seed)
    assert cosine > 0.98
    for fp16, fp32 in losses:
        assert fp16 == pytest.approx(fp32, rel=0.05, abs=0.01)


def test_the_penalty_is_float32_under_autocast():
    """The networks compute in bf16 / fp16, hand back float32, and the penalty's norm and square
    take float32 inputs (every call into torch is watched)."""
    seen = []

    class Watch(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if name in ("norm", "pow", "__pow__"):
                seen.append((name, args[0].dtype))
            return func(*args, **(kwargs or {}))

    real, fake = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    for amp in ("bf16", "fp16"):
        critic = DCGANCritic(28, 1, 8, norm="layer").set_precision(amp)
        seen.clear()
        with Watch():
            terms = critic_terms("wgan-gp", critic, real, fake, lam=10.0, scale=torch.tensor(256.0))
        assert terms.gp.dtype == terms.loss.dtype == terms.w_est.dtype == torch.float32
        assert {"norm", "pow"} <= {name for name, _ in seen}
        assert all(dtype == torch.float32 for _, dtype in seen), seen
        assert input_grad_norms(critic, real).dtype == torch.float32


def test_the_scaled_penalty_is_the_penalty():
    """f(x) = w . x has gradient w everywhere, so GP = (||w|| - 1)^2, with or without a loss scale."""
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    exact = (critic[1].weight.norm() - 1) ** 2
    for scale in (1.0, torch.tensor(1024.0)):
        assert gradient_penalty(critic, real, fake, scale=scale).item() == pytest.approx(exact.item(), rel=1e-5)


def test_loss_scaling_keeps_the_penalty_gradients_float16_would_lose():
    """A critic whose scores are scaled by 1e-8 after the network, so the gradient entering its fp16
    backward pass is 1e-8, below float16's smallest number (6e-8): unscaled, the input gradients
    flush to zero; scaled by 2^12 they survive and match float32. (2^16 itself overflows float16,
    whose largest number is 65504: a scaler would halve it.)"""
    torch.manual_seed(0)
    net = DCGANCritic(28, 1, 8, norm="none")

    def critic(x):
        return 1e-8 * net(x)

    x = torch.randn(4, 1, 28, 28)
    exact = input_grad_norms(critic, x)
    net.set_precision("fp16")
    assert (input_grad_norms(critic, x) == 0).all()                       # underflow
    scaled = input_grad_norms(critic, x, scale=torch.tensor(2.0 ** 12))
    assert (scaled > 0).all() and torch.allclose(scaled, exact, rtol=0.02)


def test_the_scaler_skips_overflowing_steps_without_calling_them_divergence():
    """From torch's default scale 2^16 the penalty's backward overflows float16 here: the first steps
    are skipped (weights kept, their overflow recorded as not measured) while the scale halves, then
    the run trains."""
    trainer = make_image_trainer(ImageConfig.for_loss("wgan-gp", amp="fp16", **TINY_IMAGES))
    trainer.step(1)
    assert math.isnan(trainer.history[0]["loss_c"])                       # skipped, not inf, no Diverged
    trainer.step(11)
    assert trainer.scaler_c.grad_scaler.get_scale() < 2.0 ** 16
    assert all(math.isfinite(r["loss_c"]) for r in trainer.history[-3:])


def test_a_collapsed_loss_scale_stops_the_run_with_advice():
    trainer = make_image_trainer(ImageConfig.for_loss("gan", amp="fp16", **TINY_IMAGES))
    set_scale(trainer, 0.5)        # where 17 overflows in a row from 2^16 would take it
    with pytest.raises(Diverged, match="float16 overflowed.*bf16"):
        trainer.step(1)
    assert trainer.step_count == 0


def test_loss_scales_survive_a_checkpoint():
    trainer = make_image_trainer(ImageConfig.for_loss("gan", amp="fp16", **TINY_IMAGES))
    trainer.step(2)
    scale = trainer.scaler_g.grad_scaler.get_scale()
    state = load_checkpoint(checkpoint_bytes(trainer))
    again = image_trainer_from_checkpoint(state)
    assert again.amp == "fp16" and again.scaler_g.grad_scaler.get_scale() == scale
    state["config"]["amp"] = "auto"    # the same file resumed in float32: its scales do not apply
    assert image_trainer_from_checkpoint(state).scaler_c.enabled is False


def test_a_disabled_scaler_is_a_plain_step():
    p = nn.Parameter(torch.tensor([3.0]))
    opt = torch.optim.SGD([p], lr=0.5)
    skipped = LossScaler(torch.device("cpu"), enabled=False).minimize((p ** 2).sum(), opt)
    assert p.item() == pytest.approx(0.0) and skipped.item() == 0.0      # 3 - 0.5 * 2 * 3


def test_the_closed_form_refuses_mixed_precision():
    G, C = MLPGenerator(2, 8, 1), MLPCritic(2, 8, 1)
    cfg = TrainConfig(batch_size=8, engine="auto")
    trainer = Trainer(cfg, G, C, lambda n: torch.randn(n, 2), lambda n: torch.randn(n, 2), amp="bf16")
    assert trainer.engine == "autograd" and Trainer(cfg, G, C, None, None).engine == "closed_form"
