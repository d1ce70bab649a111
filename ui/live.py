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

The picture rate did not drop: a worker sent a snapshot about every 0.35-0.4 s (its snapshot
pause plus the chunk it is in), so a 0.3 s refresh redrew the same snapshot one time in four. Now
the worker takes a snapshot when a view has read the last one (explorer/worker.py), so each frame
drawn here asks for the next, and the worker makes no snapshot nobody draws.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any, Hashable, Iterator

import streamlit as st

from explorer.limits import env_number

FRAME_S = 0.4        # the live picture and its numbers: a new snapshot nearly every time
# Live frames this server draws and sends a second, all its visitors together. Each frame costs the
# server's one interpreter a picture (once per snapshot, ui/frame_cache.py) and a message per visitor;
# bench/classroom.py found 30 visitors at 2.5 frames a second each holding a whole core, while every
# other page waited. Up to FRAMES_PER_S * FRAME_S live views get a frame every FRAME_S; beyond, every
# view's frames come further apart, the same for all, and the page says so.
FRAMES_PER_S = env_number("EXPLORER_FRAMES_PER_S", 12.0)
FRAME_WAIT_S = 0.25  # a redraw waits at most this long for a snapshot it has not drawn yet
CHART_S = 10.0       # the curves: each redraw embeds every chart again in the browser
# While a run trains, one run of a live fragment draws frame after frame into the same elements for
# up to this long (0: one frame a run, as when nothing trains).
LOOP_S = env_number("EXPLORER_LIVE_LOOP_S", 10.0)


def next_snapshot(session: Any, key: str) -> Any:
    """The snapshot a live view draws now: while the run trains, the first one it has not drawn yet
    (waiting up to FRAME_WAIT_S for it; the wait holds no CPU), so that every redraw the browser pays
    for brings a new picture. key: the session_state entry that remembers the last one drawn."""
    snap = session.latest(newer_than=st.session_state.get(key), wait_s=FRAME_WAIT_S)
    st.session_state[key] = snap
    return snap


class Pace:
    """The live views of this server and the spacing of their frames: FRAME_S, or wider when more views
    than FRAMES_PER_S * FRAME_S are live. Frames fall on ticks of one clock, so the visitors of a shared
    run draw the same snapshot at the same moment: one picture for all of them."""

    def __init__(self, frames_per_s: float = FRAMES_PER_S) -> None:
        self.frames_per_s = frames_per_s
        self._lock = threading.Lock()
        self._views: dict[Hashable, tuple[float, float]] = {}   # view -> (its last frame, its spacing then)

    def spacing(self, now: float | None = None, joining: Hashable = None) -> float:
        """Seconds between two frames of a live view now (with `joining` counted among the live ones)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            # A view is live while its next frame is due: within twice its spacing of its last one.
            for view, (last, every) in list(self._views.items()):
                if now - last > 2 * every + 1.0:
                    del self._views[view]
            live = len(self._views) + (joining is not None and joining not in self._views)
            return max(FRAME_S, live / self.frames_per_s)

    def next_tick(self, view: Hashable, now: float | None = None) -> float:
        """When `view` draws its next frame: the next tick of the clock at least half a spacing away."""
        now = time.monotonic() if now is None else now
        every = self.spacing(now, joining=view)
        tick = math.ceil(now / every) * every
        if tick - now < every / 2:
            tick += every
        with self._lock:
            self._views[view] = (tick, every)
        return tick

    def note(self, now: float | None = None) -> str:
        """A sentence while frames are spaced wider than FRAME_S, else nothing."""
        every = self.spacing(now)
        if every <= FRAME_S:
            return ""
        with self._lock:
            n = len(self._views)
        return (f"{n} live views on this server share its drawing: a new picture every {every:.1f} s each, so "
                "that every page stays quick")


PACE = Pace()


def curves_note(live: bool) -> str | None:
    """A caption for the curves while a run trains (they lag the picture by up to CHART_S)."""
    if not live:
        return None
    return (f"While the run trains, the curves are redrawn every {CHART_S:.0f} s (each redraw costs the "
            "browser time that training could use); Pause brings them up to date.")


_PAGE_RUN = "_live_page_run"   # session_state: (which full run of the page this is, when it began)
SETTLE_S = 2.0   # after a run of the whole page, live views draw one frame a run for this long


def page_run() -> None:
    """Say that the page script runs from the top (call it outside fragments, before the live views)."""
    count = st.session_state.get(_PAGE_RUN, (0, 0.0))[0]
    st.session_state[_PAGE_RUN] = (count + 1, time.monotonic())


def live_frames(session: Any, key: str, live: bool) -> Iterator[Any]:
    """The snapshots one run of a live fragment draws: the next one, then, while the run trains, a
    new one every FRAME_S for up to LOOP_S seconds, each drawn over the last in the same elements.

    Why a loop and not a rerun per frame: each rerun of a fragment, however small, costs the browser
    a re-render of far more than the fragment, where an element updated inside a running script is
    redrawn alone. Measured in chromium on the 2-core box, Start on each page's defaults: the
    browser's CPU went from 0.40 to 0.17 cores (Image GAN) and from 0.4 to 0.2 (2-D GAN, Compare),
    and the worker's share of a core from ~0.86 to ~0.95. A click anywhere on the page still ends
    the loop at once (Streamlit stops a running fragment for a full rerun at its next element), and
    the fragment's timer starts the next loop when this one ends.

    With many live views on the server the frames come further apart (PACE), the same for every view.

    In a run of the whole page (after page_run(): a click, a slider) the fragment draws one frame, so
    that the page's run ends with everything below it drawn; for SETTLE_S after it, the fragment's
    own runs draw one frame each too (the page is idle between them, as anything that waits for the
    page to settle after a change expects), and then the loops begin.
    """
    count, began = st.session_state.get(_PAGE_RUN, (None, -float("inf")))
    whole_page = st.session_state.get(key + "_page_run") != count
    st.session_state[key + "_page_run"] = count
    snap = next_snapshot(session, key)
    yield snap
    if not live or snap is None or whole_page or time.monotonic() - began < SETTLE_S:
        return
    drawn_state, view = session.state, (id(session), key)
    end = time.monotonic() + LOOP_S
    while True:   # a frame on each tick of PACE, after waiting up to FRAME_WAIT_S for a new snapshot
        wake = PACE.next_tick(view)
        if wake >= end:
            return
        time.sleep(max(0.0, wake - time.monotonic()))
        if session.state != drawn_state:   # stopped by itself, or by the idle rules: redraw the buttons
            st.rerun(scope="app")
        yield next_snapshot(session, key)
