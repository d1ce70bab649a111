"""Settings for every test run in this process (the page tests drive pages with AppTest here), and the
Ray cluster the tests of the Ray backend start for themselves."""
import os

import pytest

# While a run trains, a live view's fragment draws frame after frame for up to EXPLORER_LIVE_LOOP_S
# seconds (ui/live.py). AppTest waits for a script run to end, so here the page tests draw one frame a
# run, as every page does when nothing trains; tests/test_live.py checks the loop itself, and the
# browser tests' server (tests/e2e/conftest.py) runs it as a visitor gets it.
os.environ.setdefault("EXPLORER_LIVE_LOOP_S", "0")
# A page opened on its defaults records their replay (explorer/replays.py) on first request: here 20
# steps, not the app's 2,000, so a page test does not leave a worker training for half a minute.
os.environ.setdefault("EXPLORER_REPLAY_STEPS", "20")


@pytest.fixture(scope="module")
def ray_cluster():
    """A single-node Ray cluster of two CPUs for one test module, started here and shut down after it.
    Skipped only where Ray is not installed (it comes with requirements-dev.txt)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-dev.txt")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def pool_on(request):
    """pool_on(backend, size=2): a training pool of `size` workers, local processes ("local") or Ray
    actors ("ray", on the module's cluster, started on first need)."""
    def make(backend: str, size: int = 2):
        if backend == "ray":
            request.getfixturevalue("ray_cluster")
            from explorer.ray_runs import RayPool
            return RayPool(size=size)
        from explorer.pool import Pool
        return Pool(size=size)
    return make


@pytest.fixture(scope="module", params=["local", "ray"])
def pool(request, pool_on):
    """A module's tests, each on both backends: local worker processes and Ray actors (where a keyed run
    lives in its key's named actor). A module may define its own `pool` instead."""
    p = pool_on(request.param)
    yield p
    p.shutdown()
