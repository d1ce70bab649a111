"""The training pages' timeline: a step slider over a run's kept frames, and the way back to live.

A page draws the timeline outside its live fragment, so only runs of the whole page draw it (moving
the slider is one, as any widget's change): the live loop draws nothing more per frame, and the run
trains on while a visitor looks back. Which frame and which numbers go with a step is
explorer/timeline.py's choice; the page draws the frame with its own drawing function.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from explorer.timeline import Moment, frame_steps, moment_at


def look_back(session: Any, key: str, label: str, help: str) -> Moment | None:
    """The "Look back" toggle and, while it is on, the slider over the session's kept frames and a
    "Back to live" button that switches it off: the moment at the chosen step, or None (off, or, said
    in a sentence, fewer than two frames kept).

    key: the page's session_state prefix (key + "look_back": the toggle, key + "tl_step": the chosen
    step). The newest kept frame is chosen first; a step whose frame was thinned away as the run went
    on becomes the kept frame at or before it."""
    if not st.toggle(label, key=key + "look_back", help=help):
        return None
    frames, log = session.frames(), session.metrics_log()
    steps = frame_steps(frames)
    pick, back = st.columns([5, 1], vertical_alignment="bottom")
    back.button("Back to live", key=key + "tl_back", on_click=_switch_off, args=(key + "look_back",),
                width="stretch")
    if len(steps) < 2:
        kept = "one frame is" if steps else "no frame is"
        pick.info(f"Nothing to scrub yet: {kept} kept so far. Train or step the run: it keeps frames as it goes, "
                  "evenly spread over its steps.")
        return None
    chosen = st.session_state.get(key + "tl_step")
    if chosen not in steps:
        st.session_state[key + "tl_step"] = steps[-1] if chosen is None else moment_at(frames, log, chosen).frame.step
    step = pick.select_slider("Step (of the frames kept so far)", steps, key=key + "tl_step",
                              format_func=lambda s: f"{s:,}")
    return moment_at(frames, log, step)


def now_note(session: Any) -> str:
    """Where the run stands while a visitor looks back, and how many frames it has kept."""
    latest, kept = session.latest(), len(session.frames())
    now = f"The run is at step {latest.step:,} now" if latest is not None else "The run has no step yet"
    return (f"{now} ({session.state}; the live view above goes on). {kept} frames kept, evenly spread over the "
            "run; the slider offers the new ones when the page redraws.")


def _switch_off(toggle_key: str) -> None:
    st.session_state[toggle_key] = False
