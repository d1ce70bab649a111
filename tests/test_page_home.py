"""The router and the home page under AppTest."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def test_router_opens_home_without_exceptions():
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Distance & GAN explorer"


def test_home_links_every_page_and_every_page_file_exists():
    source = (ROOT / "pages" / "home.py").read_text()
    router = (ROOT / "streamlit_app.py").read_text()
    for page in ("histograms", "parallel_lines", "gan_2d", "compare", "image_gan"):
        assert f'"pages/{page}.py"' in source and f'"pages/{page}.py"' in router
        assert (ROOT / "pages" / f"{page}.py").is_file()


def test_router_switches_to_the_histograms_page():
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.switch_page("pages/histograms.py").run()
    assert not at.exception
    assert any("Histograms" in t.value for t in at.title)
