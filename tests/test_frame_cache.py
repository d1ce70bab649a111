"""ui/frame_cache.py: a snapshot's picture is drawn once for every session that shows it."""
from ui import frame_cache


class Snapshot:
    """Stands for a run's snapshot: what matters here is its identity."""


def counting():
    calls = []

    def draw():
        calls.append(1)
        return f"png {len(calls)}"
    return draw, calls


def test_two_sessions_showing_one_snapshot_draw_it_once():
    snap, (draw, calls) = Snapshot(), counting()
    first = frame_cache.drawn(snap, ("gan_2d", False), draw)
    second = frame_cache.drawn(snap, ("gan_2d", False), draw)   # another visitor of the same shared run
    assert first == second == "png 1" and len(calls) == 1


def test_another_view_or_another_snapshot_is_drawn_again():
    snap, (draw, calls) = Snapshot(), counting()
    frame_cache.drawn(snap, ("gan_2d", False), draw)
    frame_cache.drawn(snap, ("gan_2d", True), draw)             # arrows on: another picture
    frame_cache.drawn(Snapshot(), ("gan_2d", False), draw)      # the next snapshot
    assert len(calls) == 3


def test_only_the_newest_pictures_are_kept_and_each_holds_its_snapshot():
    draw, calls = counting()
    oldest = Snapshot()
    frame_cache.drawn(oldest, "view", draw)
    for _ in range(frame_cache.KEEP):
        frame_cache.drawn(Snapshot(), "view", draw)   # dropped at once by the caller: the cache holds it
    assert frame_cache.kept_count() == frame_cache.KEEP
    frame_cache.drawn(oldest, "view", draw)           # evicted: drawn again, never another's picture
    assert len(calls) == frame_cache.KEEP + 2


def test_sessions_asking_at_once_wait_for_one_drawing():
    import threading
    import time
    snap, calls, pictures = Snapshot(), [], []

    def slow_draw():
        calls.append(1)
        time.sleep(0.2)
        return "png"
    threads = [threading.Thread(target=lambda: pictures.append(frame_cache.drawn(snap, "v", slow_draw)))
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pictures == ["png"] * 5 and len(calls) == 1


def test_when_the_first_drawing_fails_the_next_session_draws_it():
    import threading
    import time

    import pytest
    snap, started = Snapshot(), threading.Event()

    def failing():
        started.set()
        time.sleep(0.1)
        raise ValueError("no picture")
    second = []
    t = threading.Thread(target=lambda: (started.wait(), second.append(frame_cache.drawn(snap, "v", lambda: "png"))))
    t.start()
    with pytest.raises(ValueError):
        frame_cache.drawn(snap, "v", failing)
    t.join()
    assert second == ["png"]


def test_a_replays_frame_stays_kept_while_live_pictures_come_and_go():
    """Every new visitor on a page's defaults opens on the same recorded frame: many live pictures
    drawn since (a classroom's runs) do not push it out."""
    draw, calls = counting()
    frame = Snapshot()
    with frame_cache.recorded():
        frame_cache.drawn(frame, "view", draw)
    for _ in range(frame_cache.KEEP + 5):
        frame_cache.drawn(Snapshot(), "view", draw)
    with frame_cache.recorded():
        assert frame_cache.drawn(frame, "view", draw) == "png 1"
    assert len(calls) == frame_cache.KEEP + 6
    frame_cache.drawn(frame, "view", draw)   # outside a replay it is a live picture: kept apart, drawn anew
    assert len(calls) == frame_cache.KEEP + 7
