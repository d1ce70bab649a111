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

st.subheader("Start here")
st.markdown(
    """
1. **Histograms** (3 minutes): pick *Disjoint supports*, slide **k**. TV and JS stop at their maximum
   as soon as the bars no longer overlap; the EMD keeps growing by one per bin.
2. **Parallel lines** (3 minutes): slide **θ** towards 0. TV, KL and JS stay flat until the lines meet;
   W = |θ| shrinks all the way, and its slope always points home.
3. **2-D GAN** (3 minutes): press **Start** with the defaults, then switch on the gradient-norm map:
   white (‖∇f‖ = 1) between the clouds is the penalty at work.
4. **Compare** (5 minutes): *WGAN-GP vs weight clipping*, then the mode *Gradients with depth*: the
   clipped critics' gradients vanish or explode layer by layer.
5. **Image GAN** (5 minutes or more): the same losses on pictures; a CPU needs a few minutes.
"""
)
with st.expander("A ten-minute script for a teacher"):
    st.markdown(
        """
| minute | click | watch for | say |
|---|---|---|---|
| 0-2 | Histograms → preset *Disjoint supports*, move **k** right | TV stays at 1, JS at log 2; EMD grows | "Once two distributions do not overlap, TV and JS cannot tell near from far; the EMD can." |
| 2-4 | Parallel lines → move **θ** from 0.5 to 0.05 | TV/KL/JS flat, W = \|θ\| falls | "A generator trained on JS gets no gradient here; on W it always knows which way to go." |
| 4-5 | Parallel lines → *Estimate κ·\|θ\|* | the clipped critic's line has slope κ < 1 | "A clipped critic measures W times an unknown constant: its loss is a distance up to scale." |
| 5-7 | 2-D GAN → **Start**, then the gradient-norm map | green points spread over the 8 modes; white band between clouds | "The penalty asks for ‖∇f‖ = 1 exactly where real and fake mix." |
| 7-9 | Compare → *WGAN-GP vs weight clipping* → **Start** | ‖∇f‖ ≈ 1 for GP, tiny for clipping | "Clipping keeps the critic Lipschitz, but not 1-Lipschitz, and it loses shape." |
| 9-10 | Compare → mode *Gradients with depth* → **Start** | straight lines on a log scale for clipping, flat for GP | "With clipping the gradient shrinks or grows by a constant factor per layer; the penalty keeps it level." |
"""
    )

st.caption(
    "Conventions: TV = ½ Σ|P−Q| (the supremum over sets), JS = ½ KL(P‖M) + ½ KL(Q‖M) ≤ log 2, "
    "gradient penalty = λ E[(‖∇f(x̂)‖₂ − 1)²]. Where the lecture notes this grew from use other "
    "forms, the pages say so next to the number."
)
