"""Router of the explorer: `streamlit run streamlit_app.py` opens every page from here."""
from explorer.process import configure

configure()   # process-wide settings first, before any page imports matplotlib or POT

import streamlit as st  # noqa: E402

from explorer.painter import get_painter  # noqa: E402
from explorer.pool import get_pool  # noqa: E402

# An emoji, not a :material/...: icon: the browser draws it without fetching a font (offline classrooms).
st.set_page_config(page_title="Distance & GAN explorer", page_icon="📏", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/histograms.py", title="Histograms", icon=":material/bar_chart:"),
    st.Page("pages/parallel_lines.py", title="Parallel lines", icon=":material/stacked_line_chart:"),
    st.Page("pages/gan_2d.py", title="2-D GAN", icon=":material/scatter_plot:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("pages/image_gan.py", title="Image GAN", icon=":material/image:"),
]

get_pool().warm()   # a worker process starts importing torch while the visitor reads the first page
get_painter().warm()   # and the painter matplotlib (explorer/painter.py)
st.navigation(PAGES).run()
