"""The explorer's core: distances, toy data, models, losses, training, metrics and plots.

Never imports Streamlit: everything here runs in tests, on the command line and behind a page.
"""
import os
from pathlib import Path

# Matplotlib writes a font cache on first import (by default under $HOME): keep it in the app's
# cache folder, like explorer.mnist ($EXPLORER_CACHE_DIR, else .cache/ in the project).
if "MPLCONFIGDIR" not in os.environ:
    _cache = os.environ.get("EXPLORER_CACHE_DIR") or Path(__file__).resolve().parents[1] / ".cache"
    os.environ["MPLCONFIGDIR"] = str(Path(_cache) / "matplotlib")
