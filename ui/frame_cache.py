"""Pictures drawn once for every visitor who watches the same run.

Visitors of a shared run receive the very same snapshot objects (explorer/shared_runs.py), yet each
visitor's session drew its own PNG of each: ten students on a page's defaults cost the server ten
matplotlib drawings of every frame. bench/classroom.py found the server, one interpreter, holding a
whole core under 30 visitors while their pages waited. Here the latest pictures are kept for the
whole process, by snapshot and view (the page's toggles), so the second visitor's frame is a lookup.

A kept entry holds its snapshot, so the snapshot's id() cannot be given to another object while the
entry lives; the few newest entries are kept (a snapshot is drawn within a second of its arrival).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

KEEP = 32   # pictures kept: a few frames of each run being watched

_LOCK = threading.Lock()
_KEPT: OrderedDict[tuple[int, Hashable], tuple[Any, Any]] = OrderedDict()   # -> (snapshot, picture)


def drawn(snapshot: Any, view: Hashable, draw: Callable[[], Any]) -> Any:
    """draw()'s picture of `snapshot` in `view`: drawn once, then the kept one for every session."""
    key = (id(snapshot), view)
    with _LOCK:
        kept = _KEPT.get(key)
        if kept is not None and kept[0] is snapshot:
            _KEPT.move_to_end(key)
            return kept[1]
    picture = draw()   # outside the lock: another session's different picture need not wait for it
    with _LOCK:
        _KEPT[key] = (snapshot, picture)
        _KEPT.move_to_end(key)
        while len(_KEPT) > KEEP:
            _KEPT.popitem(last=False)
    return picture


def kept_count() -> int:
    """Pictures kept now (tests)."""
    with _LOCK:
        return len(_KEPT)
