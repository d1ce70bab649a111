"""The runs the training pages start with their defaults, for benchmarks that compare against them.

A module of its own (not inside a benchmark script) so that a worker process can import
`headless_rate` by name.
"""
from __future__ import annotations

import time

PAGES = ("gan_2d", "compare", "image_gan")


def page_default_config(page: str):
    """The config each page trains when Start is pressed on its defaults (tests/test_page_defaults.py
    checks these against what the pages build, so a benchmark cannot drift from the page)."""
    from explorer import compare as C
    from explorer.image_training import ImageConfig
    from explorer.toy_training import ToyConfig
    if page == "gan_2d":
        return ToyConfig.recommended("8gaussians", "wgan-gp")
    if page == "compare":
        rec = ToyConfig.recommended("8gaussians")
        base = ToyConfig(dataset="8gaussians", width=rec.width, depth=3, batch_size=rec.batch_size, seed=0)
        return C.preset_config(next(iter(C.PRESETS)), base, strip_every=200, n=256, grid=64, live_grid=48,
                               recommended=True)
    if page == "image_gan":
        return ImageConfig.for_loss(ImageConfig.loss)
    raise ValueError(f"Unknown page {page!r}; choose one of {', '.join(PAGES)}.")


def page_default_trainer(page: str):
    """The trainer each page builds from its defaults (what pressing Start trains)."""
    from explorer import compare as C
    from explorer.image_training import make_image_trainer
    from explorer.toy_training import make_toy_trainer
    build = {"gan_2d": make_toy_trainer, "compare": C.make_runs, "image_gan": make_image_trainer}[page]
    return build(page_default_config(page))


def headless_rate(page: str, seconds: float) -> float:
    """Steps/s of the page's default run trained headless in this process (after a warm-up), in
    calls of 25 steps (the trainer's check interval, as the command line trains)."""
    trainer = page_default_trainer(page)
    trainer.step(5)
    start, steps = time.perf_counter(), trainer.step_count
    while time.perf_counter() - start < seconds:
        trainer.step(25)
    return (trainer.step_count - steps) / (time.perf_counter() - start)
