"""Parallel lines (WGAN paper, Example 1): only W tells a generator which way to move."""
import math

import streamlit as st

from explorer import charts
from explorer import lines as L
from explorer.pool import get_pool
from ui.navigation import run_inside_app_navigation

run_inside_app_navigation()   # first: a link straight to this page must still get the app around it

ss = st.session_state
NAMES = charts.LINE_NAMES


def show(value: float, digits: int = 4) -> str:
    """Numbers as the page prints them: ∞ for an infinite KL, 'undefined' for nan."""
    if math.isnan(value):
        return "undefined"
    return "∞" if math.isinf(value) else f"{value:.{digits}f}"


@st.cache_data(max_entries=32, show_spinner="Measuring the curves (one exact EMD per θ)…")
def curves(n: int, bin_width: float, paired: bool, base: float, seed: int) -> L.LinesCurves:
    return L.lines_curves(L.LinesConfig(n=n, bin_width=bin_width, paired=paired, base=base, seed=seed))


# ----------------------------------------------------------------------------- controls
with st.sidebar:
    n = st.slider("Points on each line", 20, 500, 200, 10, key="lines_n",
                  help="Sample size of P0 and of Pθ. The curves solve one exact n × n EMD per θ.")
    bin_width = st.slider("Histogram bin width h", 0.01, 1.0, 0.1, 0.01, key="lines_bin",
                          help="Side of the square cells used for TV, KL and JS from samples.")
    paired = st.checkbox("Same heights z on both lines", True, key="lines_paired",
                         help="On: Pθ's points are P0's shifted by θ (the generator's view), so only θ "
                              "differs. Off: independent heights, which adds sampling noise.")
    unit = st.radio("Unit for KL and JS", ["nats", "bits"], horizontal=True, key="lines_unit")
    seed = int(st.number_input("Seed", 0, 10_000, 0, key="lines_seed"))
base = 2.0 if unit == "bits" else math.e

st.title("Parallel lines: why W gives a gradient and JS does not")
st.markdown(
    "P0 is uniform on the segment {0} × [0, 1], Pθ on {θ} × [0, 1] (the WGAN paper's Example 1). "
    "For every θ ≠ 0 the two lines are **disjoint**, so TV = 1, KL = ∞ and JS = log 2 however close "
    "they are: no gradient tells θ to shrink. **W = |θ|** shrinks smoothly, with slope ±1.")
theta = st.slider("θ (position of the moving line)", -1.0, 1.0, 0.5, 0.01, key="lines_theta")

cfg = L.LinesConfig(theta=theta, n=n, bin_width=bin_width, paired=paired, base=base, seed=seed)
try:
    point = L.lines_point(cfg)
    curve = curves(n, bin_width, paired, base, seed)
except ValueError as err:  # the widgets keep inputs valid; this guards against a stale session
    st.error(f"Cannot compute these settings: {err}")
    st.stop()

# ----------------------------------------------------------------------------- numbers at theta
cols = st.columns(4)
for col, key in zip(cols, ("tv", "kl", "js", "w")):
    label = NAMES[key] + (f" [{unit}]" if key in ("kl", "js") else "")
    col.metric(label, show(point.analytic[key]), help="Exact value for the two continuous lines.")
    col.caption(f"measured: **{show(point.measured[key])}** · d/dθ: **{show(point.gradients[key], 0)}**")
if theta != 0:
    st.info("**KL = ∞**: Pθ puts all its mass where P0 has none (and vice versa), so log(p/q) divides by "
            "zero. No chart can draw ∞: below, infinite values sit on the top edge, marked ▲.")
st.caption("Measured W: exact EMD on the two point clouds (POT, Euclidean cost). Measured TV/KL/JS: "
           f"2-D histogram with cells of side h = {bin_width:g}, columns starting at the left line; both "
           f"lines share a column when |θ| < h, and the histograms then read 0. TV = ½ Σ|P − Q|; "
           "JS = ½ KL(P‖M) + ½ KL(Q‖M) ≤ log 2 (some lecture notes drop the ½ or take the max over points).")

# ----------------------------------------------------------------------------- the samples
st.altair_chart(charts.lines_samples_chart(point.p0, point.pt, theta, bin_width), width="stretch")

st.subheader("The four distances against θ")
st.caption("Black: exact. Dots: measured from the samples (same seed at every θ). ▲: infinite, drawn at the top.")
for col, key in zip([*st.columns(2), *st.columns(2)], ("tv", "kl", "js", "w")):
    col.altair_chart(charts.lines_curve_chart(curve, key, theta, unit), width="stretch")

# ----------------------------------------------------------------------------- the gradient story
st.subheader("The gradient a generator would get: d/dθ")
left, right = st.columns([3, 2])
left.altair_chart(charts.lines_gradient_chart(curve), width="stretch")
right.markdown(
    "- **TV, JS**: flat (d/dθ = 0) on both sides of 0 and a jump at 0: a generator at θ ≠ 0 learns nothing.\n"
    "- **KL**: ∞ for every θ ≠ 0, so it has no derivative at all (∞ − ∞ is undefined).\n"
    "- **W = |θ|**: d/dθ = sign(θ) = ±1 everywhere but 0, always pointing back to the true line. "
    "Dots: finite differences of the W measured from samples.")


# ----------------------------------------------------------------------------- the clipped critic
@st.fragment
def critic_section() -> None:
    st.subheader("Estimating W with a weight-clipped critic")
    st.markdown(
        "A small critic f (2 → 10 sigmoid units → 1 score per point) maximizes "
        "E f(x ~ P0) − E f(x ~ Pθ) with RMSProp, every weight clipped to [−c, c] after each step. "
        "Clipping makes f Lipschitz with an unknown constant, so the critic measures **κ·W = κ·|θ|**, "
        "not W itself: κ is fitted by least squares over the θs below.")
    a, b, c3 = st.columns(3)
    clip = a.select_slider("Clip c", [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0], 0.5, key="lines_clip")
    iterations = b.number_input("Iterations per θ", 5, 2000, 100, 5, key="lines_iters")
    lr = c3.select_slider("Learning rate", [1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2], 5e-3, key="lines_lr",
                          format_func=lambda v: f"{v:g}")
    critic_cfg = L.CriticConfig(clip=float(clip), iterations=int(iterations), lr=float(lr), seed=seed)
    if st.button("Estimate κ·|θ|", type="primary", key="lines_run"):
        bar = st.progress(0.0, text="Training the first critic…")
        job = get_pool().submit(L.critic_estimates, critic_cfg, 25)   # trained in a worker process
        try:
            progress = None
            for progress in job.updates():
                bar.progress(progress.done / progress.total,
                             text=f"Critic {len(progress.thetas) + (not progress.finished)} of "
                                  f"{len(critic_cfg.thetas)} · {progress.done}/{progress.total} steps")
            if progress is not None:
                ss.lines_critic = (critic_cfg, progress)
        except (ValueError, RuntimeError, TimeoutError) as err:
            st.error(f"Cannot run the critic: {err}")
        finally:
            job.cancel()    # a visitor who leaves mid-way does not keep a worker busy
        bar.empty()
    if "lines_critic" not in ss:
        st.caption(f"Runs {len(critic_cfg.thetas)} critics × {iterations} steps; a few seconds on a laptop CPU.")
        return
    done_cfg, result = ss.lines_critic
    if done_cfg != critic_cfg:
        st.caption("The settings changed since this run: press the button to run again.")
    bound = L.kappa_bound(done_cfg.hidden, done_cfg.clip)
    m1, m2 = st.columns(2)
    m1.metric("Fitted κ", f"{result.kappa:.4f}")
    m2.metric("Largest κ this clip allows", f"{bound:.4f}",
              help="With |weights| ≤ c and sigmoid' ≤ ¼, the critic's slope along x is at most (hidden units)·c²/4.")
    share = result.kappa / bound if bound > 0 else float("nan")
    st.markdown(
        f"**What κ means.** The fitted κ is {100 * share:.0f}% of the largest slope clipping allows: "
        + ("the clipped critic sits at its Lipschitz limit, as steep as its weights let it be, so "
           "its estimate is that bound times W. " if share > 0.9 else
           "the critic has not reached its Lipschitz limit yet (more iterations get it there), and its "
           "estimate is κ times W. ")
        + "For a WGAN this means its critic's loss is a distance only up to an unknown scale, κ, set "
          "by c and the critic's size, not by the data: it still points the generator the right way "
          "(the slope's sign), but its value is not W, and two runs with different c or widths "
          "cannot be compared by their losses.")
    st.altair_chart(charts.lines_kappa_chart(curve.thetas, result.kappa, result.thetas, result.estimates),
                    width="stretch")
    st.caption("Dots: each critic's estimate on fresh samples. The critic sees the gap for any θ ≠ 0 and "
               "its estimate grows with |θ|: the smooth signal a WGAN generator follows.")


critic_section()
