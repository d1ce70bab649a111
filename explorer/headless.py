"""Headless 2-D GAN runs: the CLI's `toy` command, and the same call a notebook or test can make.

    >>> result = train_toy(ToyConfig(seed=0), steps=50)
    >>> sorted(result)[:3]
    ['device', 'hq', 'loss_c']
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from explorer.metrics import toy_snapshot
from explorer.plots import field_frame, figure_png, figure_rgb, frames_to_gif
from explorer.toy_data import parse_points_csv
from explorer.training import Diverged, ToyConfig, make_toy_trainer, save_checkpoint

GIF_FRAMES = 40        # frames in the training GIF, spread evenly over the run
FINAL_SAMPLES = 1024   # samples for the final W1 / modes / high-quality numbers


def train_toy(cfg: ToyConfig, steps: int, out_dir: str | None = None, points_csv: str | None = None,
              progress: Callable[[str], None] | None = None) -> dict:
    """Train `steps` generator steps; return the final metrics, and write outputs to `out_dir`.

    out_dir receives checkpoint.pt, metrics.csv (one row per recorded step), final.png (the
    critic's landscape with real '+' and generated 'x' points), training.gif and config.json.
    A diverged run still writes its last good state, then raises Diverged.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}.")
    points = None
    if points_csv is not None:
        if cfg.dataset != "points":
            raise ValueError("--points goes with --dataset points.")
        points = parse_points_csv(Path(points_csv).read_bytes())
    elif cfg.dataset == "points":
        raise ValueError("--dataset points needs --points FILE.csv (one x,y pair a line).")
    out = Path(out_dir) if out_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)

    trainer = make_toy_trainer(cfg, points)
    source = trainer.source
    every = max(1, steps // GIF_FRAMES)
    frames, failure, seconds = [], None, 0.0
    while trainer.step_count < steps:
        if out:  # frames are drawn outside the timed training
            frames.append(figure_rgb(field_frame(toy_snapshot(trainer, source))))
        chunk = min(every, steps - trainer.step_count)
        start = time.perf_counter()
        try:
            trainer.step(chunk)
        except Diverged as err:
            failure = err
            break
        finally:
            seconds += time.perf_counter() - start
        if progress:
            rec = trainer.history[-1] if trainer.history else {}
            progress(f"step {trainer.step_count:>6}/{steps}  critic loss {rec.get('loss_c', float('nan')):+.4f}"
                     f"  W estimate {rec.get('w_est', float('nan')):.4f}")

    final = toy_snapshot(trainer, source, n=FINAL_SAMPLES)
    last = trainer.history[-1] if trainer.history else {}
    result = {
        "steps": trainer.step_count, "seconds": seconds,
        "steps_per_s": trainer.step_count / seconds if seconds > 0 else float("nan"),
        "w1_exact": final.metrics["w1_exact"], "w1_floor": final.metrics["w1_floor"],
        "modes": final.metrics["modes"], "n_modes": final.metrics["n_modes"], "hq": final.metrics["hq"],
        "w_est": final.metrics["w_est"], "grad_norm_mean": final.metrics["gp_grad_norm_mean"],
        "loss_c": last.get("loss_c"), "loss_g": last.get("loss_g"),
        "loss": cfg.loss, "dataset": cfg.dataset, "device": str(trainer.device),
    }
    if out:
        picture = field_frame(final)
        frames.append(figure_rgb(picture))
        (out / "final.png").write_bytes(figure_png(picture))
        (out / "training.gif").write_bytes(frames_to_gif(frames, fps=8))
        save_checkpoint(trainer, out / "checkpoint.pt")
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        _write_history(trainer.history, out / "metrics.csv")
        result["out"] = str(out)
    if failure:
        raise failure
    return result


def _write_history(history: list[dict], path: Path) -> None:
    columns = ["step", "loss_c", "loss_g", "w_est", "gp"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
