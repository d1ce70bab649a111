"""Settings for every test run in this process (the page tests drive pages with AppTest here)."""
import os

# While a run trains, a live view's fragment draws frame after frame for up to EXPLORER_LIVE_LOOP_S
# seconds (ui/live.py). AppTest waits for a script run to end, so here the page tests draw one frame a
# run, as every page does when nothing trains; tests/test_live.py checks the loop itself, and the
# browser tests' server (tests/e2e/conftest.py) runs it as a visitor gets it.
os.environ.setdefault("EXPLORER_LIVE_LOOP_S", "0")
