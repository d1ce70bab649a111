"""How often a training page's live view redraws while its run trains, and why.

Every rerun of a live fragment costs the visitor's browser far more than the server: Streamlit
re-renders the page's elements, and a Vega chart that gets new data is embedded again. On a laptop
(or this project's 2-core box) that browser time is taken from the worker that trains, so the
refresh rates below are set by what a visitor sees in a real browser (bench/app_overhead.py), not
by what the server could send. Measured on the 2-core AMD EPYC box, Start on each page's defaults,
the old rates (0.3 s frames, 3 s curves) against these:

    page       browser CPU (cores)   worker's share of a core   new pictures/s
    2-D GAN    0.43 -> 0.31          0.87 -> 0.92               2.5 -> 2.5
    Image GAN  0.51 -> 0.31          0.78 -> 0.91               1.8 -> 2.1
    Compare    -> 0.27               -> 0.94                    -> 2.3

The picture rate does not drop: a worker sends a snapshot about every 0.35-0.4 s (its snapshot
pause plus the chunk it is in), so a 0.3 s refresh redrew the same snapshot one time in four.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

FRAME_S = 0.4        # the live picture and its numbers: a new snapshot nearly every time
FRAME_WAIT_S = 0.25  # a redraw waits at most this long for a snapshot it has not drawn yet
CHART_S = 10.0       # the curves: each redraw embeds every chart again in the browser


def next_snapshot(session: Any, key: str) -> Any:
    """The snapshot a live view draws now: while the run trains, the first one it has not drawn yet
    (waiting up to FRAME_WAIT_S for it; the wait holds no CPU), so that every redraw the browser pays
    for brings a new picture. key: the session_state entry that remembers the last one drawn."""
    snap = session.latest(newer_than=st.session_state.get(key), wait_s=FRAME_WAIT_S)
    st.session_state[key] = snap
    return snap


def curves_note(live: bool) -> str | None:
    """A caption for the curves while a run trains (they lag the picture by up to CHART_S)."""
    if not live:
        return None
    return (f"While the run trains, the curves are redrawn every {CHART_S:.0f} s (each redraw costs the "
            "browser time that training could use); Pause brings them up to date.")
