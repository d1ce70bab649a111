"""A private copy of a trainer at its current step: what a visitor gets when they leave a shared run.

`fork_trainer(trainer)` is copy.deepcopy with one check. A deep copy copies the weights, the
optimizers' moments, the history and every torch.Generator it reaches (torch copies a generator with
its state), and keeps the sharing inside the trainer (one generator drawn by both samplers stays one
generator). What it cannot copy is a closure: `lambda n: source.sample(n, rng)` is copied as the
same function, still drawing from the original's generator, so the copy and the original would take
turns on one random stream and neither would continue as it would have alone. The factories hand
the Trainer bound methods and functools.partial objects instead (deepcopy copies what they hold),
and the check refuses any copy that still reaches one of the original's generators.

    >>> import torch
    >>> class T:
    ...     def __init__(self): self.rng = torch.Generator().manual_seed(0)
    >>> t = T(); f = fork_trainer(t)
    >>> f.rng is not t.rng and torch.equal(f.rng.get_state(), t.rng.get_state())
    True
"""
from __future__ import annotations

import copy
import functools
import types
from collections import deque
from typing import Any

import numpy as np
import torch


def fork_trainer(trainer: Any) -> Any:
    """A deep copy of `trainer` that shares no random generator with it; RuntimeError if it would."""
    twin = copy.deepcopy(trainer)
    shared = generators(trainer).keys() & generators(twin).keys()
    if shared:
        raise RuntimeError("this run cannot be copied faithfully: part of it (a closure) would keep drawing "
                           "from the original's random generator")
    return twin


def generators(obj: Any) -> dict[int, torch.Generator]:
    """Every torch.Generator reachable from obj through attributes, containers, bound methods,
    partials and closures, by id."""
    found: dict[int, torch.Generator] = {}
    seen: set[int] = set()
    stack = [obj]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, torch.Generator):
            found[id(x)] = x
        elif isinstance(x, (torch.Tensor, np.ndarray, str, bytes, int, float, type, types.ModuleType)):
            continue
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple, set, frozenset, deque)):
            stack.extend(x)
        elif isinstance(x, functools.partial):
            stack.extend((x.func, *x.args, *x.keywords.values()))
        elif isinstance(x, types.MethodType):
            stack.append(x.__self__)
        elif isinstance(x, types.FunctionType):
            stack.extend(_cell(c) for c in x.__closure__ or ())
        elif hasattr(x, "__dict__"):
            stack.extend(vars(x).values())
    return found


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:   # a cell not filled yet
        return None
