"""Mixed precision: the dtype the networks compute in, and the loss scaling that float16 needs.

    off    float32 throughout.
    bf16   the networks' convolutions and matrix products autocast to bfloat16. bf16 keeps float32's
           exponent range (8 bits), so no gradient underflows or overflows: no loss scaling.
    fp16   autocast to float16, always with loss scaling. float16 has 5 exponent bits: magnitudes
           below about 6e-8 flush to zero and above 65504 overflow, so small gradients vanish in the
           backward pass. Each loss is multiplied by a scale S before its backward pass and the
           gradients divided by S before the optimizer step (torch.amp.GradScaler); a step whose
           gradients overflowed is skipped and S halved, and S doubles after 2000 good steps.
    auto   bf16 on a CUDA GPU, off anywhere else (a CPU's bf16 convolutions are slower than float32).

The networks hand back float32 (explorer/models.py), so every loss, the critic's estimate of W and
the gradient penalty's norm and square are float32 whatever the choice. bf16 and fp16 apply on every
device torch can autocast on, the CPU included: the tests run this very code on a CPU.

    >>> resolve_precision("auto", torch.device("cpu")), resolve_precision("auto", torch.device("cuda"))
    ('off', 'bf16')
"""
from __future__ import annotations

import torch

from explorer.choices import PRECISIONS

AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# A loss scale that has halved below 1 (from 2^16: 17 overflows in a row, or more) means float16
# cannot hold this run's numbers at all: it would skip every step and never train.
MIN_LOSS_SCALE = 1.0


def resolve_precision(amp: str, device: torch.device) -> str:
    """The precision a run on `device` trains in: "auto" -> "bf16" on CUDA, else "off"; "off",
    "bf16" and "fp16" as asked, where torch can autocast on that device (else ValueError)."""
    if amp not in PRECISIONS:
        raise ValueError(f"Unknown mixed precision {amp!r}; choose one of {', '.join(PRECISIONS)}.")
    if amp == "auto":
        return "bf16" if device.type == "cuda" else "off"
    if amp != "off" and not torch.amp.is_autocast_available(device.type):
        raise ValueError(f"Mixed precision {amp} is not available on {device.type}; choose off or auto.")
    return amp


class LossScaler:
    """Loss scaling for one optimizer (a torch.amp.GradScaler): the same calls whether it is on
    (fp16) or off, where it passes the loss and the step through unchanged."""

    def __init__(self, device: torch.device, enabled: bool):
        self.grad_scaler = torch.amp.GradScaler(device.type, enabled=enabled)
        self._one = torch.ones((), device=device)

    @property
    def enabled(self) -> bool:
        return self.grad_scaler.is_enabled()

    def scale(self) -> torch.Tensor:
        """The current loss scale S as a 0-dim tensor on the device (1 when off), read without
        waiting for the device."""
        return self.grad_scaler.scale(self._one)

    def minimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """One step of `optimizer` down `loss`: the backward pass of S * loss, the gradients divided
        by S, the step skipped if any of them is inf or NaN, then S updated.

        Returns a 0-dim tensor on the device: 1.0 if the step was skipped (S went down), else 0.0.
        """
        before = self.scale()
        optimizer.zero_grad(set_to_none=True)
        self.grad_scaler.scale(loss).backward()
        self.grad_scaler.step(optimizer)
        self.grad_scaler.update()
        return (self.scale() < before).float()

    def collapsed(self) -> bool:
        """True when S has fallen below MIN_LOSS_SCALE (waits for the device: call it rarely)."""
        return self.enabled and self.grad_scaler.get_scale() < MIN_LOSS_SCALE

    def state_dict(self) -> dict:
        """S and its growth counter (plain numbers), or {} when off."""
        return self.grad_scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore state_dict(); a state from a scaler that was off (or none) leaves this one as it is."""
        if self.enabled and state:
            self.grad_scaler.load_state_dict(state)
