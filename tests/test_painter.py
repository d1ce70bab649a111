"""The painter process: the same pixels as drawing in the server, errors where they belong, a lost
painter replaced, the server's own drawing as the fallback, nothing left running."""
import os
import signal
import time
from collections import OrderedDict

import pytest

from explorer import painter as painter_module
from explorer import plots
from explorer.painter import Painter
from test_plots import synthetic_snapshot


@pytest.fixture
def painter():
    p = Painter(nice=0)
    yield p
    p.shutdown()


def gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()


def picture_or_nap(snapshot, server_pid: int, nap_s: float, reuse=None):
    """A picture; in any process but the server's, first a nap (a painter that hangs)."""
    if os.getpid() != server_pid:
        time.sleep(nap_s)
    return plots.field_png(snapshot, reuse=reuse)


def die_in_painter(snapshot, server_pid: int, reuse=None):
    """A picture in the server; in any other process, sudden death (a painter that crashes)."""
    if os.getpid() != server_pid:
        os._exit(3)
    return plots.field_png(snapshot, reuse=reuse)


def test_the_painter_draws_what_the_server_would_frame_after_frame(painter):
    first, second = synthetic_snapshot(step=1, seed=0), synthetic_snapshot(step=2, seed=1)
    here, fig = plots.field_png(first, arrows=True)
    assert painter.paint(plots.field_png, first, lane="run", arrows=True) == here
    assert painter.pid is not None and painter.pid != os.getpid() and painter.drawn_here == 0
    # The second frame is drawn on the lane's kept figure, in place: still the pixels of a fresh one.
    assert painter.paint(plots.field_png, second, lane="run", arrows=True) == plots.field_png(second, arrows=True)[0]
    assert painter.paint(plots.field_png, second, lane="run", arrows=True) == plots.field_png(second, reuse=fig,
                                                                                                 arrows=True)[0]


def test_panels_come_back_one_png_each_on_their_colour_scale(painter):
    panels = plots.scaled_panels([synthetic_snapshot(seed=0), synthetic_snapshot(seed=1)], "raw, shared")
    pictures = painter.paint(plots.panels_png, panels, ["a", "b"], lane="compare", legend=False, size=2.6, dpi=80)
    assert pictures == plots.panels_png(panels, ["a", "b"], legend=False, size=2.6, dpi=80)[0]
    assert len(pictures) == 2 and pictures[0] != pictures[1]


def test_a_drawing_error_reaches_the_caller_and_the_painter_stays(painter):
    snap = synthetic_snapshot()
    painter.paint(plots.field_png, snap)
    pid = painter.pid
    with pytest.raises(AttributeError):   # a snapshot without the gradient field the map needs
        painter.paint(plots.field_png, object(), grad_map=True)
    assert painter.pid == pid and painter.failures == 0
    assert painter.paint(plots.field_png, snap) == plots.field_png(snap)[0]


def test_a_killed_painter_is_replaced_at_the_next_picture(painter):
    snap = synthetic_snapshot()
    painter.paint(plots.field_png, snap)
    first = painter.pid
    os.kill(first, signal.SIGKILL)
    # The picture that finds it dying may be drawn here (its socket closed before it can be reaped);
    # the next is a new painter's.
    for _ in range(2):
        assert painter.paint(plots.field_png, snap) == plots.field_png(snap)[0]
    assert painter.pid not in (None, first) and painter.failures == 0 and painter.drawn_here <= 1


def test_a_painter_that_dies_while_drawing_costs_that_picture_nothing(painter):
    snap = synthetic_snapshot()
    painter.paint(plots.field_png, snap)
    first = painter.pid
    # It dies with the picture asked for: that one is drawn here, the next by a new painter.
    assert painter.paint(die_in_painter, snap, os.getpid()) == plots.field_png(snap)[0]
    assert painter.drawn_here == 1 and painter.failures == 1 and gone(first)
    assert painter.paint(plots.field_png, snap) == plots.field_png(snap)[0]
    assert painter.pid not in (None, first) and painter.failures == 0


def test_a_painter_that_hangs_is_ended_and_the_picture_drawn_here(painter, monkeypatch):
    snap = synthetic_snapshot()
    painter.paint(plots.field_png, snap)   # up and answering: the nap below is the only wait
    monkeypatch.setattr(painter_module, "PAINT_TIMEOUT_S", 1.0)
    hung = painter.pid
    picture = painter.paint(picture_or_nap, snap, os.getpid(), 30.0)
    assert picture == plots.field_png(snap)[0] and painter.drawn_here == 1
    assert painter.pid is None and gone(hung)


def test_without_a_painter_pictures_are_drawn_here(monkeypatch):
    snap = synthetic_snapshot()
    monkeypatch.setenv("EXPLORER_PAINTER", "0")
    off = Painter()
    assert off.paint(plots.field_png, snap) == plots.field_png(snap)[0]
    assert off.pid is None and off.drawn_here == 1
    off.shutdown()
    broken = Painter(nice=0, enabled=True)
    monkeypatch.setattr(painter_module.sys, "executable", "/nonexistent/python")
    for _ in range(painter_module.MAX_FAILURES + 2):
        assert broken.paint(plots.field_png, snap) == plots.field_png(snap)[0]
    # Three failed starts in a row, then no more tries: every picture drawn here.
    assert broken.failures == painter_module.MAX_FAILURES and broken.drawn_here == painter_module.MAX_FAILURES + 2
    broken.shutdown()


def test_lanes_keep_a_bounded_number_of_figures():
    kept = OrderedDict()
    snap = synthetic_snapshot()
    for lane in range(painter_module.KEEP_LANES + 5):
        painter_module.draw(kept, plots.field_png, (snap,), {}, lane)
    assert list(kept) == list(range(5, painter_module.KEEP_LANES + 5))
    painter_module.draw(kept, plots.field_png, (snap,), {}, None)   # no lane: nothing kept
    assert len(kept) == painter_module.KEEP_LANES


def test_shutdown_leaves_no_painter_running(painter):
    painter.paint(plots.field_png, synthetic_snapshot())
    pid = painter.pid
    painter.shutdown()
    assert painter.pid is None and gone(pid)
