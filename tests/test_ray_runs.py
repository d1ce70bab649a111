"""The app's runs on Ray actors (explorer/ray_runs.py): chosen by EXPLORER_RAY_ADDRESS and never
imported without it, a shared run's named actor found from a second driver, a killed actor read as a
message and followed by a run that trains again.

The Ray tests share one local single-node cluster (two CPUs) that the module starts and shuts down
(tests/conftest.py); tests/test_session.py and tests/test_pool.py run their run-service tests on
both backends.
"""
import json
import os
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import pytest

from explorer import pool as pool_mod
from explorer.session import Session
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot
from session_fakes import FakeTrainer, snap, wait_for

ROOT = Path(__file__).resolve().parents[1]
TINY = ToyConfig(width=16, depth=1, batch_size=32, n_critic=1, seed=3)


@pytest.fixture
def ray_pool(pool_on):
    p = pool_on("ray")
    yield p
    p.shutdown()


def run_python(code: str) -> str:
    """Run `code` in a fresh interpreter of this checkout; its standard output."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": path}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_without_an_address_the_pool_is_local_and_ray_is_never_imported(monkeypatch):
    monkeypatch.delenv("EXPLORER_RAY_ADDRESS", raising=False)
    out = run_python("""
        import sys
        from explorer.pool import Pool, get_pool
        import explorer.session, explorer.shared_runs, explorer.worker
        print(type(get_pool()) is Pool, "ray" in sys.modules)
    """)
    assert out.split() == ["True", "False"]


def test_with_an_address_get_pool_is_the_ray_pool(ray_cluster, monkeypatch):
    from explorer.ray_runs import RayPool
    monkeypatch.setenv("EXPLORER_RAY_ADDRESS", "auto")     # joined already: this process's cluster is used
    pool_mod.shutdown_pool()
    try:
        pool = pool_mod.get_pool()
        assert isinstance(pool, RayPool)
        assert pool.call(os.getpid) != os.getpid()           # a job runs in an actor, not here
    finally:
        pool_mod.shutdown_pool()
    assert ray_cluster.is_initialized()                     # a cluster it found is left to its owner


def test_a_real_run_trains_in_an_actor(ray_pool):
    s = Session(partial(make_toy_trainer, TINY), partial(toy_snapshot, n=64, grid=16), pool=ray_pool,
                snapshot_every_s=0.05)
    assert s.start()
    assert wait_for(lambda: s.latest() is not None and s.latest().step > 20, 60)
    assert s.latest().field.shape == (16, 16)
    assert s.worker_pid in ray_pool.pids() and s.worker_pid != os.getpid()
    s.close()


def test_a_shared_run_is_a_named_actor_another_driver_finds(ray_cluster, ray_pool):
    from explorer.ray_runs import NAMESPACE, actor_name
    s = Session(FakeTrainer, snap, pool=ray_pool, key="the page's defaults", snapshot_every_s=0.02)
    assert s.start()
    assert wait_for(lambda: s.latest() is not None and s.latest().step > 5, 30)
    assert ray_cluster.get_actor(actor_name("the page's defaults"), namespace=NAMESPACE) is not None
    address = ray_cluster.get_runtime_context().gcs_address
    out = run_python(f"""
        import json, ray
        ray.init(address={address!r}, log_to_driver=False)
        from explorer.ray_runs import RayPool
        pool = RayPool(size=1)
        link = pool.place("the page's defaults")        # made with get_if_exists: the first driver's
        print(json.dumps({{"owned": link.owned, "pid": link.pid,
                          "runs": link.request(("runs", pool.next_id()), 30)}}))
        pool.shutdown()                                 # leaves an actor it did not make
        ray.shutdown()
    """)
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["owned"] is False and seen["pid"] == s.worker_pid
    assert seen["runs"] == {str(s._run_id): "running"}      # the first driver's run, training
    before = s.latest().step
    assert wait_for(lambda: s.latest().step > before + 5, 10)   # and it goes on after the second left
    assert s.state == "running"
    s.close()


def test_a_killed_actor_ends_its_run_with_a_message_and_reset_trains_again(ray_cluster, ray_pool):
    s = Session(FakeTrainer, snap, pool=ray_pool, snapshot_every_s=0.02)
    assert s.start()
    assert wait_for(lambda: s.latest() is not None and s.latest().step > 3, 30)
    link, dead = s._link, s.worker_pid
    ray_cluster.kill(link.actor, no_restart=True)
    assert wait_for(lambda: s.state == "error", 30)
    assert "Ray worker training this run stopped unexpectedly" in s.message and "Reset" in s.message
    assert s.latest() is not None                             # the last picture stays
    assert not s.start()
    assert ray_pool.deaths == 1 and dead not in ray_pool.pids()
    s.reset()
    assert s.start()                                          # a new actor
    assert wait_for(lambda: s.latest() is not None and s.latest().step > 3, 60)
    assert s.worker_pid != dead and s.state == "running"
    s.close()


def test_two_replicas_of_the_app_watch_one_run_of_a_key_and_nobody_changes_the_others(ray_cluster):
    """Two RayPools in one process stand for two Streamlit replicas on one cluster: the second's Start
    of the same key watches the first's run (trained once, in the key's actor); a pause there gets a
    private copy, and the first replica's visitor keeps the run, which ends when nobody watches."""
    from explorer.ray_runs import RayPool
    replicas = [RayPool(size=1), RayPool(size=1)]
    key = "two replicas, one run"
    a, b = (Session(FakeTrainer, snap, pool=p, key=key, snapshot_every_s=0.02) for p in replicas)
    try:
        a.prepare(), b.prepare()                               # each shows its own step 0, as a page does
        assert a.start()
        assert wait_for(lambda: a.latest() is not None and a.latest().step > 5, 30)
        assert b.start()
        assert b._run_id == a._run_id and b._link.actor._actor_id == a._link.actor._actor_id
        assert wait_for(lambda: b.latest() is not None and b.latest().step > a.latest().step - 50, 30)
        # b's own step-0 run is let go: one run. b's "close" and a's question reach the actor from two
        # servers, whose messages keep no order between them, so the question is asked until it holds.
        def held() -> list:
            return list(a._link.request(("runs", replicas[0].next_id()), 30).values())
        assert wait_for(lambda: held() == ["running"], 10), held()
        assert a.shared_with == 1 and b.shared_with == 1       # each sees the other replica's visitor
        b.pause()                                              # b's change: a private copy, paused
        assert b._run_id != a._run_id and b.state == "paused" and a.state == "running"
        paused_at = b.latest().step
        before = a.latest().step
        assert wait_for(lambda: a.latest().step > before + 5, 10)    # a's run goes on, unchanged
        assert b.latest().step == paused_at and a.shared_with == 0
        c = Session(FakeTrainer, snap, pool=replicas[1], key=key, snapshot_every_s=0.02)
        assert c.start() and c._run_id == a._run_id            # a later visitor on b's replica joins too
        c.close()
        a.close()                                               # the last watcher: the run ends
        assert wait_for(lambda: list(b._link.request(("runs", replicas[1].next_id()), 30)) == [b._run_id], 30)
    finally:
        for s in (a, b):
            s.close()
        for p in replicas:
            p.shutdown()
