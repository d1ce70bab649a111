"""Lock-step comparisons: shared data and weights, presets, strips, critic-only mode, grids."""
import io
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from explorer import compare as C
from explorer import grid as Grid
from explorer import plots
from explorer.toy_training import ToyConfig, make_toy_trainer

TINY = ToyConfig(width=16, depth=1, batch_size=32, n_critic=2, device="cpu")


@pytest.fixture
def float64_default():
    """float64 everywhere, so that two engines doing the same maths agree to round-off."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def small(cfg: C.CompareConfig, **kw) -> C.CompareConfig:
    return replace(cfg, n=32, grid=12, **kw)


def test_identical_configs_give_identical_frames():
    cfg = small(C.CompareConfig(base=TINY, runs=[{"loss": "wgan-gp"}] * 3), strip_every=0)
    runs = C.make_runs(cfg)
    runs.step(7)
    snap = runs.snapshot()
    first = snap.panels[0]
    for p in snap.panels[1:]:
        assert np.array_equal(p.field, first.field) and np.array_equal(p.fake, first.fake)
        assert p.metrics["w1_exact"] == first.metrics["w1_exact"]


def test_live_frames_use_the_live_lattice_and_still_ones_the_full_one():
    runs = C.make_runs(small(C.CompareConfig(base=TINY), strip_every=0, live_grid=8))
    runs.step(3)
    live, still = C.take_snapshot(runs), C.take_still_snapshot(runs)
    assert all(p.field.shape == (8, 8) for p in live.panels)
    assert all(p.field.shape == (12, 12) for p in still.panels)
    assert np.array_equal(live.panels[0].fake, still.panels[0].fake)   # the same generator, the same noise
    with pytest.raises(ValueError, match="live_grid"):
        small(C.CompareConfig(base=TINY), live_grid=4).validate()


def test_a_view_of_the_runs_draws_what_the_runs_would():
    runs = C.make_runs(small(C.CompareConfig(base=TINY), strip_every=0))
    runs.step(3)
    view = runs.snapshot_view()
    runs.step(2)                                  # training goes on: the view stays at step 3
    drawn = C.take_still_snapshot(view)
    assert drawn.step == 3 and runs.step_count == 5
    again = C.make_runs(small(C.CompareConfig(base=TINY), strip_every=0))
    again.step(3)
    inline = C.take_still_snapshot(again)
    for p, q in zip(drawn.panels, inline.panels):
        assert np.array_equal(p.field, q.field) and np.array_equal(p.fake, q.fake)
        assert p.metrics["w1_exact"] == q.metrics["w1_exact"]
    assert C.Lockstep(runs.trainers + [object()], ["a", "b", "c"], C.take_snapshot).snapshot_view() is None


def test_runs_share_initial_weights_and_data_stream():
    runs = C.make_runs(small(C.preset_config("GAN vs WGAN-GP", TINY), strip_every=0))
    a, b = runs.trainers
    for p, q in zip(list(a.generator.parameters()) + list(a.critic.parameters()),
                    list(b.generator.parameters()) + list(b.critic.parameters())):
        assert torch.equal(p, q)
    assert torch.equal(a.sample_real(8), b.sample_real(8))     # each its own generator, seeded alike
    assert torch.equal(a.sample_noise(8), b.sample_noise(8))
    assert a.cfg.loss == "gan" and b.cfg.loss == "wgan-gp"


def test_presets_differ_only_in_what_they_compare():
    for name, runs in C.PRESETS.items():
        cfg = C.preset_config(name, TINY)
        cfg.validate()
        assert 2 <= len(cfg.runs) <= 4 and len(cfg.labels) == len(cfg.runs)
        varied = {k for over in cfg.runs for k in over if len({str(o.get(k)) for o in cfg.runs}) > 1}
        assert varied, name
    assert C.CompareConfig().runs == [{"loss": "wgan-gp", "lam": 10.0, "n_critic": 5},
                                      {"loss": "wgan", "clip": 0.01, "n_critic": 5}]


def test_recommended_runs_start_from_each_loss_recommendation_and_share_the_base_network():
    base = replace(TINY, dataset="25gaussians", width=24, seed=3)
    cfg = C.preset_config("GAN vs WGAN-GP", base, recommended=True)
    runs = cfg.run_configs()
    for run, over in zip(runs, cfg.runs):
        rec = ToyConfig.recommended("25gaussians", over["loss"])
        assert (run.width, run.seed, run.batch_size) == (24, 3, base.batch_size)
        assert run.ema == rec.ema and run.loss == over["loss"]
    assert runs[1].lam == ToyConfig.recommended("25gaussians", "wgan-gp").lam
    plain = C.preset_config("GAN vs WGAN-GP", base).run_configs()
    assert [r.ema for r in plain] == [base.ema, base.ema]


def test_lockstep_steps_and_strip_at_exact_steps():
    runs = C.make_runs(small(C.preset_config("1 vs 5 critic iterations", TINY), strip_every=4, strip_max=4))
    runs.step(3)
    runs.step(10)
    assert [t.step_count for t in runs.trainers] == [13, 13] and runs.step_count == 13
    # frames at 0, 4, 8, 12 then a fifth would overflow: kept every other, interval doubled
    assert [s.step for s in runs.strip] == [0, 4, 8, 12]
    runs.step(4)
    assert [s.step for s in runs.strip] == [0, 8, 16] and runs.strip_every == 8
    assert C.strip_steps(runs) == [0, 8, 16] and [s.step for s in C.strip_frames(runs)] == [0, 8, 16]
    png = plots.strip_sheet_png(runs.strip)
    sheet = Image.open(io.BytesIO(png))
    row = plots.strip_images(runs.strip[:1])[0]
    assert sheet.size == (row.shape[1] // 2 * 3, row.shape[0] * 2)   # 3 steps across, 2 runs down
    gif = Image.open(io.BytesIO(plots.strip_gif(runs.strip)))
    assert gif.n_frames == 3


def test_validation_messages():
    with pytest.raises(ValueError, match="two to four"):
        C.CompareConfig(base=TINY, runs=[{}]).validate()
    with pytest.raises(ValueError, match="may change only"):
        C.CompareConfig(base=TINY, runs=[{}, {"width": 8}]).validate()
    with pytest.raises(ValueError, match="lam"):
        C.CompareConfig(base=TINY, runs=[{}, {"lam": -1}]).validate()
    with pytest.raises(ValueError, match="Unknown preset"):
        C.preset_config("nope")
    with pytest.raises(ValueError, match="colour scale"):
        plots.scaled_panels([], "rainbow")


def test_scaled_panels_share_a_range():
    runs = C.make_runs(small(C.preset_config("WGAN-GP vs weight clipping", TINY), strip_every=0))
    runs.step(5)
    panels = runs.snapshot().panels
    std = plots.scaled_panels(panels, "standardized, shared")
    assert std[0][1] == std[1][1] and std[0][2] == std[1][2]
    for p, lo, hi in std:
        assert abs(p.field.mean()) < 1e-6 and p.field.std() == pytest.approx(1.0, rel=1e-6)
        assert lo <= p.field.min() and p.field.max() <= hi
    assert all(lo is None for _, lo, _ in plots.scaled_panels(panels, "per panel"))
    raw = plots.scaled_panels(panels, "raw, shared")
    assert raw[0][1] == min(float(p.field.min()) for p in panels)


def test_critic_only_gp_gives_unit_gradient_norms_and_clipping_does_not():
    cfg = C.CriticOnlyConfig(datasets=("8gaussians",), width=32, depth=2, batch_size=128, n=128, grid=16,
                             device="cpu")
    runs = C.make_critic_only(cfg)
    runs.step(300)
    snap = runs.snapshot()
    clip, gp = (p.metrics for p in snap.panels)
    assert "clipping" in snap.labels[0] and "penalty" in snap.labels[1]
    assert abs(gp["gp_grad_norm_mean"] - 1.0) < 0.1
    assert clip["gp_grad_norm_mean"] < 0.1          # a 0.01-clipped critic is far flatter than 1-Lipschitz
    assert snap.panels[0].fake.shape == (128, 2) and np.isfinite(snap.panels[1].field).all()


def test_critic_only_fixed_generator_is_data_plus_unit_noise():
    t = C.CriticOnlyTrainer(C.CriticOnlyConfig(width=8, depth=1, device="cpu"), "8gaussians", "gp")
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    noise = t.fake(20_000, g1) - t.source.sample(20_000, g2)
    assert float(noise.std()) == pytest.approx(1.0, abs=0.02)


def test_grid_runs_snapshot_and_table():
    cfg = Grid.GridConfig(base=replace(TINY, width=8), field_a="lam", values_a=(0.1, 10.0),
                          field_b="n_critic", values_b=(1, 2), n=32, grid=8)
    runs = Grid.make_grid(cfg)
    runs.step(6)
    snap = runs.snapshot()
    assert snap.step == runs.step_count == 6 and len(snap.panels) == 4 and snap.labels[0] == "lam=0.1, n_critic=1"
    table = Grid.grid_table(snap, cfg.member_configs(), ["lam", "n_critic"])
    w1 = table["W1 exact"].tolist()
    assert w1 == sorted(w1) and set(table["lam"]) == {0.1, 10.0}
    with pytest.raises(ValueError, match="at most 16"):
        Grid.GridConfig(values_a=tuple(range(1, 10))).member_configs()
    with pytest.raises(ValueError, match="can vary"):
        Grid.GridConfig(field_a="width").member_configs()


def test_a_grid_member_is_the_lone_run_with_its_settings():
    cfg = Grid.GridConfig(base=replace(TINY, width=8), field_a="lam", values_a=(0.1, 10.0),
                          field_b="seed", values_b=(0, 3), n=32, grid=8)
    runs = Grid.make_grid(cfg)
    runs.step(5)
    lone = make_toy_trainer(replace(TINY, width=8, lam=10.0, seed=3))
    lone.step(5)
    member = runs.trainers[3]                                  # lam 10, seed 3 (row-major)
    assert (member.cfg.lam, member.cfg.seed) == (10.0, 3)
    for a, b in zip(member.generator.parameters(), lone.generator.parameters()):
        assert torch.equal(a, b)
