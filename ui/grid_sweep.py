"""Compare's Grid mode trained to the end: each run of the grid a job of its own on the app's workers.

The live grid trains its runs in lock-step in one worker, for the picture. Here they train apart,
each at its own speed and as far as the visitor asks, so a grid uses every worker of the box (every
node, where EXPLORER_RAY_ADDRESS names a Ray cluster: the pool's workers are its actors), and each
run's row shows as soon as it finishes. A job gives its worker back every 25 steps
(explorer/sweep.py's train_in_turns), so the live runs on the same workers keep their turns. The
rows are those of `python -m explorer sweep`, with its sheet of small multiples and its CSV.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import streamlit as st

from explorer.plots import sweep_sheet_png
from explorer.pool import get_pool
from explorer.sweep import SHEET_SAMPLES, error_row, train_in_turns
from explorer.sweep_table import columns, csv_text

MAX_STEPS = 5000
POLL_S = 1.0   # how often the table looks for finished runs while some train


def grid_sweep(configs: Sequence[Any], keys: tuple[str, ...], names: dict[str, str], prefix: str) -> None:
    """The expander that trains `configs` (the grid's runs; `keys` their grid fields, `names` the
    fields in words) to the end and shows their rows, sheet and CSV. prefix: session_state keys."""
    with st.expander(f"Train the grid's {len(configs)} runs to the end, each on a worker of its own"):
        steps = st.number_input("Generator steps per run", 50, MAX_STEPS, 500, 50, key=prefix + "sw_steps")
        if st.button(f"Train {len(configs)} runs of {int(steps):,} steps", key=prefix + "sw_go"):
            pool = get_pool()
            jobs = [pool.submit(train_in_turns, cfg, int(steps), keys, SHEET_SAMPLES) for cfg in configs]
            st.session_state[prefix + "sw"] = (keys, list(zip(configs, jobs)))
        if prefix + "sw" in st.session_state:
            results(prefix, names)


def results(prefix: str, names: dict[str, str]) -> None:
    keys, jobs = st.session_state[prefix + "sw"]
    training = not all(job.future.done() for _, job in jobs)

    @st.fragment(run_every=POLL_S if training else None)
    def table() -> None:
        rows = [row_of(cfg, keys, job) for cfg, job in jobs]
        done = [row for row in rows if row is not None]
        if training and len(done) == len(rows):   # the last one finished: the page without its timer
            st.rerun(scope="app")
        st.caption(f"{len(done)} of {len(rows)} runs finished" + (" (the others train on)" if training else ""))
        if done:
            shown = pd.DataFrame([{c: row.get(c) for c in columns(keys, done)} for row in done])
            st.dataframe(shown.rename(columns=names), hide_index=True)
        if len(done) == len(rows):
            st.image(sweep_sheet_png(keys, rows), caption="Each run's final samples (orange) over real ones (grey)")
            st.download_button("Table (CSV)", csv_text(keys, rows), "compare_grid.csv", "text/csv",
                               on_click="ignore", key=prefix + "sw_csv")

    table()


def row_of(cfg: Any, keys: tuple[str, ...], job: Any) -> dict | None:
    """A finished job's row (a worker that died: a row that says so); None while it trains."""
    if not job.future.done():
        return None
    try:
        return job.result(0)
    except Exception as err:   # WorkerDied, or what the run let through: its row says why, as on the CLI
        return error_row(cfg, keys, f"{type(err).__name__}: {err}")
