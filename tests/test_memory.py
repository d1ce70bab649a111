"""Memory: out-of-memory errors end a run cleanly, critic fields are computed in small chunks,
and the frames a Session keeps for a GIF are small (no history copy)."""
import multiprocessing
import threading
import time
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from explorer import critic_field as critic_field_mod
from explorer import session as session_mod
from explorer.critic_field import FIELD_CHUNK, critic_field, lattice
from explorer.pool import Pool
from explorer.session import Session
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot
from explorer.worker import Worker
from session_fakes import OomTrainer, step_snap


def wait_for(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not cond():
        time.sleep(0.01)
    return cond()


@pytest.fixture(scope="module")
def pool():
    p = Pool(size=1)
    yield p
    p.shutdown()


@pytest.fixture
def fake_gpu(monkeypatch):
    """Pretend a GPU is there and count empty_cache() calls (the real ones need CUDA)."""
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(threading.current_thread().name))
    return calls


def test_gpu_out_of_memory_in_the_worker_ends_the_run_cleanly(pool):
    s = Session(partial(OomTrainer, "cuda", 30), step_snap, pool=pool, snapshot_every_s=0.01, steps_per_tick=1)
    try:
        assert s.start()
        assert wait_for(lambda: s.state == "error")
        assert "out of memory on the GPU" in s.message and "smaller batch size" in s.message
        assert "Tried to allocate" not in s.message          # the sentence, not torch's text
        assert 0 < s.latest().step <= 30                     # the last good snapshot stays
        assert session_mod.running_count() == 0              # its slot is free for others
        assert not s.start() and "Press Reset" in s.message
    finally:
        s.close()


def test_a_failed_step_hands_gpu_memory_back(fake_gpu):
    """The worker's own loop, driven in this process over a pipe, so the fake GPU is seen."""
    ours, theirs = multiprocessing.Pipe()
    worker = Worker(theirs)
    serving = threading.Thread(target=worker.serve, daemon=True)
    serving.start()
    try:
        ours.send(("open", 1, partial(OomTrainer, "cuda", 5), step_snap, None, {"steps_per_tick": 1}, {}, 7))
        assert _next(ours, "reply")[2] is True
        ours.send(("start", 1, 1))
        while _next(ours, "run")[2]["state"] != "error":
            pass
        assert fake_gpu                                      # the cache was handed back
    finally:
        ours.send(("exit",))
        serving.join(5)
        worker.close()


def _next(conn, verb: str) -> tuple:
    while True:
        assert conn.poll(10), f"no {verb!r} message from the worker"
        message = conn.recv()
        if message[0] == verb:
            return message


def test_memory_error_in_a_manual_step_keeps_the_snapshot(pool):
    s = Session(partial(OomTrainer, "memory", 3), step_snap, pool=pool)
    try:
        assert s.step(2).step == 2
        assert s.step(5).step == 2                           # failed: the last good snapshot comes back
        assert s.state == "error" and s.message.startswith("Ran out of memory: try a smaller")
        assert "GPU" not in s.message
    finally:
        s.close()


def test_other_errors_keep_their_own_message(pool):
    s = Session(partial(OomTrainer, "diverged", 4), step_snap, pool=pool)
    try:
        s.step(6)
        assert s.state == "error" and s.message == "Training diverged at step 4."
    finally:
        s.close()


def _field_in_one_batch(critic: nn.Module, lim: float, grid: int) -> tuple[np.ndarray, np.ndarray]:
    x = lattice(lim, grid, "cpu").requires_grad_(True)
    out = critic(x).reshape(-1)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach().reshape(grid, grid).numpy(), g.norm(dim=1).reshape(grid, grid).numpy()


def test_critic_field_in_chunks_matches_one_batch_and_stays_small(monkeypatch):
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
    batches = []
    one_pass = critic_field_mod.values_and_grads   # (a ReLU MLP's closed form calls no module hooks)
    monkeypatch.setattr(critic_field_mod, "values_and_grads", lambda c, x: (batches.append(len(x)), one_pass(c, x))[1])
    grid = 70                                                # 4900 points: 2 full chunks and a part
    vals, norms = critic_field(critic, lim=2.5, grid=grid)
    assert max(batches) <= FIELD_CHUNK and sum(batches) == grid * grid and len(batches) >= 3
    want_vals, want_norms = _field_in_one_batch(critic, 2.5, grid)
    assert vals.dtype == np.float32 and vals.shape == (grid, grid)
    np.testing.assert_allclose(vals, want_vals, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norms, want_norms, rtol=1e-5, atol=1e-6)


def test_toy_snapshot_field_matches_one_batch_and_history_is_a_snapshot():
    t = make_toy_trainer(ToyConfig(width=16, depth=2, batch_size=32, device="cpu"))
    t.step(3)
    s = toy_snapshot(t, t.source, n=32, grid=48)
    want_vals, want_norms = _field_in_one_batch(t.critic, t.source.lim, 48)
    np.testing.assert_allclose(s.field, want_vals, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.grad_norm_field, want_norms, rtol=1e-5, atol=1e-6)
    assert s.history == t.history and s.history is not t.history
    t.step(2)
    assert [r["step"] for r in s.history] == [1, 2, 3]        # later steps do not reach the snapshot
    frame = s.as_frame()
    assert frame.history == [] and frame.step == 3 and frame.field is s.field and s.history


def test_session_keeps_frames_without_history(pool):
    s = Session(partial(make_toy_trainer, ToyConfig(width=8, depth=1, batch_size=16, device="cpu")),
                partial(toy_snapshot, n=16, grid=8), pool=pool, snapshot_every_s=0.01)
    try:
        for _ in range(3):
            s.step(2)
        assert len(s.latest().history) == 6
        frames = s.frames()
        assert [f.step for f in frames] == [0, 2, 4, 6]
        assert all(f.history == [] and f.field.shape == (8, 8) for f in frames)
    finally:
        s.close()
