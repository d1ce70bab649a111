"""The generic Trainer: smoke runs, reproducibility, hot updates, NaN survival, history, checkpoints."""
import math

import pytest
import torch
from torch import nn

from explorer.checkpoints import checkpoint_bytes, load_checkpoint, save_checkpoint
from explorer.choices import HOT_FIELDS
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_trainer_from_checkpoint
from explorer.training import Diverged, TrainConfig, Trainer

TINY = dict(width=16, depth=2, batch_size=32, device="cpu")


def tiny(**kw):
    return make_toy_trainer(ToyConfig(**{**TINY, **kw}))


def weights(trainer):
    return [p.detach().clone() for p in list(trainer.generator.parameters()) + list(trainer.critic.parameters())]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("loss", ["gan", "wgan", "wgan-gp"])
def test_every_loss_runs_and_records_history(loss):
    t = tiny(loss=loss, n_critic=2)
    rec = t.step(7)
    assert rec["step"] == t.step_count == 7
    assert [r["step"] for r in t.history] == list(range(1, 8))
    assert set(rec) == {"step", "loss_c", "loss_g", "w_est", "gp"}
    assert all(math.isfinite(rec[k]) for k in ("loss_c", "loss_g", "w_est"))
    assert math.isfinite(rec["gp"]) == (loss == "wgan-gp")


def test_wgan_step_leaves_critic_weights_clipped():
    t = tiny(loss="wgan", clip=0.02)
    t.step(3)
    for p in t.critic.parameters():
        assert (p.abs() <= torch.tensor(0.02)).all()


def test_same_seed_same_weights_different_seed_different_weights():
    a, b, c = tiny(seed=3), tiny(seed=3), tiny(seed=4)
    for _ in range(3):  # interleaved: trainers must not share a random stream
        a.step(4)
        c.step(4)
        b.step(4)
    assert same(weights(a), weights(b))
    assert not same(weights(a), weights(c))
    assert a.history == b.history


def test_snapshots_do_not_disturb_the_training_stream():
    from explorer.toy_training import toy_snapshot

    a, b = tiny(seed=5), tiny(seed=5)
    a.step(3)
    toy_snapshot(a, a.source, n=64, grid=8)
    a.step(3)
    b.step(6)
    assert same(weights(a), weights(b))


def test_hot_updates_reach_the_optimizers_and_the_critic_loop():
    t = tiny(n_critic=5)
    t.step(1)
    t.update(lr_g=3e-4, lr_c=2e-3, n_critic=2, lam=0.5, clip=0.1)
    assert all(g["lr"] == 3e-4 for g in t.opt_g.param_groups)
    assert all(g["lr"] == 2e-3 for g in t.opt_c.param_groups)
    assert (t.cfg.n_critic, t.cfg.lam, t.cfg.clip) == (2, 0.5, 0.1)
    p = next(t.critic.parameters())
    before = t.opt_c.state[p]["step"].item()
    t.step(1)
    assert t.opt_c.state[p]["step"].item() - before == 2  # two critic steps per generator step now


@pytest.mark.parametrize("hot, message", [
    (dict(width=64), "cannot change"),
    (dict(n_critic=0), "n_critic"),
    (dict(n_critic=2.5), "n_critic"),
    (dict(lr_g=0.0), "lr_g"),
    (dict(lr_c=float("nan")), "lr_c"),
    (dict(lam=-1), "lam"),
    (dict(clip="big"), "clip"),
])
def test_bad_hot_updates_are_rejected_and_change_nothing(hot, message):
    t = tiny()
    before = {k: getattr(t.cfg, k) for k in HOT_FIELDS}
    with pytest.raises(ValueError, match=message):
        t.update(**{"lam": 0.25, **hot})  # a good value next to a bad one: all or nothing
    assert {k: getattr(t.cfg, k) for k in HOT_FIELDS} == before


@pytest.mark.parametrize("kw, message", [
    (dict(loss="lsgan"), "Unknown loss"), (dict(optimizer="sgd"), "Unknown optimizer"),
    (dict(dataset="moons"), "Unknown dataset"), (dict(width=0), "width"), (dict(batch_size=0), "batch_size"),
    (dict(lr_g=-1.0), "lr_g"), (dict(device="tpu"), "Unknown device"), (dict(beta1=1.0), "betas"),
])
def test_bad_configs_are_rejected(kw, message):
    with pytest.raises(ValueError, match=message):
        tiny(**kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_device_is_a_clear_error():
    with pytest.raises(ValueError, match="not available"):
        tiny(device="cuda")


def test_poisoned_weight_raises_diverged_and_rolls_back_to_finite_weights():
    t = tiny()
    t.step(5)
    good = weights(t)
    with torch.no_grad():
        next(t.critic.parameters())[0, 0] = float("nan")
    with pytest.raises(Diverged, match="rolled back to step 5"):
        t.step(3)
    assert t.step_count == 5 and [r["step"] for r in t.history] == [1, 2, 3, 4, 5]
    assert same(weights(t), good)
    t.step(2)  # training can go on from the last good state
    assert t.step_count == 7


def test_nan_data_raises_diverged_with_finite_weights():
    t = tiny()
    t.step(2)
    t.sample_real = lambda n: torch.full((n, 2), float("nan"))
    with pytest.raises(Diverged, match="critic loss"):
        t.step(4)
    assert all(torch.isfinite(w).all() for w in weights(t))


def test_absurd_settings_are_caught_as_divergence():
    t = tiny(lam=1e38, lr_g=1.0, lr_c=1.0, optimizer="rmsprop")  # the penalty's gradients overflow float32
    with pytest.raises(Diverged, match="rolled back"):
        t.step(200)
    assert all(torch.isfinite(w).all() for w in weights(t))


def test_history_is_bounded_and_evenly_thinned():
    t = tiny(history_cap=8, n_critic=1)
    t.step(100)
    steps = [r["step"] for r in t.history]
    assert 4 <= len(steps) <= 8
    assert len({b - a for a, b in zip(steps, steps[1:])}) == 1  # evenly spaced
    assert steps[-1] > 60


def test_generic_trainer_trains_image_shaped_data():
    g = torch.Generator().manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 16), nn.Unflatten(1, (1, 4, 4)))
    C = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(64, 1))
    t = Trainer(TrainConfig(batch_size=8, n_critic=2, device="cpu"), G, C,
                lambda n: torch.rand(n, 1, 4, 4, generator=g), lambda n: torch.randn(n, 4, generator=g), rng=g)
    rec = t.step(3)
    assert rec["step"] == 3 and math.isfinite(rec["gp"])


def test_checkpoint_round_trip_resumes_the_same_run(tmp_path):
    a = tiny(seed=2, loss="wgan-gp")
    a.step(6)
    a.update(lr_g=7e-4)
    path = tmp_path / "run.pt"
    save_checkpoint(a, path)
    b = toy_trainer_from_checkpoint(load_checkpoint(path))
    assert b.step_count == 6 and b.history == a.history and b.cfg.lr_g == 7e-4
    assert same(weights(a), weights(b))
    a.step(4)
    b.step(4)
    assert same(weights(a), weights(b))  # optimizer and RNG state came back too
    c = toy_trainer_from_checkpoint(load_checkpoint(checkpoint_bytes(a)))
    assert same(weights(a), weights(c))


def test_damaged_or_foreign_files_are_clear_errors(tmp_path):
    data = checkpoint_bytes(tiny())
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(b"hello, I am a text file")
    foreign = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(ValueError, match="not a checkpoint saved by this app"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_architecture_or_optimizer_mismatch_is_a_clear_error():
    d = load_checkpoint(checkpoint_bytes(tiny(width=16)))
    with pytest.raises(ValueError, match="do not match"):
        tiny(width=24).load_state_dict(d)
    with pytest.raises(ValueError, match="optimizer"):
        tiny(optimizer="rmsprop").load_state_dict(d)


@pytest.mark.parametrize("change", [{"step": -1}, {"step": None}, {"stride": 0}, {"history": [1, 2]},
                                    {"history": "abc"}, {"rng": torch.zeros(3)}, {"config": "x"},
                                    {"critic": {}}])
def test_tampered_state_is_refused_and_leaves_the_trainer_untouched(change):
    d = load_checkpoint(checkpoint_bytes(tiny(seed=1)))
    d.update(change)
    t = tiny(seed=2)
    t.step(2)
    before, history = weights(t), list(t.history)
    with pytest.raises(ValueError, match="checkpoint"):
        t.load_state_dict(d)
    assert same(weights(t), before) and t.history == history and t.step_count == 2


def test_generator_step_leaves_critic_trainability_as_it_was():
    t = tiny()
    frozen = t.critic.net[0].bias
    frozen.requires_grad_(False)  # a caller's deliberately frozen parameter stays frozen
    t.step(2)
    assert not frozen.requires_grad
    assert all(p.requires_grad for p in t.critic.parameters() if p is not frozen)


@pytest.mark.parametrize("engine", ["autograd", "closed_form"])
def test_the_averaged_generator_is_the_hand_computed_average(engine):
    """ema = d_t * ema + (1 - d_t) * theta after each generator step t, d_t = min(ema, (1 + t) / (10 + t))."""
    cfg = ToyConfig(width=4, depth=1, batch_size=8, seed=2, ema=0.9, engine=engine, device="cpu")
    t = make_toy_trainer(cfg)
    assert t.engine == engine
    avg = [p.detach().clone() for p in t.generator.parameters()]
    for step in range(1, 6):
        t.step(1)
        d = min(0.9, (1 + step) / (10 + step))
        avg = [d * a + (1 - d) * p.detach() for a, p in zip(avg, t.generator.parameters())]
    for a, e in zip(avg, t.eval_generator.parameters()):
        torch.testing.assert_close(e, a, rtol=1e-6, atol=1e-7)
    assert t.eval_generator is t.ema_generator and not any(p.requires_grad for p in t.eval_generator.parameters())
    plain = make_toy_trainer(ToyConfig(width=4, depth=1, batch_size=8, seed=2))
    assert plain.eval_generator is plain.generator       # no averaging: the trained generator itself
    with pytest.raises(ValueError, match="ema"):
        ToyConfig(ema=1.0).validate()


def test_the_average_survives_a_checkpoint():
    t = make_toy_trainer(ToyConfig(width=4, depth=1, batch_size=8, seed=2, ema=0.99))
    t.step(7)
    back = toy_trainer_from_checkpoint(load_checkpoint(checkpoint_bytes(t)))
    for a, b in zip(t.eval_generator.parameters(), back.eval_generator.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dataset", ["8gaussians", "25gaussians", "swissroll", "ring", "points"])
@pytest.mark.parametrize("loss", ["gan", "wgan", "wgan-gp"])
def test_recommended_settings_validate_for_every_dataset_and_loss(dataset, loss):
    cfg = ToyConfig.recommended(dataset, loss)
    cfg.validate()
    assert (cfg.dataset, cfg.loss) == (dataset, loss)
    assert ToyConfig.recommended(dataset, loss, spread=0.02, seed=3).spread == 0.02
    assert ToyConfig.recommended(dataset, loss, width=16).width == 16      # settings on top


@pytest.mark.parametrize("loss", ["gan", "wgan", "wgan-gp"])
def test_the_tight_ring_keeps_its_own_network_and_every_recommendation_is_offered(loss):
    from explorer.choices import TOY_OFFER
    wide, tight = ToyConfig.recommended("8gaussians", loss), ToyConfig.recommended("8gaussians", loss, spread=0.02)
    assert (wide.width, wide.batch_size, wide.lr_g) == (64, 128, 2e-3)
    assert (tight.width, tight.batch_size, tight.lr_g) == (128, 256, 1e-3)
    assert ToyConfig.recommended("8gaussians", loss, spread=0.1).width == wide.width
    for name in ("width", "batch_size", "lr_g", "lr_c", "ema"):   # the 2-D page can show each of them
        assert getattr(wide, name) in TOY_OFFER[name] and getattr(tight, name) in TOY_OFFER[name]


@pytest.mark.parametrize("dataset", ["8gaussians", "25gaussians", "swissroll", "ring"])
def test_a_short_seeded_run_on_each_dataset_improves_over_its_start(dataset):
    """No timing: 300 generator steps from the recommended settings, measured as the page measures."""
    from explorer.toy_training import toy_snapshot
    t = make_toy_trainer(ToyConfig.recommended(dataset, seed=0, width=64))
    first = toy_snapshot(t, n=512, grid=8, lipschitz=False).metrics
    t.step(300)
    last = toy_snapshot(t, n=512, grid=8, lipschitz=False).metrics
    assert last["w1_exact"] < 0.7 * first["w1_exact"]
    if first["modes"] is not None:
        assert last["modes"] > first["modes"] and last["hq"] > first["hq"]


def test_a_snapshot_view_is_the_trainer_at_its_step_and_stays_so():
    """Trainer.snapshot_view: the same weights and batch-norm statistics bit for bit, its own copies
    (training on does not change them, running them does not change the trained ones)."""
    from explorer.image_training import ImageConfig, make_image_trainer, sample_images
    cfg = ImageConfig(dataset="shapes", image_size=28, batch_size=8, g_features=8, c_features=8, ema=0.9, n_metric=16)
    trainer = make_image_trainer(cfg)
    trainer.step(2)
    view = trainer.snapshot_view()
    assert view.step_count == trainer.step_count and view.history == trainer.history
    assert view.history is not trainer.history and view.extras is trainer.extras
    for name in ("generator", "critic", "ema_generator"):
        mine, theirs = getattr(view, name), getattr(trainer, name)
        assert mine is not theirs
        for a, b in zip(list(mine.parameters()) + list(mine.buffers()),
                        list(theirs.parameters()) + list(theirs.buffers())):
            assert torch.equal(a, b)
    kept = [b.clone() for b in trainer.generator.buffers()]
    noise = torch.randn(4, trainer.cfg.latent_dim)
    sample_images(view.generator, noise)        # batch norm in training mode: the view's statistics move
    assert all(torch.equal(a, b) for a, b in zip(kept, trainer.generator.buffers()))
    before = [p.clone() for p in view.critic.parameters()]
    trainer.step(2)
    assert view.step_count == 2 and len(view.history) < len(trainer.history)
    assert all(torch.equal(a, b) for a, b in zip(before, view.critic.parameters()))
    again = trainer.snapshot_view()             # the shadows are reused, brought up to date
    assert again.critic is view.critic
    assert all(torch.equal(a, b) for a, b in zip(again.critic.parameters(), trainer.critic.parameters()))
