"""The explorer's core: distances, toy data, models, losses, training, metrics and plots.

Never imports Streamlit: everything here runs in tests, on the command line and behind a page.
"""
