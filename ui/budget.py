"""Each visitor's budget in a hosted demo (explorer.limits.VisitorBudget), kept in st.session_state.

`visitor_budget()` is what a visitor's run handles count their runs against (ui/run_controls.py);
`admit_upload(...)` is asked before a page reads an uploaded file.
"""
from __future__ import annotations

import streamlit as st

from explorer.limits import VisitorBudget

KEY = "visitor_budget"


def visitor_budget() -> VisitorBudget:
    """This visitor's budget: one per browser session, shared by every page."""
    if KEY not in st.session_state:
        st.session_state[KEY] = VisitorBudget.from_env()
    return st.session_state[KEY]


def admit_upload(*files) -> str | None:
    """None if these uploaded files (Streamlit's UploadedFile) fit the visitor's upload budget, each
    counted once however often the page reruns; else the sentence to show instead of reading them."""
    key = tuple(f.file_id for f in files)
    return visitor_budget().admit_upload(key, sum(f.size for f in files))
