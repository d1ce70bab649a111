"""A training page's link: the settings a run started with, its hot changes by step, the view toggles.

The address bar always holds the link to what the visitor sees. A run is its settings at step 0 and the
hot changes made while it trained, each at the step the worker applied it (explorer/hot_schedule.py),
so the link holds the settings as they were at step 0 (the sliders may have moved since) and the
changes in one parameter. Opening it plans those changes: the worker applies each at exactly its step,
the page's sliders follow, and the run trains the numbers the link's run trained, bit for bit on the
same kind of machine. A change the visitor makes ends the plan: from there on they steer.

What a link cannot carry (a checkpoint file, a visitor's points) it names, and the page says so.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import streamlit as st

from explorer import hot_schedule
from explorer.hot_schedule import Change

CHANGES = "changes"       # the parameter of the hot changes by step
FROM = "from"             # "checkpoint": the run resumed from a file the link cannot carry
POINTS = "points"         # the first 16 hex digits of the SHA-256 of the visitor's points file
DIGITS = 16


def plan_from(params: Mapping[str, str], parse_value: Callable[[str, str], Any],
              hot_fields: tuple) -> tuple[list[Change], str | None]:
    """The hot changes a link plans, and a sentence when it holds some that cannot be used."""
    text = params.get(CHANGES)
    if not text:
        return [], None
    if params.get(FROM) == "checkpoint":
        return [], ("This link comes from a run resumed from a checkpoint file, which a link cannot carry: the "
                    "same settings start here at step 0, without the changes it made while it trained.")

    def hot_value(name: str, raw: str):
        if name not in hot_fields:
            raise KeyError(name)
        return parse_value(name, raw)
    try:
        return hot_schedule.parse(text, hot_value), None
    except ValueError as err:
        return [], (f"Ignored the link's changes while training ({err}): the run starts with its settings and "
                    "follows no plan.")


def params_for(settings: Mapping[str, Any], defaults: Any, fmt: Callable[[Any], str], changes: list[Change],
               toggles: Mapping[str, bool], *, resumed: bool = False, points: str | None = None) -> dict[str, str]:
    """The link's parameters: settings unlike the defaults (hot ones as at step 0), the changes after
    step 0, the toggles that are on, and what the link cannot carry."""
    params = {k: fmt(v) for k, v in settings.items() if v != getattr(defaults, k)}
    later = [c for c in changes if c.step > 0]
    if later:
        params[CHANGES] = hot_schedule.to_text(later)
    params.update({name: "1" for name, on in toggles.items() if on})
    if resumed:
        params[FROM] = "checkpoint"
    if points:
        params[POINTS] = points[:DIGITS]
    return params


def toggles_from(params: Mapping[str, str], names: tuple) -> dict[str, bool]:
    return {name: params.get(name) == "1" for name in names}


def follow_plan(session: Any, prefix: str, hot_fields: tuple) -> None:
    """Set the page's hot sliders to what the plan's changes applied so far set (before the sliders are
    drawn), and note them as sent, so that following the plan sends nothing back to the worker."""
    plan, done = session.schedule, session.planned_done
    mark = (hot_schedule.to_text(plan), done)
    seen = st.session_state.get(prefix + "followed")
    if seen == mark:
        return
    start = seen[1] if seen is not None and seen[0] == mark[0] else 0
    st.session_state[prefix + "followed"] = mark
    if start >= done:
        return
    sent = dict(st.session_state.get(prefix + "hot") or {})
    for change in plan[start:done]:
        for name, value in change.hot.items():
            if name in hot_fields:
                st.session_state[prefix + name] = sent[name] = value
    st.session_state[prefix + "hot"] = sent


def plan_moved(session: Any, prefix: str) -> bool:
    """A planned change was applied since the page last set its sliders (the live view reruns the page)."""
    seen = st.session_state.get(prefix + "followed")
    return seen is not None and seen[1] != session.planned_done


def describe(changes: list[Change], label: Callable[[str], str], fmt: Callable[[Any], str]) -> str:
    """'λ 5 at step 120; critic iterations 3 and λ 2 at step 300'."""
    return "; ".join(" and ".join(f"{label(k)} {fmt(v)}" for k, v in c.hot.items()) + f" at step {c.step:,}"
                     for c in hot_schedule.merged(changes))
