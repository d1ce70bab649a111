"""What does the image GAN draw after 30 s, 1 min, 2 min of training on this CPU? Sample grids and numbers.

Trains ImageConfig's defaults (or --set overrides) and, each time the training clock passes a mark,
saves the fixed-noise sample grid as a PNG (scaled up for viewing) and prints the sliced Wasserstein
distance to held-out real images next to its floor (real vs real) and the diversity of both. Only
training time counts toward the marks; measuring and saving are excluded.

    python bench/image_quality.py                          # Shapes 28x28, the page's defaults
    python bench/image_quality.py --dataset mnist          # downloads MNIST once (needs the internet)
    python bench/image_quality.py --images digits.npy      # any uint8 array (n, 28, 28) or (n, C, H, W)
    python bench/image_quality.py --set lr_g=5e-4 lr_c=5e-4 --marks 60 120

"Recognizable" is a judgement made by looking at the PNGs; the numbers tell whether the generator
approaches the data (sliced W towards its floor) without collapsing (diversity near the real one).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer.image_training import ImageConfig, image_snapshot, make_image_trainer  # noqa: E402


def load_array(path: str) -> np.ndarray:
    """uint8 images (n, C, H, W) from a .npy of (n, H, W) or (n, C, H, W)."""
    a = np.load(path, allow_pickle=False)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.dtype != np.uint8 or a.shape[1] not in (1, 3):
        raise SystemExit(f"error: {path} must hold uint8 images (n, H, W) or (n, 1|3, H, W); "
                         f"got {a.dtype} {a.shape}.")
    return a


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="shapes", choices=["shapes", "shapes-busy", "mnist", "fashion-mnist"])
    p.add_argument("--images", help="a .npy of uint8 images to train on instead (dataset 'upload')")
    p.add_argument("--marks", type=float, nargs="+", default=[30, 60, 120], help="training seconds")
    p.add_argument("--out", default="runs/image_quality", help="folder for the PNGs")
    p.add_argument("--zoom", type=int, default=3, help="scale factor of the saved grids")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="override ImageConfig fields, e.g. --set batch_size=32 seed=1")
    args = p.parse_args()
    defaults, overrides = ImageConfig(), {}
    for kv in args.set:  # each value takes the type of the field's default (str where it is None)
        key, value = kv.split("=", 1)
        default = getattr(defaults, key, None)
        kind = str if default is None else type(default)
        overrides[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    uploads = load_array(args.images) if args.images else None
    cfg = ImageConfig.for_loss(**{"dataset": "upload" if uploads is not None else args.dataset, **overrides})
    trainer = make_image_trainer(cfg, uploads=uploads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = Path(args.images).stem if args.images else cfg.dataset

    def save(grid: np.ndarray, name: str) -> Path:
        path = out / f"{tag}_{name}.png"
        Image.fromarray(grid).resize([s * args.zoom for s in grid.shape[1::-1]], Image.NEAREST).save(path)
        return path

    save(image_snapshot(trainer, force_metrics=True).real_grid, "real")
    print(f"{cfg.dataset} {cfg.image_size}x{cfg.image_size}x{cfg.channels}, loss {cfg.loss}, batch "
          f"{cfg.batch_size}, lr {cfg.lr_g}/{cfg.lr_c}, features {cfg.g_features}/{cfg.c_features}, "
          f"{len(trainer.source.pool) if trainer.source.pool is not None else 'endless'} training images")
    print(f"{'seconds':>8}{'steps':>8}{'sliced W':>10}{'floor':>8}{'diversity':>11}{'real':>7}  file")
    marks, train_s = sorted(args.marks), 0.0
    while marks:
        t0 = time.perf_counter()
        trainer.step(10)
        train_s += time.perf_counter() - t0
        if train_s < marks[0]:
            continue
        mark = marks.pop(0)
        snap = image_snapshot(trainer, force_metrics=True)
        name = save(snap.fake_grid, f"{int(mark)}s")
        m = snap.metrics
        print(f"{train_s:>8.1f}{trainer.step_count:>8}{m['sliced_w']:>10.4f}{m['sliced_w_floor']:>8.4f}"
              f"{m['diversity']:>11.3f}{m['diversity_real']:>7.3f}  {name}", flush=True)


if __name__ == "__main__":
    main()
