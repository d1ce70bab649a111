"""A run's key: everything that determines a training run, as one short string.

Two runs with the same key train the very same numbers (every run is seeded by its settings alone),
so visitors who start the same key can watch one run (explorer/shared_runs.py). The key covers what
kind of run it is (the page, or the Compare page's mode), every field of its config dataclass, the
seed where the config does not hold one, the bytes of the data a visitor uploaded (or the points they
give) and the bytes of the checkpoint it resumed from. The data and the checkpoint enter as SHA-256
digests, so a key never carries a visitor's data, and one visitor's upload reaches another's run only
when the bytes are identical.

    >>> from explorer.toy_training import ToyConfig
    >>> run_key("toy", ToyConfig()) == run_key("toy", ToyConfig())
    True
    >>> run_key("toy", ToyConfig()) == run_key("toy", ToyConfig(seed=1))
    False
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Iterable

import numpy as np

from explorer.hot_schedule import Change, merged


def run_key(kind: str, config: Any, *, seed: int | None = None, data: Any = None,
            checkpoint: bytes | None = None, schedule: Iterable[Change] = ()) -> str:
    """'kind:' and the SHA-256 of a canonical JSON of the config's fields, seed, data and checkpoint digests.

    config: a dataclass instance (nested dataclasses, tuples and NumPy values are fine); data: bytes
    (an upload as it came) or a NumPy array (parsed points, decoded pictures), or None; schedule: the
    hot changes planned by step (explorer/hot_schedule.py), part of what the run is."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"A run key is made from a config dataclass instance; got {type(config).__name__}.")
    recipe = {"kind": kind, "config": {"type": type(config).__name__, **dataclasses.asdict(config)},
              "seed": seed, "data": digest(data), "checkpoint": digest(checkpoint)}
    planned = merged(schedule)
    if planned:   # (absent otherwise: a run without one keeps the key it always had)
        recipe["schedule"] = [[c.step, c.hot] for c in planned]
    return f"{kind}:{_sha(recipe)}"


def with_updates(key: str, hot: dict) -> str:
    """The key of a run built from `key` and then given hot settings before its first step.

    Only the last value of each setting counts (updates overwrite), so pass the settings merged."""
    kind = key.split(":", 1)[0]
    return f"{kind}:{_sha({'key': key, 'hot': hot})}"


def digest(data: Any) -> str | None:
    """SHA-256 of bytes, or of an array's dtype, shape and values; None for None."""
    if data is None:
        return None
    h = hashlib.sha256()
    if isinstance(data, np.ndarray):
        h.update(f"{data.dtype.str}{data.shape}".encode())
        h.update(np.ascontiguousarray(data).tobytes())
    elif isinstance(data, (bytes, bytearray, memoryview)):
        h.update(bytes(data))
    else:
        raise TypeError(f"Run data must be bytes or a NumPy array; got {type(data).__name__}.")
    return h.hexdigest()


def _sha(value: Any) -> str:
    # sort_keys: the same fields in any order give the same key; float repr is exact, so 0.1 and
    # 0.1000001 differ, and 1 (int) and 1.0 (float) do too (a conservative split: both are correct).
    text = json.dumps(value, sort_keys=True, default=_plain, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """What json cannot write by itself: NumPy values, arrays (as their digest), sets, bytes."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, bytes, bytearray)):
        return {"digest": digest(value)}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"A run key cannot hold a {type(value).__name__}.")
