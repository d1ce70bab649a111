"""What the CPU tests (tests/test_devices.py, tests/test_precision.py) and the GPU tests
(tests/test_gpu.py) check on a trainer alike: where its tensors are, and fp16 against float32.

Two ways to catch a tensor that does not follow its trainer's device, without a second device:

- default_device_meta(): torch's default device becomes "meta" (tensors without data). A tensor the
  code creates without naming its device lands there, and the run fails as soon as its values are
  needed (a copy, a number read, a mix with real tensors). A run that completes named every device.
- held_off_device(trainer): the tensors a trainer holds (weights, buffers, optimizer and loss-scaler
  state, training images, snapshot caches) that are not on trainer.device.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from explorer.image_training import ImageConfig, make_image_trainer

# Tiny DCGANs: a step takes milliseconds on a CPU.
TINY_IMAGES = dict(batch_size=8, g_features=8, c_features=8, latent_dim=16, n_metric=16, n_critic=2)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks run fastest on one thread, and the test machine is shared (import it to use it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@contextlib.contextmanager
def default_device_meta():
    """torch's default device is "meta" inside (tensor factories that name no device go there)."""
    with torch.device("meta"):
        yield


def held_tensors(trainer) -> dict[str, torch.Tensor]:
    """Every tensor `trainer` holds, by a readable name."""
    out: dict[str, torch.Tensor] = {}
    nets = {"generator": trainer.generator, "critic": trainer.critic,
            "ema_generator": getattr(trainer, "ema_generator", None)}
    for name, net in nets.items():
        for key, t in ({} if net is None else net.state_dict()).items():
            out[f"{name}.{key}"] = t
    for name in ("opt_g", "opt_c"):
        for i, state in enumerate(getattr(trainer, name).state.values()):
            for key, t in state.items():
                # torch keeps a non-fused optimizer's step counter on the CPU on purpose
                if isinstance(t, torch.Tensor) and not (key == "step" and t.device.type == "cpu" and t.dim() == 0):
                    out[f"{name}.state[{i}].{key}"] = t
    for name in ("scaler_c", "scaler_g"):
        out[f"{name}.scale"] = getattr(trainer, name).scale()
    pool = getattr(getattr(trainer, "source", None), "pool", None)
    if isinstance(pool, torch.Tensor):
        out["source.pool"] = pool
    _walk(trainer.extras, "extras", out)
    return out


def _walk(value, name: str, out: dict) -> None:
    if isinstance(value, torch.Tensor):
        if value.dtype != torch.uint8:   # uint8: a random generator's saved state, a CPU object
            out[name] = value
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk(v, f"{name}[{k!r}]", out)
    elif isinstance(value, (list, tuple)) and not isinstance(value, np.ndarray):
        for i, v in enumerate(value):
            _walk(v, f"{name}[{i}]", out)


def same_device(a: torch.device, b: torch.device) -> bool:
    """cuda and cuda:0 are the same device when one of them names no index."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def held_off_device(trainer) -> list[str]:
    """Names of the held tensors that are not on trainer.device (and the generator's, if it is not)."""
    off = [f"{k} on {t.device}" for k, t in held_tensors(trainer).items() if not same_device(t.device, trainer.device)]
    if not same_device(trainer.rng.device, trainer.device):
        off.append(f"rng on {trainer.rng.device}")
    return off


# ----------------------------------------------------------------------------- fp16 against float32
def weights(trainer) -> torch.Tensor:
    """Every weight of the generator and the critic, as one flat float32 copy on the CPU."""
    params = [*trainer.generator.parameters(), *trainer.critic.parameters()]
    return torch.cat([p.detach().float().flatten().cpu() for p in params])


def set_scale(trainer, scale: float) -> None:
    """Both loss scalers at `scale`, through their state (as a resumed checkpoint sets them)."""
    for scaler in (trainer.scaler_c, trainer.scaler_g):
        state = scaler.state_dict()
        if state:
            state["scale"] = scale
            scaler.load_state_dict(state)


def fp16_against_fp32(loss: str, seed: int, device: str = "cpu", steps: int = 3) -> tuple[float, list]:
    """Train the tiny DCGAN pair `steps` seeded steps in fp16 (with loss scaling) and in float32
    from the same weights and random numbers. The scale starts at 4, where these networks do not
    overflow, so both runs take the same steps. Returns the cosine between the two runs' weight
    updates and the (fp16, float32) pairs of their recorded losses."""
    runs = {}
    for amp in ("off", "fp16"):
        trainer = make_image_trainer(ImageConfig.for_loss(loss, amp=amp, seed=seed, device=device, **TINY_IMAGES))
        set_scale(trainer, 4.0)
        start = weights(trainer)
        trainer.step(steps)
        runs[amp] = (weights(trainer) - start, trainer.history)
    (d16, h16), (d32, h32) = runs["fp16"], runs["off"]
    cosine = float(torch.nn.functional.cosine_similarity(d16, d32, dim=0))
    pairs = [(a[k], b[k]) for a, b in zip(h16, h32) for k in ("loss_c", "loss_g")]
    return cosine, pairs
