"""Make sure a page runs inside the app's navigation (streamlit_app.py), whatever URL opened it.

Streamlit still carries the first multipage design, where every script in a `pages/` folder beside
the main script is a page. On a fresh server the first visitor's first script run takes that
path when the URL names a page (a shared link to /gan_2d): the page script runs on its own, with
Streamlit's file-name navigation and none of streamlit_app.py's settings, and every later visitor
gets the same until someone opens the home page. st.navigation() switches the old mode off, so a
page that finds itself in the old mode switches it off and reruns: the rerun goes through
streamlit_app.py and its st.navigation(), which opens the same page by its URL.
"""
from __future__ import annotations

import streamlit as st


def run_inside_app_navigation() -> None:
    """Call first in every page script; reruns through streamlit_app.py if it was bypassed."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:   # a Streamlit without the old mode: nothing to do
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()
