"""Histograms: edit P and Q, slide Q sideways, and compare TV, KL, JS and the exact EMD."""
import math

import numpy as np
import pandas as pd
import streamlit as st

from explorer import histogram_charts as charts
from explorer import histograms as H
from explorer.distances import emd_plan, summary
from ui.navigation import run_inside_app_navigation
from ui.vega import vega_chart

run_inside_app_navigation()   # first: a link straight to this page must still get the app around it

ss = st.session_state
GROUND_NAMES = {"abs": "|x − y|  (W1)", "sq": "(x − y)²  (W2²)", "saturated": "1 − exp(−α|x − y|)  (Rubner)"}


# ----------------------------------------------------------------------------- state
def set_histograms(p: np.ndarray, q: np.ndarray) -> None:
    """Store a new good (P, Q) pair; a new table key makes the editor show it."""
    ss.hist_p, ss.hist_q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    ss.hist_version = ss.get("hist_version", 0) + 1
    ss.hist_paste_error = None
    ss.hist_shift = int(np.clip(ss.get("hist_shift", 0), -len(p), len(p)))
    # The paste boxes show the histograms in use (up to 200 bins; more would not be read by anyone).
    for name, h in (("p", ss.hist_p), ("q", ss.hist_q)):
        ss[f"hist_paste_{name}"] = ", ".join(f"{v:.6g}" for v in h) if len(h) <= 200 else ""


def apply_paste() -> None:
    """Use the pasted values, or remember why not (shown in the Paste tab); last good ones stay."""
    try:
        new_p, new_q = H.parse_text(ss.hist_paste_p, "P"), H.parse_text(ss.hist_paste_q, "Q")
        if len(new_p) != len(new_q):
            raise ValueError(f"P has {len(new_p)} bins and Q has {len(new_q)}: give both the same number.")
    except ValueError as err:
        ss.hist_paste_error = f"{err} Nothing was changed: the page keeps the last good values."
    else:
        ss.hist_paste_error = None
        set_histograms(new_p, new_q)


KINDS = {"mixture": "Gaussian mixture", "uniform": "Uniform", "spikes": "Spikes"}


def show_in_generators(name: str) -> None:
    """Set the Generators tab's fields to what makes the preset, so they show the histograms in use."""
    bins, *specs = H.PRESET_SPECS[name]
    for key in [k for k in ss if k.startswith(("hist_mu_", "hist_sd_", "hist_w_", "hist_uni_", "hist_spk_"))]:
        del ss[key]                      # fields of another preset's generators would not fit these bins
    ss.hist_bins = bins
    for side, (kind, args) in zip("PQ", specs):
        ss[f"hist_kind_{side}"] = KINDS[kind]
        if kind == "mixture":
            ss[f"hist_parts_{side}"] = len(args)
            for c, (mean, width, weight) in enumerate(args):
                ss[f"hist_mu_{side}{c}"], ss[f"hist_sd_{side}{c}"] = float(mean), float(width)
                ss[f"hist_w_{side}{c}"] = float(weight)
        elif kind == "uniform":
            ss[f"hist_uni_{side}"] = tuple(args)
        else:
            ss[f"hist_spk_{side}"] = args


def load_preset() -> None:
    set_histograms(*H.preset(ss.hist_preset))
    show_in_generators(ss.hist_preset)
    ss.hist_shift = 0


def initial(key: str, value) -> dict:
    """A widget's starting value, unless the session already holds one (a preset set it)."""
    return {} if key in ss else {"value": value}


if "hist_p" not in ss:
    ss.hist_preset = next(iter(H.PRESETS))
    load_preset()


@st.cache_data(max_entries=64, show_spinner=False)
def analyse(p: np.ndarray, q: np.ndarray, k: int, base: float, ground: str, alpha: float):
    a, b, x = H.shifted(p, q, k)
    plan = emd_plan(a, b, positions=x, ground=ground, alpha=alpha)
    return a, b, x, summary(a, b, base=base, ground=ground, alpha=alpha, positions=x), plan


@st.cache_data(max_entries=16, show_spinner="Sweeping the shift…")
def sweep(p: np.ndarray, q: np.ndarray, points: int, base: float, ground: str, alpha: float):
    return H.shift_sweep(p, q, H.sweep_shifts(len(p), points), base=base, ground=ground, alpha=alpha)


# ----------------------------------------------------------------------------- sidebar: what to compare, how
with st.sidebar:
    st.selectbox("Preset", list(H.PRESETS), key="hist_preset", on_change=load_preset)
    st.caption(H.PRESETS[ss.hist_preset])
    unit = st.radio("Unit for KL and JS", ["nats", "bits"], horizontal=True, key="hist_unit")
    ground = st.selectbox("Ground distance for EMD", list(GROUND_NAMES), format_func=GROUND_NAMES.get,
                          key="hist_ground")
    alpha = st.slider("α of the saturated distance", 0.01, 2.0, 0.1, 0.01, key="hist_alpha",
                      disabled=ground != "saturated", help="Cost of a move of d bins: 1 − exp(−α d).")
    if ground == "saturated":
        st.caption("Why saturate: Rubner et al. found that people judge two colours or textures as simply "
                   "'different' beyond some distance, so a far move should cost about as much as a farther "
                   "one. The cost is then concave, and the cheapest plan may cross: two nearby moves can "
                   "cost more than one far move and one that stays.")
    tail = st.selectbox("Cut off tails below", ["none", 1e-12, 1e-9, 1e-6], key="hist_tail",
                        format_func=lambda v: v if v == "none" else f"{v:g} of the mass",
                        help="Set every bin with less than this share of the mass to 0 (and renormalize): "
                             "Gaussian tails leave ~1e-16 in far bins, enough to make KL finite or infinite.")
base = 2.0 if unit == "bits" else math.e
emd_unit = {"abs": "bins", "sq": "bins²", "saturated": "cost ≤ 1"}[ground]

p, q = ss.hist_p, ss.hist_q
cut_note = ""
if tail != "none":
    (p, cut_p), (q, cut_q) = H.cut_tails(p, tail), H.cut_tails(q, tail)
    cut_note = (f"Tail cut-off: bins below {tail:g} of the mass set to 0, which removed {cut_p:.3g} of P's "
                f"mass and {cut_q:.3g} of Q's.")
n = len(p)

st.title("Histograms: TV, KL, JS and the Earth Mover's Distance")
st.markdown("Edit two histograms P and Q, then **slide Q sideways**. Every number is exact: "
            "the EMD and its transport plan come from POT's optimal-transport solvers.")

# ----------------------------------------------------------------------------- the heart: shift Q
with st.container(border=True):
    st.subheader("Shift Q by k bins")
    emd_says = {"abs": "**EMD keeps growing by one bin per bin moved**: it measures *how far* the mass must travel.",
                "sq": "**EMD keeps growing, as the square of the shift** (W2²): far moves cost ever more.",
                "saturated": "With Rubner's **saturating ground distance the EMD flattens too**, towards 1: far "
                             "moves all cost about the same, as they do for the eye. Switch to |x − y| to see "
                             "the EMD grow without bound."}[ground]
    st.markdown("As soon as Q no longer overlaps P, **TV and JS stop changing** (TV = 1, JS = log 2): they "
                "cannot tell *a bit apart* from *far apart*, so a GAN trained on them gets no gradient. " + emd_says)
    k = st.slider("k (bins; the axis widens so no mass falls off)", -n, n, key="hist_shift")

a, b, x, result, plan = analyse(p, q, k, base, ground, alpha)
left, right = st.columns(2)
domain, top = (x[0] - 0.5, x[-1] + 0.5), 1.05 * max(a.max(), b.max())
vega_chart(charts.bars(a, x, "P", charts.P_COLOUR, domain, top), left)
vega_chart(charts.bars(b, x, f"Q shifted by {k}" if k else "Q", charts.Q_COLOUR, domain, top), right)
for name, h in (("P", ss.hist_p), ("Q", ss.hist_q)):
    if abs(h.sum() - 1) > 1e-9:
        st.caption(f"{name} sums to {h.sum():.6g}; it is normalized to sum 1 for every number on this page.")
if cut_note:
    st.caption(cut_note)


# ----------------------------------------------------------------------------- the numbers
def show(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:.4f}"


st.caption(f"KL and JS in {unit}; EMD in {emd_unit} (ground distance {GROUND_NAMES[ground]}). "
           "Hover a ? for the formula.")
cols = st.columns(3) + st.columns(3)   # two rows of three: readable in the narrow layout too
cols[0].metric("TV", show(result["tv"]), help="½ Σ|P − Q|, the supremum of |P(A) − Q(A)| over sets A.")
cols[0].caption(f"Standard ½ Σ|P−Q|. The notes' max over single bins would give "
                f"{H.notes_forms(a, b)['tv_max_bin']:.4f}.")
for col, key, label, (h1, h2) in ((cols[1], "kl_pq", "KL(P‖Q)", (a, b)), (cols[2], "kl_qp", "KL(Q‖P)", (b, a))):
    col.metric(label, show(result[key]), help=f"Σ p log(p / q) in {unit}; 0 log 0 = 0.")
    where = H.kl_infinite_at(h1, h2)
    if where is not None:
        second, first = label[3], label[5]
        missing = H.mass_where_missing(h1, h2)
        col.caption(f"∞: {first} is 0 at bin {x[where]:g} where {second} has {h1[where]:.2g} of its mass "
                    f"(in all, {missing:.2g} of {second} lies where {first} has none), so log(p/0) diverges."
                    + (" Tiny? Try the tail cut-off in the sidebar: the jump is real, but about this mass."
                       if missing < 1e-6 else ""))
cols[3].metric("JS", show(result["js"]), help=f"½ KL(P‖M) + ½ KL(Q‖M), M = (P + Q)/2, in {unit}.")
cols[3].caption(f"With the ½: at most {'1 bit' if unit == 'bits' else 'log 2 ≈ 0.6931'}. Without it "
                f"(as in the notes) it would be {2 * result['js']:.4f}.")
cols[4].metric("JS distance", show(result["js_distance"]), help="√JS: a true metric.")
cols[5].metric("EMD", show(result["emd"]), help=f"Exact, in {emd_unit}; ground distance {GROUND_NAMES[ground]}.")
if ground == "sq":
    cols[5].caption("With (x−y)² this is W2 squared; W2 = " + f"{math.sqrt(result['emd']):.4f} bins.")

# ----------------------------------------------------------------------------- distance against shift
slow = ground == "saturated" and n > 100
points = (41 if n <= 300 else 13) if slow else 161
records = sweep(p, q, points, base, ground, alpha)
for col, chart in zip(st.columns(2), charts.sweep(records, k, unit, f"EMD ({emd_unit})", ground)):
    vega_chart(chart, col)
st.caption(f"Each point is exact; {len(records)} shifts from −{n} to {n}"
           + (" (fewer for the saturated distance on many bins: each one is a network-simplex solve)" if slow else "")
           + ". KL is not plotted: it is infinite wherever Q misses part of P's support."
           + (" With the saturated ground distance EMD saturates too, at 1." if ground == "saturated" else ""))

# ----------------------------------------------------------------------------- edit P and Q
# Keyed, so an edit (which reruns the page) keeps the editor open on its tab.
with st.expander("Edit P and Q: generators, table, or paste values", key="hist_editor", on_change="rerun"):
    gen_tab, table_tab, paste_tab = st.tabs(["Generators", "Table", "Paste"], key="hist_editor_tab",
                                            on_change="rerun")

    with gen_tab:
        bins = st.number_input("Number of bins", 2, H.MAX_BINS, key="hist_bins", **initial("hist_bins", n))
        made = {}
        for name, col in zip("PQ", st.columns(2)):
            with col:
                kind = st.radio(f"{name} is", ["Gaussian mixture", "Uniform", "Spikes"], horizontal=True,
                                key=f"hist_kind_{name}")
                try:
                    if kind == "Gaussian mixture":
                        parts = st.number_input("Components", 1, 3, key=f"hist_parts_{name}",
                                                **initial(f"hist_parts_{name}", 1))
                        spec = [(st.slider(f"mean {c + 1}", 0.0, bins - 1.0, key=f"hist_mu_{name}{c}",
                                           **initial(f"hist_mu_{name}{c}",
                                                     (bins - 1) * (0.3 + 0.2 * (name == "Q") + 0.15 * c))),
                                 st.slider(f"width {c + 1}", 0.2, max(bins / 2, 1.0), key=f"hist_sd_{name}{c}",
                                           **initial(f"hist_sd_{name}{c}", max(bins / 20, 0.5))),
                                 st.slider(f"weight {c + 1}", 0.0, 1.0, key=f"hist_w_{name}{c}",
                                           **initial(f"hist_w_{name}{c}", 1.0)))
                                for c in range(parts)]
                        made[name] = H.gaussian_mixture(bins, *zip(*spec))
                    elif kind == "Uniform":
                        lo, hi = st.slider("from, to (bins)", 0, bins - 1, key=f"hist_uni_{name}",
                                           **initial(f"hist_uni_{name}", (0, bins // 2)))
                        made[name] = H.uniform(bins, lo, hi)
                    else:
                        text = st.text_input("bin:mass, …", key=f"hist_spk_{name}",
                                             **initial(f"hist_spk_{name}", f"{bins // 4}:1, {bins // 2}:1"))
                        made[name] = H.spikes(bins, *H.parse_spikes(text))
                except ValueError as err:
                    st.warning(str(err))
        st.button("Use these for P and Q", key="hist_generate", disabled=len(made) < 2,
                  on_click=set_histograms, args=(made.get("P"), made.get("Q")))

    with table_tab:
        st.caption("Edit any cell; masses need not sum to 1 (they are normalized). Bins count from 0.")
        editor, numbers = st.columns([3, 2])
        problem = editor.empty()          # a bad cell is named here, right above the table
        base_table = pd.DataFrame({"bin": np.arange(n), "P": [f"{v:.6g}" for v in ss.hist_p],
                                   "Q": [f"{v:.6g}" for v in ss.hist_q]})
        # Text columns: a typed word arrives as typed, so it is refused with its bin named (a number
        # column would turn it into 0 without a word).
        edited = editor.data_editor(base_table, key=f"hist_table_{ss.hist_version}", hide_index=True,
                                    num_rows="fixed", disabled=["bin"], height=300,
                                    column_config={c: st.column_config.TextColumn(c) for c in "PQ"})
        if not edited[["P", "Q"]].equals(base_table[["P", "Q"]]):
            try:
                new_p = H.parse_column(edited["P"].tolist(), "P")
                new_q = H.parse_column(edited["Q"].tolist(), "Q")
            except ValueError as err:
                problem.error(f"{err} The numbers still use the last good values.")
            else:
                if not (np.allclose(new_p, ss.hist_p, rtol=1e-6, atol=0) and np.allclose(new_q, ss.hist_q, rtol=1e-6, atol=0)):
                    ss.hist_p, ss.hist_q = new_p, new_q   # keep the table key: the editor holds these edits
                    st.rerun()
        numbers.markdown("**The numbers, as you edit** (at the shift k above)  \n"
                         f"TV {show(result['tv'])} · JS {show(result['js'])} {unit}  \n"
                         f"KL(P‖Q) {show(result['kl_pq'])} · KL(Q‖P) {show(result['kl_qp'])}  \n"
                         f"EMD {show(result['emd'])} {emd_unit}")
        vega_chart(charts.bars(a, x, "P", charts.P_COLOUR, domain, top), numbers)
        vega_chart(charts.bars(b, x, "Q", charts.Q_COLOUR, domain, top), numbers)

    with paste_tab:
        st.text_area("P", key="hist_paste_p", placeholder="0.2, 0.5, 0.3")
        st.text_area("Q", key="hist_paste_q", placeholder="0.2, 0.5, 0.3")
        st.button("Use pasted values", key="hist_paste_apply", on_click=apply_paste)
        if ss.get("hist_paste_error"):
            st.error(ss.hist_paste_error)

# ----------------------------------------------------------------------------- the transport plan
st.subheader("The optimal transport plan")
st.markdown(f"EMD = Σ F<sub>ij</sub> · d(i, j) = **{result['emd']:.4f} {emd_unit}**: the cheapest way to "
            "reshape P into Q. F<sub>ij</sub> is the mass moved from P's bin i to Q's bin j.", unsafe_allow_html=True)
shown_plan, n_hidden = H.visible_plan(plan)
flows = H.largest_flows(shown_plan, x, limit=150)
vega_chart(charts.flow_bands(a, b, x, flows))
n_moves = int(np.count_nonzero(plan))
n_drawable = n_moves - n_hidden
notes = [f"Showing the {len(flows)} largest of {n_drawable} moves."] if n_drawable > len(flows) else []
if n_hidden:
    notes.append(f"Not drawn: {n_hidden} tiny move{'s' * (n_hidden > 1)} of far-tail mass (each under "
                 f"{H.NEGLIGIBLE:g} of the total).")
if notes:
    st.caption(" ".join(notes))
heat_col, table_col = st.columns([3, 2])
blocks, block = H.aggregate_plan(shown_plan, max_cells=100)
vega_chart(charts.plan_heatmap(blocks, block, float(x[0])), heat_col)
if block > 1:
    heat_col.caption(f"Aggregated for display: each cell sums {block} × {block} bins "
                     f"({len(x)} bins would be too fine to see). The numbers use the full plan.")
moves, share = H.top_moves(plan, x, ground, alpha, limit=15)
table_col.dataframe(pd.DataFrame(moves), hide_index=True, width="stretch",
                    column_config={c: st.column_config.NumberColumn(format="%.4f") for c in ("mass", "distance", "cost")})
table_col.caption(f"The {len(moves)} costliest of {n_moves} moves: {100 * share:.1f}% of the EMD.")
