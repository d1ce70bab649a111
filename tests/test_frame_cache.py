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
