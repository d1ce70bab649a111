"""The worker processes: they train real runs, send snapshots, share themselves fairly, survive a
crash of one of them, and leave nothing behind. The tests on `any_pool` run on Ray actors too."""
import os
import signal
import socket
import subprocess
import sys
from dataclasses import asdict
from functools import partial
from operator import attrgetter

import pytest
import torch

import session_fakes
from explorer import session as session_mod
from explorer.checkpoints import checkpoint_bytes, load_checkpoint
from explorer.pool import Pool, WorkerDied
from explorer.session import Session
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot, toy_trainer_from_bytes
from session_fakes import FakeTrainer, count_to, crash_worker, fail_with, snap, worker_nice, worker_pid

TINY = ToyConfig(width=16, depth=1, batch_size=32, n_critic=1, seed=3)


def wait_for(cond, timeout: float = 20.0) -> bool:
    """session_fakes.wait_for, more patient: workers start slowly on a busy box."""
    return session_fakes.wait_for(cond, timeout)


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" in f.read().lower()
    except FileNotFoundError:
        return True


@pytest.fixture
def pool():
    p = Pool(size=2)
    yield p
    p.shutdown()


@pytest.fixture(params=["local", "ray"])
def any_pool(request, pool_on):
    """A pool of either backend: local worker processes or Ray actors (explorer/ray_runs.py)."""
    p = pool_on(request.param)
    yield p
    p.shutdown()


def toy_session(pool: Pool, cfg: ToyConfig = TINY, **kw) -> Session:
    return Session(partial(make_toy_trainer, cfg), partial(toy_snapshot, n=64, grid=16), pool=pool,
                   snapshot_every_s=0.05, hot_fields=("lam", "clip", "n_critic", "lr_g", "lr_c"), **kw)


def test_a_real_run_trains_in_a_worker_and_shutdown_leaves_nothing():
    pool = Pool(size=2)
    s = toy_session(pool)
    assert s.start()
    assert wait_for(lambda: s.latest() is not None and s.latest().step > 20)
    snapshot = s.latest()
    assert snapshot.field.shape == (16, 16) and snapshot.fake.shape == (64, 2)   # plain arrays came back
    assert s.call(attrgetter("step_count")) >= snapshot.step
    pids = pool.pids()
    assert s.worker_pid in pids and os.getpid() not in pids
    s.close()
    pool.shutdown()
    assert wait_for(lambda: all(gone(pid) for pid in pids), 10)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.place()


def test_workers_run_at_the_lowest_priority_with_one_torch_thread(any_pool):
    assert any_pool.call(worker_nice) == 19
    assert any_pool.call(torch.get_num_threads) == 1


def test_hot_update_and_step_reach_the_worker(any_pool):
    s = toy_session(any_pool)
    s.step(5)
    assert s.latest().step == 5
    s.update(lam=3.5, n_critic=2)
    s.step(1)
    assert s.call(attrgetter("cfg.lam")) == 3.5 and s.call(attrgetter("cfg.n_critic")) == 2
    s.close()


def test_a_killed_worker_ends_its_runs_with_a_message_and_is_replaced(pool):
    s = Session(FakeTrainer, snap, pool=pool, snapshot_every_s=0.02)
    assert s.start()
    assert wait_for(lambda: s.latest() is not None and s.latest().step > 3)
    dead = s.worker_pid
    os.kill(dead, signal.SIGKILL)
    assert wait_for(lambda: s.state == "error")
    assert "stopped unexpectedly" in s.message and "signal 9" in s.message and "Reset" in s.message
    assert s.latest() is not None                         # the last picture stays
    assert not s.start()
    assert wait_for(lambda: dead not in pool.pids() and len(pool.pids()) >= 1)
    assert pool.deaths == 1
    s.reset()                                              # a fresh run on a live worker
    assert s.start()
    assert wait_for(lambda: s.latest() is not None and s.latest().step > 3)
    assert s.worker_pid != dead
    s.close()


def test_a_crash_inside_a_call_is_an_error_not_a_hang(pool):
    s = Session(FakeTrainer, snap, pool=pool)
    s.prepare()
    with pytest.raises(WorkerDied, match="exit code 3"):
        s.call(crash_worker)
    assert wait_for(lambda: s.state == "error")


def test_a_checkpoint_round_trips_through_the_worker(any_pool):
    s = toy_session(any_pool)
    s.step(7)
    data = s.call(checkpoint_bytes)
    state = load_checkpoint(data)
    assert state["step"] == 7 and state["config"] == asdict(TINY)
    s.reset(partial(toy_trainer_from_bytes, data))       # resume from the file, in a worker
    s.prepare()
    assert s.latest().step == 7
    s.step(5)
    here = toy_trainer_from_bytes(data)                  # the same file, resumed in this process
    here.step(5)
    there = s.call(attrgetter("history"))
    assert [r["loss_c"] for r in there[-5:]] == [r["loss_c"] for r in here.history[-5:]]   # bit for bit
    s.close()


def test_jobs_report_progress_results_and_errors(any_pool):
    job = any_pool.submit(count_to, 5)
    assert list(job.updates(timeout=10)) == [1, 2, 3, 4, 5]
    assert job.result(1) == 50
    with pytest.raises(ValueError, match="no such thing"):
        any_pool.call(fail_with, "no such thing")
    long = any_pool.submit(count_to, 10_000, 0.01)
    assert next(iter(long.updates(timeout=10))) == 1
    long.cancel()
    with pytest.raises(RuntimeError, match="Cancelled"):
        long.result(1)


def test_more_runs_than_workers_all_progress():
    pool, cap = Pool(size=1), session_mod.max_runs()
    session_mod.set_max_runs(5)
    try:
        runs = [Session(FakeTrainer, snap, pool=pool, snapshot_every_s=0.02) for _ in range(5)]
        for s in runs:
            assert s.start() and s.state == "running"    # time-sliced, none queued below the cap
        assert len({s.worker_pid for s in runs}) == 1    # one process holds all five, in turn
        assert wait_for(lambda: all(s.latest().step > 20 for s in runs))
        for s in runs:
            s.close()
    finally:
        session_mod.set_max_runs(cap)
        pool.shutdown()


def test_a_new_run_goes_where_fewer_runs_train_not_where_fewer_are_held(pool):
    """Runs share a worker's time in turns: a paused run costs no speed, a training one does."""
    cap = session_mod.max_runs()
    session_mod.set_max_runs(6)
    try:
        trains = Session(FakeTrainer, snap, pool=pool, snapshot_every_s=0.02)
        assert trains.start()
        held = [Session(FakeTrainer, snap, pool=pool, snapshot_every_s=0.02) for _ in range(2)]
        for s in held:
            s.prepare()                                      # a page's step-0 picture: held, not training
        other = held[0].worker_pid
        assert held[1].worker_pid == other != trains.worker_pid    # both beside no training run
        assert sorted(link.busy() for link in pool.live_links()) == [(0, 2), (1, 1)]
        newcomer = Session(FakeTrainer, snap, pool=pool, snapshot_every_s=0.02)
        assert newcomer.start()
        assert newcomer.worker_pid == other                  # by runs held it would go beside `trains`
        assert wait_for(lambda: sorted(link.busy()[0] for link in pool.live_links()) == [1, 1])
        newcomer.pause()
        assert wait_for(lambda: sorted(link.busy()[0] for link in pool.live_links()) == [0, 1])
        for s in [trains, newcomer, *held]:
            s.close()
        assert all(link.busy() == (0, 0) for link in pool.live_links())
    finally:
        session_mod.set_max_runs(cap)


def test_a_worker_ends_when_the_server_side_of_its_socket_closes():
    pool = Pool(size=1)
    pid = pool.call(worker_pid)
    link = pool.place()
    # What the worker sees when the server dies, however it dies: its end of the socket goes away.
    # (shutdown, not close: a close here would wait for the reader thread blocked in recv.)
    end = socket.socket(fileno=os.dup(link.conn.fileno()))
    end.shutdown(socket.SHUT_RDWR)
    end.close()
    assert wait_for(lambda: gone(pid), 15)
    pool.shutdown()


def test_a_server_killed_outright_leaves_no_worker():
    """SIGKILL gives the server no chance to clean up: its workers must notice and end."""
    code = ("import time; from explorer.pool import Pool; from session_fakes import worker_pid\n"
            "p = Pool(size=2); print(p.call(worker_pid), flush=True); time.sleep(60)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.path.dirname(__file__)]))
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        pid = int(server.stdout.readline())
        server.kill()
        server.wait(10)
        assert wait_for(lambda: gone(pid), 15)
    finally:
        server.kill()
