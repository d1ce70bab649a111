"""What the Vega-Lite specs written out as dicts share (explorer/training_charts.py,
explorer/histogram_charts.py): the spec's type, an encoding channel on a field, the width-only
autosize and the dash of a marker rule. No Streamlit here; ui/vega.py draws the specs.
"""
from __future__ import annotations

from typing import Any

Spec = dict[str, Any]
# Fit the width only: with Streamlit's default ("fit" both ways) the height includes the legend below,
# which then squashes the plot itself to a few pixels. Height here is the plot's own.
FIT_WIDTH = {"type": "fit-x", "contains": "padding"}
DASH = [4, 3]


def field(name: str, kind: str = "quantitative", **options) -> dict:
    """An encoding channel on a field: {"field": name, "type": kind, ...options}."""
    return {"field": name, "type": kind, **options}
