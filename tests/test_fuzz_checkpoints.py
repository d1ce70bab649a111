"""Hostile checkpoints (a pickle that runs code, truncated, foreign, tampered) and training faults
(NaN/inf, out of memory): a clear ValueError or Diverged, the last good state kept, no code run.
"""
from __future__ import annotations

import io
import math
import pickle
import time
from functools import partial

import numpy as np
import pytest
import torch

from explorer.checkpoints import CHECKPOINT_FORMAT, load_checkpoint
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_trainer_from_checkpoint
from explorer.training import Diverged
from fuzz_inputs import TOKEN, _Evil, _msg, png_bytes, sandbox, tiny_checkpoint, zip_of  # noqa: F401


def test_malicious_pickle_checkpoint_does_not_run(tmp_path):
    marker = tmp_path / f"{TOKEN}_pwned"
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "trainer": _Evil(str(marker))}, buf)
    evil = buf.getvalue()
    # The exploit is real: torch's unrestricted loader would create the marker ...
    torch.load(io.BytesIO(evil), weights_only=False)
    assert marker.exists()
    marker.unlink()
    # ... the app's loader must not.
    for payload in (evil, pickle.dumps(_Evil(str(marker))),
                    pickle.dumps({"format": CHECKPOINT_FORMAT, "trainer": _Evil(str(marker))}, protocol=2)):
        with pytest.raises(ValueError) as err:
            load_checkpoint(payload)
        _msg(err)
        assert not marker.exists(), "loading a checkpoint ran code from the file"


@pytest.mark.parametrize("case", ["truncated", "empty", "random", "tensor", "plain-dict", "text", "zip"])
def test_foreign_or_damaged_checkpoints_are_refused(case, tiny_checkpoint):
    buf = io.BytesIO()
    torch.save(torch.zeros(3) if case == "tensor" else {"weights": torch.zeros(2)}, buf)
    data = {"truncated": tiny_checkpoint[: len(tiny_checkpoint) // 2], "empty": b"",
            "random": np.random.default_rng(0).bytes(4096), "tensor": buf.getvalue(),
            "plain-dict": buf.getvalue(), "text": b"hello world\n" * 10,
            "zip": zip_of({"a.png": png_bytes()})}[case]
    with pytest.raises(ValueError) as err:
        load_checkpoint(data)
    _msg(err)


def test_checkpoint_of_another_architecture_is_refused(tiny_checkpoint):
    other = make_toy_trainer(ToyConfig(seed=0, width=16, depth=2, batch_size=16))
    with pytest.raises(ValueError) as err:
        other.load_state_dict(load_checkpoint(tiny_checkpoint))
    assert "match" in _msg(err)


TAMPERED = {   # a checkpoint saved by the app, then edited by hand before upload
    "config-not-a-dict": {"config": "x"},
    "unknown-loss": {"config": {"loss": "evil"}},
    "huge-width": {"config": {"width": 10**9}},
    "bad-device": {"config": {"device": "tpu"}},
    "nan-spread": {"config": {"spread": float("nan")}},
    "seed-text": {"config": {"seed": "x"}},
    "history-of-ints": {"history": [1, 2]},
    "history-text": {"history": "abc"},
    "step-none": {"step": None},
    "step-text": {"step": "abc"},
    "step-negative": {"step": -5},
    "stride-zero": {"stride": 0},
    "rng-garbage": {"rng": torch.zeros(3)},
    "generator-empty": {"generator": {}},
    "optimizer-empty": {"opt_g": {}},
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_checkpoint_is_refused_or_usable(case, tiny_checkpoint):
    """Either a clear ValueError on load, or a trainer that can take another step."""
    state = load_checkpoint(tiny_checkpoint)
    change = TAMPERED[case]
    if "config" in change and isinstance(change["config"], dict):
        state["config"] = dict(state["config"], **change["config"])
    else:
        state.update(change)
    try:
        trainer = toy_trainer_from_checkpoint(state)
    except ValueError as err:
        assert len(str(err)) > 15
        return
    trainer.step(2)   # any other exception here or above is a crash
    assert trainer.step_count >= 2 and trainer.step_count >= 0


def test_checkpoint_path_that_does_not_exist():
    with pytest.raises((ValueError, FileNotFoundError)):
        load_checkpoint(f"{TOKEN}-missing.pt")


# ----------------------------------------------------------------------------- training faults (core)
def _tiny(**kw) -> ToyConfig:
    return ToyConfig(**{"seed": 0, "width": 8, "depth": 1, "batch_size": 16, "n_critic": 1, **kw})


def test_nan_data_stops_the_run_and_keeps_the_last_good_state():
    trainer = make_toy_trainer(_tiny())
    trainer.step(25)                       # one checked chunk: a good state at step 25
    good = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    real = trainer.sample_real
    trainer.sample_real = lambda n: real(n) * float("nan")
    with pytest.raises(Diverged) as err:
        trainer.step(10)
    assert "diverged" in _msg(err).lower() and "rolled back" in str(err.value)
    assert trainer.step_count == 25
    for k, v in trainer.generator.state_dict().items():
        assert torch.equal(v, good[k]), k
    trainer.sample_real = real              # the run can continue from the good state
    trainer.step(5)
    assert trainer.step_count == 30


def test_inf_learning_rate_is_refused_and_huge_one_diverges_cleanly():
    trainer = make_toy_trainer(_tiny(loss="wgan"))
    for bad in (math.inf, math.nan, -1.0, 0.0, 2.0, "fast", None):
        with pytest.raises(ValueError):
            trainer.update(lr_c=bad)
    with pytest.raises(ValueError):
        trainer.update(width=3)
    with pytest.raises(ValueError):
        trainer.update(n_critic=2.5)


def test_out_of_memory_in_a_run_ends_it_with_a_message():
    """Simulated GPU OOM inside a real toy run in a worker: the run stops in state 'error' with a
    message and the last snapshot stays. (There is no automatic fallback to the CPU.)"""
    from explorer.pool import Pool
    from explorer.session import Session

    pool = Pool(size=1)
    session = Session(partial(oom_after, _tiny(), 2), step_of, steps_per_tick=1, snapshot_every_s=0.0, pool=pool)
    try:
        assert session.start()
        deadline = time.monotonic() + 30
        while session.state == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session.state == "error" and "memory" in session.message.lower()
        assert session.latest() is not None
    finally:
        session.close()
        pool.shutdown()


def oom_after(cfg: ToyConfig, chunks: int):
    """A toy trainer whose step() raises torch's GPU out-of-memory error after `chunks` calls."""
    trainer = make_toy_trainer(cfg)
    calls = {"n": 0}
    step = trainer.step

    def step_then_oom(n=1):
        calls["n"] += 1
        if calls["n"] > chunks:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return step(n)

    trainer.step = step_then_oom
    return trainer


def step_of(trainer) -> dict:
    return {"step": trainer.step_count}
