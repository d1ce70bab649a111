"""A well-formed but hostile checkpoint is refused cheaply: before any network, optimizer or history is
built from it, and without changing anything in the process (issue: "One small upload must not take
the box down"). Each row of the issue's table is a test here; none times anything: the proof of
"cheap" is that the code which would build or read is replaced by a tripwire and never reached.
(CSV, pasted histograms and image uploads: test_upload_bounds.py; per-visitor budgets: test_visitor_budget.py.)
"""
from __future__ import annotations

import io
import math
import os
import zipfile

import pytest
import torch

from explorer import checkpoints, image_training, toy_training, training
from explorer.checkpoints import (
    CHECKPOINT_FORMAT,
    MAX_CHECKPOINT_BYTES,
    MAX_PICKLE_BYTES,
    checkpoint_bytes,
    load_checkpoint,
)
from explorer.choices import IMAGE_OFFER, TOY_OFFER, largest
from explorer.image_training import ImageConfig, make_image_trainer
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_trainer_from_checkpoint
from explorer.upload_checks import MAX_STEPS, meta_networks
from fuzz_inputs import _msg


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def toy_state() -> bytes:
    """A small genuine 2-D checkpoint (the file a hostile visitor starts from)."""
    trainer = make_toy_trainer(ToyConfig(seed=0, width=8, depth=1, batch_size=16, n_critic=1))
    trainer.step(3)
    return checkpoint_bytes(trainer)


def crafted(state_bytes: bytes, **change) -> bytes:
    """The genuine file with parts replaced (config keys merged), saved as torch.save writes it."""
    state = load_checkpoint(state_bytes)
    config = change.pop("config", {})
    state["config"] = dict(state["config"], **config)
    state.update(change)
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "trainer": state}, buf)
    return buf.getvalue()


def _tripwire(what: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} was reached: the file should have been refused before")
    return fail


@pytest.fixture
def nothing_built(monkeypatch):
    """Fail the test if a trainer, an initialized network or an optimizer is made."""
    monkeypatch.setattr(toy_training, "make_toy_trainer", _tripwire("make_toy_trainer"))
    monkeypatch.setattr(toy_training, "init_linear", _tripwire("init_linear"))
    monkeypatch.setattr(image_training, "make_image_trainer", _tripwire("make_image_trainer"))
    monkeypatch.setattr(image_training, "build_networks", _tripwire("build_networks"))
    monkeypatch.setattr(training.Trainer, "__init__", _tripwire("Trainer()"))


def _process_settings() -> dict:
    return {"threads": torch.get_num_threads(), "interop": torch.get_num_interop_threads(),
            "dtype": torch.get_default_dtype(), "env": dict(os.environ)}


def refused(data: bytes) -> str:
    """The sentence a toy upload is refused with; process settings must be untouched."""
    before = _process_settings()
    with pytest.raises(ValueError) as err:
        toy_trainer_from_checkpoint(load_checkpoint(data))
    assert _process_settings() == before
    return _msg(err)


# ----------------------------------------------------------------------------- the table
@pytest.mark.parametrize("config", [{"width": 4096, "depth": 16, "noise_dim": 256}, {"width": 2048, "depth": 16}],
                         ids=["4096x16-noise256", "2048x16"])
def test_oversized_networks_are_refused_before_any_is_built(config, toy_state, nothing_built):
    text = refused(crafted(toy_state, config=config))
    assert "larger than this app offers" in text and "width" in text and "512" in text


def test_a_width_the_core_allows_but_no_page_offers_is_refused(toy_state, nothing_built):
    """make_toy_trainer builds width 1024 for the command line; an upload may not declare it."""
    assert ToyConfig(width=1024).validate() is None
    assert "width 1,024" in refused(crafted(toy_state, config={"width": 1024}))


@pytest.mark.parametrize("records", [20_000_000, 2_000_000])
def test_a_history_of_millions_of_records_is_refused_from_the_file_size(records, tmp_path, monkeypatch):
    """The file such a history makes (73 bytes a record) is refused from its size alone: nothing read."""
    path = tmp_path / "history.pt"
    with path.open("wb") as f:
        f.truncate(records * 73)            # sparse: the size without the bytes
    monkeypatch.setattr(torch, "load", _tripwire("torch.load"))
    monkeypatch.setattr(type(path), "read_bytes", _tripwire("reading the file"))
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    assert "MB" in _msg(err)


def test_an_oversized_stream_is_read_only_up_to_the_cap():
    class Endless(io.RawIOBase):
        read_bytes = 0

        def readinto(self, b):
            self.read_bytes += len(b)
            b[:] = bytes(len(b))
            return len(b)

    stream = Endless()
    with pytest.raises(ValueError):
        load_checkpoint(io.BufferedReader(stream))
    assert stream.read_bytes <= MAX_CHECKPOINT_BYTES + 2 * io.DEFAULT_BUFFER_SIZE


def test_a_history_too_long_to_unpickle_is_refused_before_torch_reads_it(toy_state, monkeypatch):
    record = {"step": 1, "loss_c": 0.1, "loss_g": 0.2, "w_est": 0.3, "gp": 0.4}
    data = crafted(toy_state, history=[dict(record, step=i) for i in range(20_000)])
    assert len(data) < MAX_CHECKPOINT_BYTES          # small enough a file ...
    monkeypatch.setattr(torch, "load", _tripwire("torch.load"))
    with pytest.raises(ValueError) as err:           # ... but an object tree over the cap
        load_checkpoint(data)
    assert "history" in _msg(err)


def test_a_history_over_the_app_cap_is_thinned_with_a_sentence(toy_state):
    record = {"step": 1, "loss_c": 0.1, "loss_g": 0.2, "w_est": 0.3, "gp": float("nan")}
    state = load_checkpoint(crafted(toy_state, history=[dict(record, step=1 + i % 3) for i in range(12_000)]))
    cfg, note = toy_training.check_toy_checkpoint(state)
    assert len(state["history"]) <= training.TrainConfig.history_cap and "thinned" in note
    assert len(toy_trainer_from_checkpoint(state).history) <= cfg.history_cap


def test_process_settings_in_a_config_are_ignored(toy_state):
    """cpu_threads (and any other field the config does not have) never reaches torch or the environment;
    the device is the app's choice, not the file's."""
    before = _process_settings()
    data = crafted(toy_state, config={"cpu_threads": 256, "threads": 256, "num_threads": 256,
                                      "cache_dir": "/", "device": "cuda" if not torch.cuda.is_available() else "mps"})
    trainer = toy_trainer_from_checkpoint(load_checkpoint(data), device="cpu")
    trainer.step(1)
    assert _process_settings() == before
    assert trainer.device.type == "cpu" and trainer.cfg.device == "cpu"


@pytest.mark.parametrize("step", [2**62, MAX_STEPS + 1, -1, True, 1.5])
def test_step_counters_out_of_range_are_refused(step, toy_state, nothing_built):
    assert "step counter" in refused(crafted(toy_state, step=step))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", ["generator", "critic"])
def test_nan_or_inf_weights_are_refused(where, bad, toy_state, nothing_built):
    state = load_checkpoint(toy_state)
    weights = dict(state[where])
    name = next(iter(weights))
    weights[name] = weights[name].clone().fill_(bad)
    text = refused(crafted(toy_state, **{where: weights}))
    assert "NaN or infinite" in text and name in text


# ----------------------------------------------------------------------------- the rest of the file
def test_nan_optimizer_moments_and_misshapen_ones_are_refused(toy_state, nothing_built):
    state = load_checkpoint(toy_state)
    for value in (torch.full((1,), math.nan), torch.zeros(3, 3)):
        opt = {"state": {k: dict(v) for k, v in state["opt_c"]["state"].items()},
               "param_groups": state["opt_c"]["param_groups"]}
        first = next(iter(opt["state"]))
        shape = opt["state"][first]["exp_avg"].shape
        opt["state"][first]["exp_avg"] = value.expand(shape).clone() if value.numel() == 1 else value
        assert "optimizer state" in refused(crafted(toy_state, opt_c=opt))


def test_a_file_cannot_choose_the_optimizer_settings(toy_state):
    """eps 0 (division by zero), a huge weight decay or another kernel: the trainer keeps its own."""
    state = load_checkpoint(toy_state)
    groups = [dict(g, eps=0.0, weight_decay=1e9, maximize=True, capturable=True)
              for g in state["opt_g"]["param_groups"]]
    hostile = crafted(toy_state, opt_g=dict(state["opt_g"], param_groups=groups))
    trainer = toy_trainer_from_checkpoint(load_checkpoint(hostile))
    fresh = make_toy_trainer(trainer.cfg)
    for kept, own in zip(trainer.opt_g.param_groups, fresh.opt_g.param_groups):
        assert {k: v for k, v in kept.items() if k != "params"} == {k: v for k, v in own.items() if k != "params"}
    trainer.step(2)


@pytest.mark.parametrize("change", [
    {"rng": torch.zeros(10**6, dtype=torch.uint8)}, {"rng": torch.zeros(5056)},
    {"history": [{"step": 1, "loss_c": math.inf, "loss_g": 0.0, "w_est": 0.0, "gp": 0.0}]},
    {"history": [{"step": 10**6, "loss_c": 0.0, "loss_g": 0.0, "w_est": 0.0, "gp": 0.0}]},
    {"stride": 2**40}, {"config": {"history_cap": 10**9}}, {"config": {"batch_size": 65_536}},
    {"config": {"n_critic": 100}}, {"generator": {}},
], ids=["rng-huge", "rng-float", "history-inf", "history-beyond-step", "stride", "history-cap", "batch", "n-critic",
        "no-weights"])
def test_other_out_of_range_contents_are_refused_before_building(change, toy_state, nothing_built):
    refused(crafted(toy_state, **change))


def test_the_pages_largest_toy_checkpoint_fits_the_caps_and_resumes():
    """The worst file the 2-D page can write (its largest settings, a full history) is accepted."""
    top = {name: largest(TOY_OFFER[name]) for name in ("width", "depth", "batch_size", "n_critic")}
    trainer = make_toy_trainer(ToyConfig(**top, ema=largest(TOY_OFFER["ema"])))   # with its averaged generator
    record = {"step": 0, "loss_c": -0.123456789, "loss_g": 1.23456789, "w_est": 0.123456789, "gp": math.nan}
    trainer.history = [dict(record, step=0) for _ in range(training.TrainConfig.history_cap)]
    data = checkpoint_bytes(trainer)
    tree = next(i for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if i.filename.endswith("data.pkl"))
    assert len(data) <= toy_training.UPLOAD_BYTES <= MAX_CHECKPOINT_BYTES and tree.file_size <= MAX_PICKLE_BYTES
    resumed = toy_training.toy_trainer_from_bytes(data)
    assert resumed.cfg.width == top["width"] and len(resumed.history) == training.TrainConfig.history_cap


def test_the_pages_largest_image_checkpoint_fits_the_cap():
    """Counted on the meta device: weights, Adam's two moments and the averaged generator of the Image GAN
    page's largest run, under every norm; a file one byte over the page's cap is refused before it is read."""
    top = {name: largest(IMAGE_OFFER[name]) for name in ("image_size", "channels", "latent_dim", "g_features",
                                                         "c_features")}
    for norm in ("batch", "instance", "layer", "none"):
        G, C = meta_networks(image_training._networks, ImageConfig(**top, g_norm=norm, c_norm=norm))
        weights = sum(p.numel() for net in (G, C) for p in net.parameters())
        buffers = sum(b.numel() for net in (G, C) for b in net.buffers())
        averaged = sum(t.numel() for t in (*G.parameters(), *G.buffers()))   # the averaged generator's copy
        assert (4 * (3 * weights + buffers + averaged) + MAX_PICKLE_BYTES <= image_training.UPLOAD_BYTES
                <= MAX_CHECKPOINT_BYTES)
    with pytest.raises(ValueError, match="MB"):
        image_training.describe_image_checkpoint(bytes(image_training.UPLOAD_BYTES + 1))


# ----------------------------------------------------------------------------- the archive itself
def test_a_compressed_archive_is_refused(toy_state):
    repacked = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(toy_state)) as src, zipfile.ZipFile(repacked, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with pytest.raises(ValueError) as err:
        load_checkpoint(repacked.getvalue())
    assert "packed differently" in _msg(err)


def test_an_archive_declaring_many_entries_is_refused_before_its_directory_is_parsed(toy_state, monkeypatch):
    end = toy_state.rfind(b"PK\x05\x06")
    many = bytearray(toy_state)
    many[end + 8:end + 12] = (60_000).to_bytes(2, "little") * 2     # entries on this disk, and in all
    monkeypatch.setattr(zipfile, "ZipFile", _tripwire("zipfile.ZipFile"))
    with pytest.raises(ValueError) as err:
        load_checkpoint(bytes(many))
    assert "entries" in _msg(err)


# ----------------------------------------------------------------------------- image checkpoints
@pytest.fixture(scope="module")
def image_state() -> bytes:
    trainer = make_image_trainer(ImageConfig.for_loss("gan", batch_size=8, g_features=8, c_features=8,
                                                      latent_dim=16, n_metric=16))
    trainer.step(1)
    return checkpoint_bytes(trainer)


@pytest.mark.parametrize("config", [{"g_features": 512}, {"latent_dim": 1024}, {"image_size": 64, "c_features": 128},
                                    {"n_metric": 10_000}, {"batch_size": 4096}])
def test_oversized_image_checkpoints_are_refused_before_any_network_is_built(config, image_state, nothing_built):
    data = crafted(image_state, config=config)
    before = _process_settings()
    for use in (image_training.image_trainer_from_bytes, image_training.describe_image_checkpoint,
                image_training.samples_from_checkpoint):
        with pytest.raises(ValueError) as err:
            use(data)
        assert "larger than this app offers" in _msg(err)
    assert _process_settings() == before


def test_nan_image_weights_are_refused_even_for_sampling(image_state, nothing_built):
    state = load_checkpoint(image_state)
    weights = {k: v.clone().fill_(math.nan) if v.is_floating_point() else v for k, v in state["generator"].items()}
    data = crafted(image_state, generator=weights)
    for use in (image_training.samples_from_checkpoint, image_training.describe_image_checkpoint):
        with pytest.raises(ValueError) as err:
            use(data)
        assert "NaN" in _msg(err)


def test_an_image_checkpoint_runs_on_the_apps_device(image_state):
    data = crafted(image_state, config={"device": "cuda" if not torch.cuda.is_available() else "mps",
                                        "cpu_threads": 256})
    before = _process_settings()
    found = image_training.describe_image_checkpoint(data, device="cpu")
    trainer = image_training.image_trainer_from_bytes(data, device="cpu")
    assert found["config"]["device"] == "cpu" and trainer.device.type == "cpu"
    assert _process_settings() == before


def test_checkpoint_caps_sit_where_the_docstrings_say():
    assert checkpoints.MAX_PICKLE_BYTES < checkpoints.MAX_CHECKPOINT_BYTES
    assert toy_training.UPLOAD_LIMITS["width"] == 512 and toy_training.UPLOAD_LIMITS["depth"] == 6
    assert image_training.UPLOAD_LIMITS["g_features"] == 64 and image_training.UPLOAD_LIMITS["n_metric"] == 256


def test_nan_weights_in_the_averaged_generator_are_refused(request):
    trainer = make_toy_trainer(ToyConfig(seed=0, width=8, depth=1, batch_size=16, n_critic=1, ema=0.99))
    trainer.step(2)
    data = checkpoint_bytes(trainer)
    request.getfixturevalue("nothing_built")      # from here on, nothing may be built
    state = load_checkpoint(data)
    weights = dict(state["ema_generator"])
    name = next(iter(weights))
    weights[name] = weights[name].clone().fill_(math.nan)
    text = refused(crafted(data, ema_generator=weights))
    assert "NaN or infinite" in text and name in text


def test_nan_is_found_in_the_files_bytes_before_torch_copies_any_tensor(toy_state, monkeypatch):
    state = load_checkpoint(toy_state)
    moments = {k: dict(v) for k, v in state["opt_c"]["state"].items()}
    first = next(iter(moments.values()))
    first["exp_avg_sq"] = first["exp_avg_sq"].clone().fill_(math.inf)
    bad_moments = crafted(toy_state, opt_c=dict(state["opt_c"], state=moments))
    weights = dict(state["critic"])
    name = next(iter(weights))
    weights[name] = weights[name].clone()
    weights[name].view(-1)[-1] = math.nan                     # one NaN at the very end of a tensor
    bad_weights = crafted(toy_state, critic=weights)
    loads, real_load = [], torch.load
    monkeypatch.setattr(checkpoints.torch, "load", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    with pytest.raises(ValueError) as err:
        load_checkpoint(bad_weights)
    assert "critic weights hold NaN or infinite" in _msg(err) and name in _msg(err)
    with pytest.raises(ValueError, match=r"optimizer state \(opt_c\).*exp_avg_sq"):
        load_checkpoint(bad_moments)
    assert loads == []                                       # refused before torch read a tensor
    load_checkpoint(toy_state)
    assert loads == [1]                                      # a clean file goes on to torch.load


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_every_float_type_is_checked_in_place(dtype):
    good = torch.linspace(-3, 3, 2000, dtype=dtype)
    bad = good.clone()
    bad[1234] = math.nan
    for tensor, fine in ((good, True), (bad, False), (good.clone().fill_(-math.inf), False)):
        buf = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "trainer": {"critic": {"w": tensor}}}, buf)
        if fine:
            assert load_checkpoint(buf.getvalue())["critic"]["w"].dtype == dtype
        else:
            with pytest.raises(ValueError, match=r"critic weights hold NaN or infinite values \(w\)"):
                load_checkpoint(buf.getvalue())
