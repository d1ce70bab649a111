"""The benchmarks' "page defaults" are what each page really trains when Start is pressed.

bench/app_overhead.py compares a page's run against the same config headless; a baseline built from
other settings (a missing generator average, another preset's critic iterations) would compare two
different runs.
"""
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from page_defaults import PAGES, page_default_config  # noqa: E402

SESSION_KEY = {"gan_2d": "g2_session", "compare": "cmp_session", "image_gan": "img_session"}


@pytest.mark.parametrize("page", PAGES)
def test_the_benchmark_trains_the_pages_own_default_config(page):
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=120).run()
    session = at.session_state[SESSION_KEY[page]]
    try:
        assert not at.exception
        factory = session._factory            # the partial Start will call: (builder, config, data)
        assert factory.args[0] == page_default_config(page)
    finally:
        session.close()
