"""Streamlit helpers shared by the pages (the core, explorer/, never imports Streamlit or this)."""
