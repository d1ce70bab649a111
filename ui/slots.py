"""The elements of a live view that keep their place from frame to frame, each sent again only when it changes.

Within one loop of a live fragment (ui/live.py) frame after frame is drawn in the same place. Drawn
as one container, every frame replaces every element in it, and the browser lays out and paints
each again: the metrics and captions that did not change as much as the picture that did. A slot is
one placeholder (st.empty) made the first time it is named and filled again only when what it
shows differs from what it showed. Measured in chromium on the 2-core box, Start on the Image GAN
page's defaults: the browser went from 15-18% of the machine's CPU to 10% once only changed
elements were sent (bench/app_overhead.py).

Every frame names the same slots in the same order (an absent element is a slot shown empty), so
the first frame lays out the view and the later ones only fill it.
"""
from __future__ import annotations

from typing import Any, Sequence


class Slots:
    """Placeholders by name, and what each one shows. One Slots per run of a fragment: the elements of
    a run that ended are gone, and a new run lays out the view again."""

    def __init__(self) -> None:
        self._places: dict[str, Any] = {}
        self._shown: dict[str, tuple] = {}
        self._columns: dict[str, Sequence[Any]] = {}

    def show(self, name: str, where: Any, method: str, *args: Any, **kwargs: Any) -> None:
        """Show `where.<method>(*args, **kwargs)` in slot `name` (made in `where`, a container or st,
        the first time), unless the slot already shows exactly that."""
        place = self._places.get(name)
        if place is None:
            place = self._places[name] = where.empty()
        shown = (method, args, sorted(kwargs.items()))
        if not self._shows(name, shown):
            getattr(place, method)(*args, **kwargs)
            self._shown[name] = shown

    def _shows(self, name: str, shown: tuple) -> bool:
        try:
            return bool(self._shown.get(name) == shown)
        except (ValueError, TypeError):   # a table's == is elementwise: take it as changed
            return False

    def line(self, name: str, where: Any, method: str, text: str, **kwargs: Any) -> None:
        """Slot `name` shows `where.<method>(text)`, or nothing while text is empty."""
        if text:
            self.show(name, where, method, text, **kwargs)
        else:
            self.clear(name, where)

    def clear(self, name: str, where: Any) -> None:
        """Slot `name` shows nothing (it keeps its place for when it shows something again)."""
        self.show(name, where, "empty")

    def columns(self, name: str, where: Any, spec: int | Sequence[float]) -> Sequence[Any]:
        """Columns made once in `where` (the slots inside them keep their places too)."""
        if name not in self._columns:
            self._columns[name] = where.columns(spec)
        return self._columns[name]
