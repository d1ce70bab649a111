"""The runs the training pages start with their defaults, for benchmarks that compare against them.

A module of its own (not inside a benchmark script) so that a worker process can import
`headless_rate` by name.
"""
from __future__ import annotations

import time

PAGES = ("gan_2d", "compare", "image_gan")


def page_default_trainer(page: str):
    """The trainer each page builds from its defaults (what pressing Start trains)."""
    from explorer import compare as C
    from explorer.image_training import ImageConfig, make_image_trainer
    from explorer.toy_training import ToyConfig, make_toy_trainer
    if page == "gan_2d":
        return make_toy_trainer(ToyConfig())
    if page == "compare":
        base = ToyConfig(dataset="8gaussians", width=128, depth=3, batch_size=256, seed=0)
        return C.make_runs(C.preset_config("WGAN-GP vs weight clipping", base, strip_every=200, n=256, grid=64))
    if page == "image_gan":
        return make_image_trainer(ImageConfig())
    raise ValueError(f"Unknown page {page!r}; choose one of {', '.join(PAGES)}.")


def headless_rate(page: str, seconds: float) -> float:
    """Steps/s of the page's default run trained headless in this process (after a warm-up), in
    calls of 25 steps (the trainer's check interval, as the command line trains)."""
    trainer = page_default_trainer(page)
    trainer.step(5)
    start, steps = time.perf_counter(), trainer.step_count
    while time.perf_counter() - start < seconds:
        trainer.step(25)
    return (trainer.step_count - steps) / (time.perf_counter() - start)
