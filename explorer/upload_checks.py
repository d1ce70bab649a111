"""What an uploaded checkpoint declares, checked against what the app offers before anything is built.

A well-formed file can still declare a network no page offers (width 4096 and depth 16 took 34 s and
6 GB to build before its weights were refused), a history of millions of records, a step counter of
2^62 or NaN weights. These checks read only the loaded dict, before any network, optimizer or history
is made from it:

- the config: every size at most the largest the page offers (choices.TOY_OFFER / IMAGE_OFFER), and
  the process's own settings (the device; threads and folders are never in a config) the app's;
- every tensor: the shape the config's networks give it (built on PyTorch's "meta" device, which
  allocates nothing), finite values, optimizer moments shaped like their weights;
- progress: the step counter, the history's records and the random-number state in range, and the
  history thinned to what the app keeps.

Cost bound: one pass over the file's tensors (at most largest_checkpoint_bytes of the page's largest
networks: the file is refused above that before it is read) and one over its history records (at
most ~15,000 fit in checkpoints.MAX_PICKLE_BYTES); nothing as large as a tensor is allocated.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import torch
from torch import nn

from explorer.checkpoints import MAX_PICKLE_BYTES
from explorer.choices import largest
from explorer.training import RECORD_KEYS

# Far beyond any run the app makes (600 training seconds a start), and exact in every chart and table
# (JavaScript numbers are exact to 2^53).
MAX_STEPS = 10**9
RNG_STATE_BYTES = 5056        # a CPU generator's state; a CUDA generator's is 16


def upload_limits(offer: dict, sizes: tuple[str, ...], **own: int) -> dict[str, int]:
    """{field: the largest value allowed in an upload}: the offer's largest for each of `sizes`, then
    the app's `own` caps (its history length, its measurement sample)."""
    return {**{name: largest(offer[name]) for name in sizes}, **own}


def largest_checkpoint_bytes(generator: nn.Module, critic: nn.Module) -> int:
    """The size of the largest checkpoint of these networks (meta modules will do): weights and
    buffers, Adam's two moments for every weight, the averaged generator's copy (TrainConfig.ema), the
    object tree at its cap (checkpoints.MAX_PICKLE_BYTES) and a MiB for the archive's own headers and
    alignment."""
    def sizes(net: nn.Module) -> tuple[int, int]:
        return (sum(p.numel() * p.element_size() for p in net.parameters()),
                sum(b.numel() * b.element_size() for b in net.buffers()))
    (g_weights, g_buffers), (c_weights, c_buffers) = sizes(generator), sizes(critic)
    averaged = g_weights + g_buffers
    return 3 * (g_weights + c_weights) + g_buffers + c_buffers + averaged + MAX_PICKLE_BYTES + 2**20


def upload_config(cls: type, saved: dict, limits: dict[str, int], device: str) -> Any:
    """The file's settings as a `cls` config: sizes within `limits`, the device the app's, validated.

    Fields `cls` does not have (a `cpu_threads` of an older or a crafted file) are ignored, so nothing
    in a file reaches a process-wide setting. ValueError names every size that is too large."""
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in saved.items() if k in known}
    values["device"] = device
    over = [name for name, top in limits.items() if _number(values.get(name)) and values[name] > top]
    if over:
        declared = ", ".join(f"{name} {values[name]:,}" for name in over)
        allowed = ", ".join(f"{name} {limits[name]:,}" for name in over)
        raise ValueError(f"The checkpoint declares {declared}, larger than this app offers (at most {allowed}), "
                         "so it was not opened.")
    try:
        cfg = cls(**values)
        cfg.validate()
    except (TypeError, ValueError) as err:
        raise ValueError(f"The checkpoint's configuration is not valid: {err}") from None
    return cfg


def check_contents(d: dict, cfg: Any, networks: Callable[[Any], tuple[nn.Module, nn.Module]]) -> str | None:
    """Everything in a checkpoint dict beside its config, against the (generator, critic) that
    networks(cfg) builds (here on the meta device): tensors, progress, and the history thinned to
    cfg.history_cap; the sentence that says it was thinned, or None. ValueError otherwise."""
    G, C = meta_networks(networks, cfg)
    check_tensors(d, {"generator": G, "critic": C})
    check_progress(d)
    return cap_history(d, cfg.history_cap)


def meta_networks(build, *args) -> tuple[nn.Module, ...]:
    """build(*args) on PyTorch's meta device: modules with every shape and no memory behind them."""
    with torch.device("meta"):
        return build(*args)


def check_tensors(d: dict, networks: dict[str, nn.Module]) -> None:
    """Every network's weights in `d` shaped as in `networks` (meta modules) and finite (the averaged
    generator's too, when the file has one), and each optimizer's state shaped like the weights it
    follows; ValueError otherwise."""
    for key, net in networks.items():
        _check_weights(d.get(key), net.state_dict(), key)
    if "ema_generator" in d and "generator" in networks:   # the averaged generator has the generator's shapes
        _check_weights(d["ema_generator"], networks["generator"].state_dict(), "ema_generator")
    for opt_key, net_key in (("opt_g", "generator"), ("opt_c", "critic")):
        if opt_key in d and net_key in networks:
            _check_optimizer(d[opt_key], [p.shape for p in networks[net_key].parameters()], opt_key)


def check_progress(d: dict) -> None:
    """Step counter, stride, history records and random-number state within range; ValueError otherwise."""
    step, stride = d.get("step"), d.get("stride", 1)
    if not (_whole(step) and 0 <= step <= MAX_STEPS and _whole(stride) and 1 <= stride <= MAX_STEPS):
        raise ValueError(f"The checkpoint's step counter is out of range (whole numbers from 0 to {MAX_STEPS:,}).")
    history = d.get("history", [])
    if not isinstance(history, list) or not all(_record_ok(r, step) for r in history):
        raise ValueError("The checkpoint's loss history is damaged (expected records of numbers, none infinite, "
                         "at steps up to the step counter).")
    rng = d.get("rng")
    if rng is not None and not (isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.dim() == 1
                                and rng.numel() <= RNG_STATE_BYTES):
        raise ValueError("The checkpoint's random-number state is damaged.")


def cap_history(d: dict, cap: int) -> str | None:
    """Thin d's history evenly (every other record, as a trainer does) until at most `cap` are left;
    the sentence that says so, or None if it was short enough."""
    history = d.get("history", [])
    if len(history) <= cap:
        return None
    before = len(history)
    while len(history) > cap:
        history = history[1::2]
        d["stride"] = d.get("stride", 1) * 2
    d["history"] = history
    return (f"The checkpoint's history held {before:,} records, more than the {cap:,} this app keeps; "
            f"it was thinned evenly to {len(history):,}.")


# ----------------------------------------------------------------------------- helpers
def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _record_ok(r, step: int) -> bool:
    if not isinstance(r, dict) or not all(_number(r.get(k)) for k in RECORD_KEYS):
        return False
    # NaN by design where a value was not computed (the penalty of another loss, a step the fp16 loss
    # scaler skipped); infinite never.
    return _whole(r["step"]) and 0 <= r["step"] <= step and not any(math.isinf(r[k]) for k in RECORD_KEYS[1:])


def _check_weights(saved, expected: dict[str, torch.Tensor], key: str) -> None:
    if not isinstance(saved, dict) or set(saved) != set(expected):
        raise ValueError(f"The checkpoint's {key} weights do not fit its configuration (other layers than "
                         "the networks it describes).")
    for name, ref in expected.items():
        t = saved[name]
        if not isinstance(t, torch.Tensor) or t.shape != ref.shape:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"The checkpoint's {key} weights do not fit its configuration: {name} is {shape} "
                             f"in the file, {tuple(ref.shape)} in the networks it describes.")
        if not _finite(t):
            raise ValueError(f"The checkpoint's {key} weights hold NaN or infinite values ({name}); "
                             "a run cannot resume from them.")


def _check_optimizer(saved, shapes: list[torch.Size], key: str) -> None:
    state = saved.get("state") if isinstance(saved, dict) else None
    if not isinstance(state, dict) or not isinstance(saved.get("param_groups"), list):
        raise ValueError(f"The checkpoint's optimizer state ({key}) is damaged.")
    for index, per_param in state.items():
        if not (_whole(index) and 0 <= index < len(shapes) and isinstance(per_param, dict)):
            raise ValueError(f"The checkpoint's optimizer state ({key}) is damaged.")
        for name, value in per_param.items():
            if name == "step":
                v = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
                ok = _number(v) and 0 <= v <= MAX_STEPS
            else:
                ok = isinstance(value, torch.Tensor) and value.shape == shapes[index] and _finite(value)
            if not ok:
                raise ValueError(f"The checkpoint's optimizer state ({key}) does not fit its weights or "
                                 f"holds NaN, infinite or out-of-range values ({name}).")


def _finite(t: torch.Tensor) -> bool:
    """No NaN or infinity in t, allocating nothing the size of t (torch.isfinite on a whole tensor made
    temporaries twice its size: 11 MB for the largest image weight). A finite sum proves it at once,
    as NaN and inf carry through a sum; a sum that is not finite (or overflowed) is confirmed in chunks."""
    if t.is_complex():
        t = torch.view_as_real(t)
    if not t.is_floating_point() or math.isfinite(t.sum()):
        return True
    return all(bool(torch.isfinite(part).all()) for part in t.reshape(-1).split(65_536))
