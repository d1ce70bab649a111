"""A training page's replay: its defaults' run, recorded once, on a step slider, and "Train live from here".

A visitor who opens a page on its defaults and has not started a run sees the finished run at once
(explorer/replays.py records it once, explorer/replay_files.py keeps it): a slider over its kept
frames, each drawn by the page's own drawing function with the numbers measured at its step, and a
button that forks a live run from the checkpoint at or before the chosen step. The first visitor
after a fresh install starts the recording (a job on the workers) and sees the live view meanwhile,
with a note of the recording's progress; Start trains live from step 0 as ever.
"""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from explorer.replay_files import replay_or_recording
from explorer.replays import Replay, ReplayRecipe, nearest_checkpoint
from explorer.timeline import frame_steps, moment_at
from ui import frame_cache

POLL_S = 1.0   # how often the recording's note looks at its progress


def untouched(session: Any) -> bool:
    """The visitor has not trained this session's run: not started, not stepped, not resumed."""
    latest = session.latest()
    return session.state == "idle" and (latest is None or latest.step == 0)


def replay_ready(recipe: ReplayRecipe) -> bool:
    """The recipe's replay is recorded, so replay_panel will show it (its recording starts if not begun).

    A page on its defaults then builds no step-0 trainer: the replay stands where the live view would
    show it, and a worker that trains a classroom's runs at the lowest priority answered a new visitor's
    "open" only once the box had a moment to spare (0.65-1.7 s of a 2-D page's load under
    bench/classroom.py, against 0.03-0.06 s idle); Start builds it, or joins the shared run."""
    return isinstance(replay_or_recording(recipe), Replay)


def replay_panel(recipe: ReplayRecipe, key: str, draw: Callable[[Any], Any],
                 fork: Callable[[int, bytes], Any]) -> bool:
    """The recipe's replay on a step slider, with "Train live from here"; True if it is shown. False
    while it is being recorded (a note says how far it has got; the page draws its live view) or if
    recording failed (a warning says why).

    key: the page's session_state prefix (key + "rp_step": the chosen step). draw(frame) draws a kept
    frame as the page draws its snapshots and returns the column beside the picture (or None).
    fork(step, checkpoint bytes) starts a live run from that checkpoint; what it raises is shown as
    the run buttons show their errors (key + "notice")."""
    found = replay_or_recording(recipe)
    if not isinstance(found, Replay):
        _recording_note(found, recipe)
        return False
    steps = frame_steps(found.frames)
    if st.session_state.get(key + "rp_step") not in steps:
        st.session_state[key + "rp_step"] = steps[-1]   # the finished run first: what training reaches
    st.markdown(f"**A replay of these settings**, trained once on this box to step {found.steps:,} (in "
                f"{found.seconds:.0f} s on one worker) and kept for every visitor. Scrub through it; **Start** "
                "trains them live from step 0, **Train live from here** from the chosen step.")
    step = st.select_slider("Step of the recorded run", steps, key=key + "rp_step", format_func=lambda s: f"{s:,}")
    moment = moment_at(found.frames, found.log, step)
    with frame_cache.recorded():   # the same frame for every new visitor: kept apart from live pictures
        beside = draw(moment.frame) or st
    at, data = nearest_checkpoint(found, step)
    beside.button("Train live from here", key=key + "rp_fork", type="primary", on_click=_fork,
                  args=(fork, at, data, key), help="A live run of your own, or shared with those who fork the "
                  "same step: it goes on exactly as the recorded run did from there.")
    where = f"step {at:,}" if at == step else f"step {at:,}, the nearest checkpoint at or before step {step:,}"
    beside.caption(f"Recorded frame at step {moment.frame.step:,}. A live run from here starts at {where}.")
    return True


def _recording_note(job: Any, recipe: ReplayRecipe) -> None:
    failed = job.future.done() and job.future.exception()
    if failed:
        st.warning(f"The replay of these settings could not be recorded ({failed}); press Start to train "
                   "them live.")
        return

    @st.fragment(run_every=POLL_S)
    def note() -> None:
        if job.future.done():   # recorded: the page shows it
            st.rerun(scope="app")
        st.info(f"Recording a replay of these settings on a worker, once for every visitor: step "
                f"{job.latest or 0:,} of {recipe.steps:,}. It shows here when done; Start trains them live now.")

    note()


def _fork(fork: Callable[[int, bytes], Any], step: int, data: bytes, key: str) -> None:
    try:
        fork(step, data)
    except (ValueError, OSError, RuntimeError) as err:   # a budget, a device, a worker gone
        st.session_state[key + "notice"] = str(err)
        return
    st.toast(f"Training live from the recorded run's checkpoint at step {step:,}.")
