"""A run's hot changes by step: what a link carries so that opening it trains the run that was seen.

A visitor may change λ, c, critic iterations or a learning rate while a run trains; the worker applies
each change between two steps and says at which step (explorer/worker.py). A run is then determined by
its settings at step 0 and its changes, each a `Change(step, hot)`: `hot` applied after `step`
generator steps, before the next. Replayed with the same changes at the same steps on the same kind of
machine, a run trains the same numbers bit for bit (training never draws from a clock; snapshots draw
from private generators), however its chunks fall and whenever its pictures are taken.

In a link the changes are one text, steps in order, fields as the page names them:

    >>> text = to_text([Change(120, {"lam": 5.0}), Change(120, {"n_critic": 3}), Change(300, {"lr_g": 0.0005})])
    >>> text
    '120:lam=5,n_critic=3;300:lr_g=0.0005'
    >>> parse(text, lambda name, raw: float(raw) if name != "n_critic" else int(raw))
    [Change(step=120, hot={'lam': 5.0, 'n_critic': 3}), Change(step=300, hot={'lr_g': 0.0005})]
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple

MAX_CHANGES = 100   # changes a link may carry (a URL of about 3 KB); a run keeps at most this many


class Change(NamedTuple):
    step: int              # generator steps done when the change took effect
    hot: dict[str, Any]    # field -> value, as Trainer.update takes them


def merged(changes: Iterable[Change]) -> list[Change]:
    """Changes in step order, those at one step made one (a later value of a field wins)."""
    out: list[Change] = []
    for change in sorted(changes, key=lambda c: c.step):   # stable: changes at one step keep their order
        if out and out[-1].step == change.step:
            out[-1] = Change(change.step, {**out[-1].hot, **change.hot})
        else:
            out.append(Change(int(change.step), dict(change.hot)))
    return out


def to_text(changes: Iterable[Change]) -> str:
    """'step:field=value,...;step:...' (empty for no changes); floats as short as reads back equal."""
    return ";".join(f"{c.step}:" + ",".join(f"{name}={_value_text(v)}" for name, v in c.hot.items())
                    for c in merged(changes))


def parse(text: str, parse_value: Callable[[str, str], Any]) -> list[Change]:
    """The changes a link's text holds; ValueError, saying what is wrong, for anything else.

    parse_value(field, raw) -> the value, or ValueError (or KeyError for a field that cannot change)."""
    changes, last = [], 0
    for part in filter(None, text.split(";")):
        step_text, sep, fields = part.partition(":")
        if not sep or not step_text.isdigit() or not fields:
            raise ValueError(f"{part!r} is not 'step:field=value'")
        step = int(step_text)
        if step <= last:
            raise ValueError(f"the steps must rise from 1 (step {step} after {last})")
        hot = {}
        for item in fields.split(","):
            name, eq, raw = item.partition("=")
            try:
                if not eq:
                    raise ValueError(item)
                hot[name] = parse_value(name, raw)
            except (KeyError, ValueError, OverflowError):
                raise ValueError(f"{item!r} at step {step} is not a setting that can change, at a value offered")
        changes.append(Change(step, hot))
        last = step
    if len(changes) > MAX_CHANGES:
        raise ValueError(f"{len(changes)} changes: a link carries at most {MAX_CHANGES}")
    return changes


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)
