"""The sweep on Ray: the same rows as the local pool, the CLI's CSV and JSON, failures as sentences.

The Ray tests share one local single-node cluster (two CPUs: tests/conftest.py's ray_cluster),
started once for the module; the sweep finds Ray initialized and uses it without shutting it down.
They are skipped only where Ray is not installed (it comes with requirements-dev.txt).
"""
import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from explorer import cli
from explorer.sweep import run_sweep
from explorer.toy_training import ToyConfig

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed: pip install -r requirements-dev.txt")
TINY = dict(width=16, depth=1, batch_size=32)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def torch_threads():
    """The CLI settles its process to one torch thread: give the test process its own count back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@needs_ray
def test_rows_on_ray_equal_the_local_pools(ray_cluster):
    configs = [ToyConfig(seed=seed, lam=lam, **TINY) for lam in (0.1, 10.0) for seed in (0, 1)]
    on_pool = run_sweep(configs, 30, "local", keys=("lam", "seed"))
    on_ray = run_sweep(configs, 30, "ray", keys=("lam", "seed"))
    assert on_ray["backend"] == "ray" and on_pool["backend"] == "local"
    assert [(r["lam"], r["seed"]) for r in on_ray["runs"]] == [(0.1, 0), (0.1, 1), (10.0, 0), (10.0, 1)]
    assert all("error" not in row and row["steps"] == 30 for row in on_ray["runs"])
    assert without_seconds(on_ray["runs"]) == without_seconds(on_pool["runs"])
    assert on_ray["runs"][0]["w1_exact"] != on_ray["runs"][1]["w1_exact"]     # the seeds do differ
    assert ray_cluster.is_initialized()         # the fixture's cluster is used, not shut down


@needs_ray
def test_cli_on_ray_writes_the_csv_and_a_json_last_line(ray_cluster, torch_threads, tmp_path, capsys):
    path = tmp_path / "sweep.csv"
    sheet = tmp_path / "sheet.png"
    argv = ["sweep", "--grid", "n_critic=1,2", "--grid", "width=8", "--steps", "3", "--backend", "ray",
            "--csv", str(path), "--sheet", str(sheet), "--json"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    out = json.loads(lines[-1])
    assert out["backend"] == "ray" and [r["n_critic"] for r in out["runs"]] == [1, 2]
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not any("samples" in r for r in out["runs"])
    assert sum(line.startswith(("[1/2]", "[2/2]")) for line in lines[:-1]) == 2     # a line a finished run
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["n_critic", "width", "w1_ratio", "modes", "hq", "steps", "seconds"]
    assert [(int(t["n_critic"]), float(t["w1_ratio"])) for t in table] == [
        (r["n_critic"], pytest.approx(r["w1_ratio"])) for r in out["runs"]]


@needs_ray
def test_runs_that_fail_inside_their_task_are_rows_that_say_why(ray_cluster):
    configs = [ToyConfig(**TINY), ToyConfig(dataset="points", **TINY),     # no points file given
               ToyConfig(beta1="high", **TINY)]      # a TypeError: what train_one lets through
    rows = run_sweep(configs, 2, "ray", keys=("dataset",))["runs"]
    assert "error" not in rows[0] and rows[0]["steps"] == 2
    assert rows[1]["dataset"] == "points" and "--points" in rows[1]["error"]
    assert rows[2]["error"].startswith("TypeError: ") and "Traceback" not in rows[2]["error"]
    on_pool = run_sweep(configs, 2, "local", keys=("dataset",))["runs"]
    assert [r.get("error") for r in on_pool] == [r.get("error") for r in rows]


@needs_ray
def test_a_dead_ray_worker_is_named_as_such(ray_cluster):
    from explorer.ray_sweep import failure_message

    def die() -> None:
        os._exit(1)

    with pytest.raises(ray_cluster.exceptions.RayError) as err:
        ray_cluster.get(ray_cluster.remote(max_retries=0)(die).remote())
    assert failure_message(ray_cluster, err.value) == "The Ray worker training this run died, twice " \
                                                      "(Ray retried it once)."


# Hiding Ray in this process would break the module's running cluster: its log thread imports Ray as it
# prints, and a traceback it formats then (CPython 3.11's carets parse the line, gh-106905) can race the
# CLI's own parse of its config's source. A fresh interpreter without Ray is also what a user without it runs.
WITHOUT_RAY = """
import sys
sys.modules["ray"] = None                   # `import ray` now raises ImportError
from explorer import cli
from explorer.sweep import run_sweep
from explorer.toy_training import ToyConfig
try:
    run_sweep([ToyConfig(width=16, depth=1, batch_size=32)], 2, "ray")
except ValueError as e:
    print("run_sweep:", e)
sys.exit(cli.main(["sweep", "--grid", "seed=0", "--steps", "2", "--backend", "ray"]))
"""


def test_without_ray_the_ray_backend_says_how_to_install_it():
    done = subprocess.run([sys.executable, "-c", WITHOUT_RAY], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("run_sweep: ") and "pip install ray" in done.stdout
    assert done.stderr.startswith("error: ") and "requirements-dev.txt" in done.stderr
    assert "Traceback" not in done.stderr
