"""ui/live.py: one run of a live fragment draws frame after frame while its run trains, then ends."""
from streamlit.testing.v1 import AppTest


def live_page(loop_s: float, state: str, snapshots: int, whole_page: bool = False,
              page_ran_s_ago: float | None = None) -> None:
    """A page whose fragment draws live_frames of a stand-in session (steps 1, 2, ... as snapshots)."""
    import threading
    import time

    import streamlit as st

    from ui import live

    class Stand_in:   # what live_frames reads of a Session: latest(newer_than=, wait_s=) and state
        def __init__(self):
            self.state, self.asked = state, 0
            self.start = time.monotonic()

        def latest(self, newer_than=None, wait_s=0.0):
            self.asked += 1
            step = min(self.asked, snapshots)
            if newer_than == step:   # nothing new: wait as a Session does (no CPU)
                threading.Event().wait(wait_s)
            return step

    live.LOOP_S = loop_s
    if whole_page:
        live.page_run()
    if page_ran_s_ago is not None:   # a run of the fragment alone, that long after one of the whole page
        live.page_run()
        count, began = st.session_state[live._PAGE_RUN]
        st.session_state[live._PAGE_RUN] = (count, began - page_ran_s_ago)
        st.session_state["shown_page_run"] = count
    session = Stand_in()
    box, drawn = st.empty(), []
    started = time.monotonic()
    for snap in live.live_frames(session, "shown", live=state == "running"):
        drawn.append(snap)
        box.write(f"step {snap}")
    st.session_state["drawn"], st.session_state["took"] = drawn, time.monotonic() - started


def run(loop_s: float, state: str = "running", snapshots: int = 100, whole_page: bool = False,
        page_ran_s_ago: float | None = None) -> AppTest:
    at = AppTest.from_function(live_page, args=(loop_s, state, snapshots, whole_page, page_ran_s_ago),
                               default_timeout=30)
    at.run()
    assert not at.exception
    return at


def test_while_training_one_run_draws_a_new_frame_about_every_frame_s_for_loop_s():
    at = run(loop_s=2.0)
    drawn, took = at.session_state["drawn"], at.session_state["took"]
    # FRAME_S = 0.4: five frames in 2 s, each a snapshot it had not drawn; the run then ends by itself
    assert 4 <= len(drawn) <= 6 and drawn == list(range(1, len(drawn) + 1))
    assert 1.6 <= took <= 3.0
    assert at.markdown[-1].value == f"step {drawn[-1]}"   # drawn over the same element


def test_a_frame_without_news_waits_for_one_and_draws_what_it_has():
    at = run(loop_s=2.0, snapshots=2)
    drawn = at.session_state["drawn"]
    assert drawn[:2] == [1, 2] and set(drawn[2:]) == {2}


def test_nothing_training_draws_one_frame():
    at = run(loop_s=5.0, state="paused")
    assert at.session_state["drawn"] == [1] and at.session_state["took"] < 1.0


def test_a_loop_of_zero_draws_one_frame_a_run():
    at = run(loop_s=0.0)
    assert at.session_state["drawn"] == [1] and at.session_state["took"] < 1.0


def test_in_a_run_of_the_whole_page_it_draws_one_frame_and_lets_the_page_finish():
    at = run(loop_s=5.0, whole_page=True)
    assert at.session_state["drawn"] == [1] and at.session_state["took"] < 1.0


def test_just_after_a_run_of_the_whole_page_its_own_runs_draw_one_frame_then_loop():
    assert run(loop_s=2.0, page_ran_s_ago=0.5).session_state["drawn"] == [1]
    assert len(run(loop_s=2.0, page_ran_s_ago=5.0).session_state["drawn"]) >= 4


def test_a_few_live_views_get_a_frame_every_frame_s_many_get_them_further_apart():
    from ui.live import FRAME_S, Pace
    pace = Pace(frames_per_s=10.0)
    for i in range(4):                                   # 4 views: 4 / 10 = FRAME_S apart
        pace.next_tick(("view", i), now=100.0)
    assert pace.spacing(now=100.0) == FRAME_S and pace.note(now=100.0) == ""
    for i in range(4, 30):                               # 30 views: 3 s apart, and said so
        pace.next_tick(("view", i), now=100.0)
    assert pace.spacing(now=100.0) == 3.0
    assert "30 live views" in pace.note(now=100.0) and "every 3.0 s" in pace.note(now=100.0)
    assert pace.spacing(now=200.0) == FRAME_S            # views that stopped drawing are forgotten


def test_live_views_draw_on_the_same_ticks_at_least_half_a_spacing_apart():
    from ui.live import Pace
    pace = Pace(frames_per_s=1.0)
    a = pace.next_tick("a", now=10.1)                     # 1 view: FRAME_S
    b = pace.next_tick("b", now=10.15)                    # 2 views: 2 s apart, on the clock's even seconds
    assert b == 12.0 and pace.next_tick("a", now=a) == 12.0   # both draw at 12: one picture for both
    assert pace.next_tick("b", now=11.5) == 14.0          # 12 is less than half a spacing away
