"""A grid of headless 2-D runs, spread over the local worker pool or a Ray cluster.

    python -m explorer sweep --grid lam=0.1,1,10 --grid n_critic=1,5 --grid seed=0..4 --steps 500 --json

Every run is ToyConfig.recommended for the dataset and loss with the grid's values swapped in,
trained as the command line's `toy` trains it (make_toy_trainer, the final numbers on 1,024
samples), one run per worker at a time, with one torch thread. The backend is the local pool
(explorer/pool.py: EXPLORER_WORKERS processes) unless EXPLORER_RAY_ADDRESS names a Ray cluster
(explorer/ray_sweep.py; Ray is optional: `pip install ray` where it is wanted). Rows arrive as
runs finish; the table keeps the grid's order, and a run's row is the same on either backend (all
but its seconds): every run is seeded, never the process. The Compare page's Grid mode trains its
grid to the end the same way, on the app's own pool (train_in_turns, one job a run).

    >>> [(c.lam, c.n_critic) for c in grid_configs(ToyConfig(), {"lam": [0.1, 1], "n_critic": [1]})]
    [(0.1, 1), (1.0, 1)]
"""
from __future__ import annotations

import itertools
import os
from concurrent.futures import as_completed
from dataclasses import asdict, fields, replace
from typing import Callable, Generator, Iterator

from explorer.ray_sweep import ADDRESS_ENV  # (that module imports Ray only when a sweep runs on it)
from explorer.toy_training import ToyConfig
from explorer.turns import in_turns

BACKENDS = ("auto", "local", "ray")
MAX_RUNS = 256
SHEET_SAMPLES = 512   # final points of each run drawn on a sweep's sheet


def grid_configs(base: ToyConfig, grid: dict[str, list]) -> list[ToyConfig]:
    """Every combination of the grid's values on top of `base` (first field outermost), validated."""
    known = {f.name: f for f in fields(ToyConfig)}
    for name, values in grid.items():
        if name not in known:
            raise ValueError(f"{name!r} is not a setting of a 2-D run; choose among {', '.join(known)}.")
        if not values:
            raise ValueError(f"The grid gives {name} no values.")
    names = list(grid)
    combos = list(itertools.product(*(grid[n] for n in names)))
    if len(combos) > MAX_RUNS:
        raise ValueError(f"A sweep holds at most {MAX_RUNS} runs; this grid makes {len(combos)}.")
    out = []
    for combo in combos:
        cfg = replace(base, **{n: typed_value(base, n, v) for n, v in zip(names, combo)})
        cfg.validate()
        out.append(cfg)
    return out


def typed_value(base: ToyConfig, name: str, value):
    """A setting given as text (a grid value, a benchmark's --set) in the type of base's field."""
    current = getattr(base, name)
    if isinstance(current, bool):
        return str(value).lower() in ("1", "true", "yes")
    if isinstance(current, int):
        number = float(value)
        if number != int(number):
            raise ValueError(f"{name} takes whole numbers; got {value!r}.")
        return int(number)
    if isinstance(current, float) or current is None and name == "spread":
        return float(value)
    return str(value)


def resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if backend == "auto":
        return "ray" if os.environ.get(ADDRESS_ENV) else "local"
    return backend


def parse_values(text: str) -> list[str]:
    """A grid's values as text: "0.1,1,10", or a whole-number range "0..4" (both ends included).

    >>> parse_values("0..3"), parse_values("0.1, 1")
    (['0', '1', '2', '3'], ['0.1', '1'])
    """
    out = []
    for part in (p.strip() for p in text.split(",")):
        lo, sep, hi = part.partition("..")
        if sep:
            try:
                a, b = int(lo), int(hi)
            except ValueError:
                raise ValueError(f"A range is two whole numbers like 0..4; got {part!r}.") from None
            if not 0 <= b - a < MAX_RUNS:
                raise ValueError(f"The range {part!r} must count up, with at most {MAX_RUNS} values.")
            out += [str(v) for v in range(a, b + 1)]
        elif part:
            out.append(part)
    return out


def train_one(cfg: ToyConfig, steps: int, keys: tuple[str, ...] = (), samples: int = 0) -> dict:
    """One run of the sweep as a table row: its grid fields under their config names, then W1 / floor,
    modes, high-quality share, steps and seconds, then the full config (a failure is a row too).
    samples > 0: the row also holds that many final generated and real points under "samples" (for
    the sheet, explorer/plots.py's sweep_sheet_png; not a column of the table)."""
    turns = train_in_turns(cfg, steps, keys, samples)
    while True:
        try:
            next(turns)
        except StopIteration as done:
            return done.value


def train_in_turns(cfg: ToyConfig, steps: int, keys: tuple[str, ...] = (),
                   samples: int = 0) -> Generator[int, None, dict]:
    """train_one, yielding the step reached after each turn of about 0.1 s (explorer/turns.py); its
    row is the return value.

    As a worker job (pool.submit) a generator gives the worker back between two items, so the live
    runs it holds keep their turns while a page's sweep trains beside them; a plain function would
    hold the worker until its run ended."""
    from explorer.toy_training import FINAL_SAMPLES, make_toy_trainer, toy_snapshot
    seconds = 0.0
    try:
        if cfg.dataset == "points":
            raise ValueError("--dataset points needs a file of points (--points with `python -m explorer toy`); "
                             "a sweep takes none.")
        trainer = make_toy_trainer(cfg)
        for step, took in in_turns(trainer, steps):
            seconds += took
            yield step
        final = toy_snapshot(trainer, n=FINAL_SAMPLES)
    except (ValueError, RuntimeError) as err:   # a run that diverged or cannot start: say which and why
        return error_row(cfg, keys, str(err))
    m = final.metrics
    row = {**grid_fields(cfg, keys), "w1_ratio": m["w1_exact"] / m["w1_floor"], "modes": m["modes"],
           "hq": m["hq"], "steps": trainer.step_count, "seconds": seconds, "w1_exact": m["w1_exact"],
           "w1_floor": m["w1_floor"], "config": asdict(cfg)}
    if samples > 0:
        row["samples"] = {"fake": final.fake[:samples], "real": final.real[:samples]}
    return row


def grid_fields(cfg: ToyConfig, keys: tuple[str, ...]) -> dict:
    return {k: getattr(cfg, k) for k in keys}


def error_row(cfg: ToyConfig, keys: tuple[str, ...], message: str) -> dict:
    """The row of a run that did not finish: its grid fields, why, and its config."""
    return {**grid_fields(cfg, keys), "error": message, "config": asdict(cfg)}


def run_sweep(configs: list[ToyConfig], steps: int, backend: str = "auto", keys: tuple[str, ...] = (),
              on_row: Callable[[int, dict], None] | None = None, samples: int = 0) -> dict:
    """{"runs": one train_one row per config, in order, "backend": "local" or "ray"}; `keys` are the
    grid's fields, which every row carries under their config names. on_row(index, row) is called
    as each run finishes, in the order they finish. samples: see train_one."""
    backend = resolve_backend(backend)
    if backend == "ray":
        from explorer.ray_sweep import runs_on_ray
        finished = runs_on_ray(configs, steps, keys, samples)
    else:
        finished = runs_on_pool(configs, steps, keys, samples)
    rows: list[dict | None] = [None] * len(configs)
    for index, row in finished:
        rows[index] = row
        if on_row is not None:
            on_row(index, row)
    return {"runs": rows, "backend": backend}


def runs_on_pool(configs: list[ToyConfig], steps: int, keys: tuple[str, ...],
                 samples: int = 0) -> Iterator[tuple[int, dict]]:
    """(index, row) of each run on a fresh local pool, as it finishes; a dead worker's run is an error row."""
    from explorer.pool import Pool
    pool = Pool()
    try:
        jobs = {pool.submit(train_one, cfg, steps, keys, samples).future: i for i, cfg in enumerate(configs)}
        for future in as_completed(jobs):
            index = jobs[future]
            try:
                yield index, future.result()
            except Exception as err:    # the worker died, or the run raised what train_one lets through
                yield index, error_row(configs[index], keys, f"{type(err).__name__}: {err}")
    finally:
        pool.shutdown()
