"""The sweep's runs as Ray tasks: one task a run, one CPU and one torch thread each.

EXPLORER_RAY_ADDRESS says which cluster: `auto` (the one `ray start` runs on this machine),
`ray://host:10001` (a remote head node; this package travels to its workers), `local` (start a
single-node cluster with this machine's CPUs, as the tests and bench/sweep.py do) or unset (Ray's
own choice: a cluster already running here, else a new local one). Where Ray is already initialized
in this process, its connection is used and left open. Ray is imported only here, and only when the
Ray backend is chosen: the app itself does not need it.

Rows come back as tasks finish (ray.wait). A task that raises, or whose worker dies twice (Ray
retries it once), is an error row that says what happened, like any run that fails on the pool.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

ADDRESS_ENV = "EXPLORER_RAY_ADDRESS"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError("The Ray backend needs Ray, which is not installed here: pip install ray (or "
                         "pip install -r requirements-dev.txt), or run the sweep with --backend local.") from None
    return ray


def train_task(config: dict, steps: int, keys: tuple[str, ...], samples: int = 0) -> dict:
    """One run inside a Ray worker, settled as a pool worker is (one torch thread) before torch or POT
    is imported; the config travels as a plain dict so that unpickling it imports nothing."""
    from explorer.process import configure
    configure(threads=1)
    from explorer.sweep import train_one
    from explorer.toy_training import ToyConfig
    return train_one(ToyConfig(**config), steps, keys, samples)


def connect(ray: Any) -> bool:
    """Join the cluster EXPLORER_RAY_ADDRESS names, unless this process already has; True if this call
    connected (and so the caller disconnects)."""
    if ray.is_initialized():
        return False
    address = os.environ.get(ADDRESS_ENV) or None
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address in (None, "local"):
        options["include_dashboard"] = False
        if address == "local":
            options["num_cpus"] = os.cpu_count()
    else:   # another machine's workers cannot import this checkout: send them the package
        options["runtime_env"] = {"py_modules": [str(Path(__file__).resolve().parent)]}
    try:
        ray.init(address=address, **options)
    except ConnectionError as err:
        raise ConnectionError(f"Could not reach the Ray cluster {address!r} ({ADDRESS_ENV}): {err}") from None
    return True


def runs_on_ray(configs: list, steps: int, keys: tuple[str, ...], samples: int = 0) -> Iterator[tuple[int, dict]]:
    """(index, row) of each run, as its task finishes; unfinished tasks are cancelled if the caller stops."""
    from explorer.sweep import error_row
    ray = import_ray()
    disconnect = connect(ray)
    pending: dict = {}
    try:
        task = ray.remote(num_cpus=1, max_retries=1)(train_task)
        pending = {task.remote(asdict(cfg), steps, keys, samples): i for i, cfg in enumerate(configs)}
        while pending:
            [done], _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done)
            try:
                yield index, ray.get(done)
            except ray.exceptions.RayError as err:
                yield index, error_row(configs[index], keys, failure_message(ray, err))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if disconnect:
            ray.shutdown()


def failure_message(ray: Any, err: Exception) -> str:
    """What went wrong with a task, in a sentence: the run's own exception, or the worker's end."""
    if isinstance(err, ray.exceptions.RayTaskError):
        cause = err.cause
        return f"{type(cause).__name__}: {cause}"
    if isinstance(err, ray.exceptions.WorkerCrashedError):
        return "The Ray worker training this run died, twice (Ray retried it once)."
    return f"Ray could not finish this run: {str(err).strip().splitlines()[0]}"
