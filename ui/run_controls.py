"""What the three training pages share: a visitor's run handle and the Start / Pause / Step / Reset row.

The run's own messages (its place in the queue, a divergence, a time limit) are the session's, and
each page's live view shows them; the row only adds what an action raised (bad settings, a device this
machine lacks), so no message appears twice.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import streamlit as st

from explorer.session import Session, running_count
from ui.budget import visitor_budget
from ui.live import PACE


def visitor_session(page: str, make: Callable[[], Session]) -> Session:
    """One run handle per visitor and page, made by make(); released when the visitor leaves. The
    runs it starts count against the visitor's budget (ui/budget.py)."""
    session = _session(page, make)
    session.budget = visitor_budget()
    return session


@st.cache_resource(scope="session", on_release=lambda s: s.close(), show_spinner=False)
def _session(page: str, _make: Callable[[], Session]) -> Session:
    return _make()


def run_buttons(session: Session, key: str, *, step_n: int, reset: Callable[[], Any],
                step_label: str | None = None, can_train: bool = True, pause_message: str = "") -> None:
    """The four buttons in a row, acting before the page redraws (so they show the new state)."""
    def act(action: Callable[[], Any]) -> None:
        try:
            action()
        except (ValueError, OSError, RuntimeError) as err:   # bad settings, a missing file or device
            st.session_state[key + "notice"] = str(err)

    live, paused = is_live(session), session.state == "paused"
    c1, c2, c3, c4 = st.columns(4)
    c1.button("Queued…" if session.state == "queued" else "Resume" if paused else "Start", type="primary",
              width="stretch", key=key + "start", disabled=live or not can_train, on_click=act, args=(session.start,))
    c2.button("Pause", width="stretch", key=key + "pause", disabled=not live, on_click=act,
              help="A queued run leaves the queue", args=(partial(session.pause, pause_message),))
    c3.button(step_label or f"Step +{step_n}", width="stretch", key=key + "step", help="Step by hand while paused",
              disabled=live or not can_train, on_click=act, args=(partial(session.step, step_n),))
    c4.button("Reset", width="stretch", key=key + "reset", on_click=act, args=(reset,))
    if key + "notice" in st.session_state:
        st.error(st.session_state.pop(key + "notice"))


def is_live(session: Session) -> bool:
    """Training or queued: the page's live views rerun on their own, to show steps or pick up the start."""
    return session.state in ("running", "queued")


def speed(session: Session) -> str:
    """' · 3 runs share this box; this one: 41 steps/s' while the run trains (and, when many views are live,
    how far apart their frames come), else nothing."""
    if session.state != "running":
        return ""
    n = running_count()
    share = "the only run on this box" if n <= 1 else f"{n} runs share this box"
    pace = PACE.note()
    return f" · {share}; this one: {session.steps_per_s:.0f} steps/s" + (f" · {pace}" if pace else "")


def shared_note(session: Session) -> str:
    """'Shared with 2 other visitors: ...' while others watch the same run, else nothing."""
    n = session.shared_with
    if not n:
        return ""
    who = "1 other visitor" if n == 1 else f"{n} other visitors"
    return (f"Shared with {who}: the same settings, so the same run, trained once for all of you. "
            "Change a setting, step or pause to get your own copy from this step.")
