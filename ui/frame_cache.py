"""Pictures drawn once for every visitor who watches the same run.

Visitors of a shared run receive the very same snapshot objects (explorer/shared_runs.py), yet each
visitor's session drew its own PNG of each: ten students on a page's defaults cost the server ten
matplotlib drawings of every frame. bench/classroom.py found the server, one interpreter, holding a
whole core under 30 visitors while their pages waited. Here the latest pictures are kept for the
whole process, by snapshot and view (the page's toggles), so the second visitor's frame is a lookup.

A kept entry holds its snapshot, so the snapshot's id() cannot be given to another object while the
entry lives; the few newest entries are kept (a snapshot is drawn within a second of its arrival).

A replay's frames (ui/replay.py) are drawn inside `recorded()` and kept apart: every new visitor on a
page's defaults opens on the same recorded frame, but under a classroom's live runs the newest 32
live pictures are a few seconds' worth, so that frame was drawn again for nearly every visitor
(about 0.12 s of the server's interpreter for the 2-D page's landscape, py-spy and AppTest).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterator

KEEP = 32   # pictures kept: a few frames of each run being watched
KEEP_RECORDED = 24   # pictures of replays' frames kept: a few steps of each page's replay, a view or two each
WAIT_S = 5.0   # how long a session waits at most for another's drawing of the picture it needs

_LOCK = threading.Lock()
_KEPT: OrderedDict[tuple[int, Hashable], tuple[Any, Any]] = OrderedDict()   # -> (snapshot, picture)
_RECORDED: OrderedDict[tuple[int, Hashable], tuple[Any, Any]] = OrderedDict()   # the same, of replays' frames
_DRAWING: dict[tuple[int, Hashable], threading.Event] = {}   # pictures being drawn now -> set when done
_HERE = threading.local()   # .recorded: this thread (a session's script run) is drawing a replay's frame


@contextmanager
def recorded() -> Iterator[None]:
    """Pictures drawn inside are of a replay's frames: kept among those, apart from the live ones."""
    before = getattr(_HERE, "recorded", False)
    _HERE.recorded = True
    try:
        yield
    finally:
        _HERE.recorded = before


def drawn(snapshot: Any, view: Hashable, draw: Callable[[], Any]) -> Any:
    """draw()'s picture of `snapshot` in `view`: drawn once, then the kept one for every session.

    Sessions that ask for the same picture at once (the live views of a shared run draw on the same
    tick, ui/live.py) wait for the first one's drawing; should it fail, the next draws it itself."""
    key = (id(snapshot), view)
    store, size = (_RECORDED, KEEP_RECORDED) if getattr(_HERE, "recorded", False) else (_KEPT, KEEP)
    while True:
        with _LOCK:
            kept = store.get(key)
            if kept is not None and kept[0] is snapshot:
                store.move_to_end(key)
                return kept[1]
            being_drawn = _DRAWING.get(key)
            if being_drawn is None:
                being_drawn = _DRAWING[key] = threading.Event()
                break
        being_drawn.wait(WAIT_S)
    try:
        picture = draw()   # outside the lock: another session's different picture need not wait for it
        with _LOCK:
            store[key] = (snapshot, picture)
            store.move_to_end(key)
            while len(store) > size:
                store.popitem(last=False)
    finally:
        with _LOCK:
            del _DRAWING[key]
        being_drawn.set()
    return picture


def kept_count() -> int:
    """Live pictures kept now (tests)."""
    with _LOCK:
        return len(_KEPT)
