"""The explorer's core: distances, toy data, models, losses, training, metrics, charts and figures.

Never imports Streamlit: everything here runs in tests, on the command line, in a worker process
and behind a page. Process-wide settings are made by explorer.process.configure where a process
starts, not on import.
"""
