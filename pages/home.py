"""Home: what the explorer is, and where each page goes."""
import streamlit as st

from ui.navigation import run_inside_app_navigation

run_inside_app_navigation()   # first: a link straight to this page must still get the app around it

st.title("Distance & GAN explorer")
st.markdown(
    """
Why does the **Wasserstein distance** train GANs where Jensen-Shannon fails, and why does the
**gradient penalty** beat weight clipping? This explorer lets you *see* it: every number is exact
(optimal transport solved by POT) or measured from samples, never silently approximated.
"""
)

st.page_link("pages/histograms.py", label="**Histograms** — edit two histograms; TV, KL and JS "
             "saturate while the exact Earth Mover's Distance keeps moving, with the transport plan.",
             icon=":material/bar_chart:")
st.page_link("pages/parallel_lines.py", label="**Parallel lines** — the WGAN paper's Example 1: "
             "only W gives a useful gradient as two lines slide apart.", icon=":material/stacked_line_chart:")
st.page_link("pages/gan_2d.py", label="**2-D GAN** — train GAN / WGAN / WGAN-GP live on 8 Gaussians "
             "and other toy data; watch the critic's landscape.", icon=":material/scatter_plot:")
st.page_link("pages/compare.py", label="**Compare** — GP vs no-GP (and other settings) side by "
             "side, in lock-step, from identical starting points.", icon=":material/compare:")
st.page_link("pages/image_gan.py", label="**Image GAN** — DCGAN / WGAN / WGAN-GP on small images, "
             "on CPU or GPU.", icon=":material/image:")

st.caption(
    "Conventions: TV = ½ Σ|P−Q| (the supremum over sets), JS = ½ KL(P‖M) + ½ KL(Q‖M) ≤ log 2, "
    "gradient penalty = λ E[(‖∇f(x̂)‖₂ − 1)²]. Where the lecture notes this grew from use other "
    "forms, the pages say so next to the number."
)
