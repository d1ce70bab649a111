"""ui/slots.py: a live view's elements keep their places and are sent again only when they change."""
from __future__ import annotations

import pandas as pd

from ui.slots import Slots


class Place:
    """A stand-in for st.empty(): records what is drawn in it."""

    def __init__(self, log: list, name: str):
        self.log, self.name = log, name

    def __getattr__(self, method: str):
        return lambda *args, **kwargs: self.log.append((self.name, method, args, kwargs))


class Where:
    """A stand-in for a container: hands out places, in order, and columns made of more containers."""

    def __init__(self, log: list, name: str = "main"):
        self.log, self.name, self.made = log, name, 0

    def empty(self) -> Place:
        self.made += 1
        return Place(self.log, f"{self.name}[{self.made - 1}]")

    def columns(self, spec):
        n = spec if isinstance(spec, int) else len(spec)
        self.log.append((self.name, "columns", (spec,), {}))
        return [Where(self.log, f"{self.name}.col{i}") for i in range(n)]


def test_a_slot_is_made_once_and_drawn_again_only_when_what_it_shows_changes():
    log: list = []
    where, slots = Where(log), Slots()
    for step in (1, 1, 2):
        slots.show("step", where, "metric", "Step", f"{step}")
        slots.show("note", where, "caption", "unchanged", help="a tip")
    assert where.made == 2   # one placeholder per name, in the order first named
    assert log == [("main[0]", "metric", ("Step", "1"), {}),
                   ("main[1]", "caption", ("unchanged",), {"help": "a tip"}),
                   ("main[0]", "metric", ("Step", "2"), {})]


def test_an_element_that_comes_and_goes_keeps_its_place():
    log: list = []
    where, slots = Where(log), Slots()
    for message in ("", "Diverged", "Diverged", ""):
        slots.line("message", where, "error", message)
        slots.show("picture", where, "image", b"png")
    assert where.made == 2
    assert [(place, method) for place, method, *_ in log] == [
        ("main[0]", "empty"), ("main[1]", "image"), ("main[0]", "error"), ("main[0]", "empty")]


def test_a_changed_keyword_or_method_draws_again():
    log: list = []
    where, slots = Where(log), Slots()
    slots.show("m", where, "warning", "slow")
    slots.show("m", where, "error", "slow")
    slots.show("m", where, "error", "slow", icon="!")
    assert len(log) == 3


def test_a_table_is_drawn_every_time_as_its_equality_is_elementwise():
    log: list = []
    where, slots = Where(log), Slots()
    table = pd.DataFrame({"W1": [0.1, 0.2]})
    slots.show("t", where, "dataframe", table)
    slots.show("t", where, "dataframe", table.copy())
    assert len(log) == 2


def test_columns_are_made_once_and_their_slots_live_inside_them():
    log: list = []
    where, slots = Where(log), Slots()
    for value in ("a", "b"):
        left, right = slots.columns("frame", where, [3, 2])
        slots.show("x", right, "metric", "X", value)
    assert [entry for entry in log if entry[1] == "columns"] == [("main", "columns", ([3, 2],), {})]
    assert [entry[0] for entry in log if entry[1] == "metric"] == ["main.col1[0]", "main.col1[0]"]
