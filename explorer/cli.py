"""Headless command line: `python -m explorer distances|toy|images ... [--json]`.

The CLI builds the same config dataclasses the pages build from widgets, and calls the same
core functions. With --json the last line printed is one JSON object (non-finite numbers are
written as the strings "inf", "-inf" or "nan", so strict JSON readers accept it).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from typing import Any, Sequence


class CliError(ValueError):
    """Bad input on the command line: printed as one sentence, exit code 2."""


def _floats(text: str, name: str) -> list[float]:
    """Parse a comma-separated list of numbers such as "0.2,0.5,0.3"."""
    parts = [s.strip() for s in text.split(",")]
    if not text.strip() or any(s == "" for s in parts):
        raise CliError(f"{name} must be a comma-separated list of numbers, such as 0.2,0.5,0.3; got {text!r}.")
    try:
        return [float(s) for s in parts]
    except ValueError:
        raise CliError(f"{name} must be a comma-separated list of numbers, such as 0.2,0.5,0.3; got {text!r}.") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_jsonable(result)))
    else:
        for key, value in result.items():
            print(f"{key:>14}: {value:.6g}" if isinstance(value, float) else f"{key:>14}: {value}")


# ----------------------------------------------------------------------------- distances
def _distances(args: argparse.Namespace) -> dict:
    from explorer.distances import summary

    p, q = _floats(args.P, "P"), _floats(args.Q, "Q")
    base = math.e if args.base is None else args.base
    if not (base > 0 and base != 1 and math.isfinite(base)):
        raise CliError(f"--base must be a positive number other than 1 (e, 2 or 10); got {args.base}.")
    positions = _floats(args.positions, "--positions") if args.positions else None
    result = summary(p, q, base=base, ground=args.ground, alpha=args.alpha, positions=positions)
    result["unit"] = {math.e: "nats", 2.0: "bits"}.get(base, f"log base {base:g}")
    return result


# ----------------------------------------------------------------------------- toy / images
def _toy(args: argparse.Namespace) -> dict:
    from explorer.headless import train_toy
    from explorer.training import ToyConfig

    overrides = {
        "loss": args.loss, "dataset": args.dataset, "lam": args.lam, "clip": args.clip,
        "n_critic": args.n_critic, "seed": args.seed, "device": args.device,
        "width": args.width, "depth": args.depth, "batch_size": args.batch_size,
        "lr_g": args.lr, "lr_c": args.lr,
    }
    cfg = ToyConfig(**{k: v for k, v in overrides.items() if v is not None})
    return train_toy(cfg, steps=args.steps, out_dir=args.out, points_csv=args.points,
                     progress=None if args.json else print)


def _images(args: argparse.Namespace) -> dict:
    from explorer.image_training import ImageConfig, train_images

    overrides = {
        "loss": args.loss, "dataset": args.dataset, "lam": args.lam, "clip": args.clip,
        "n_critic": args.n_critic, "seed": args.seed, "device": args.device,
        "image_size": args.image_size, "batch_size": args.batch_size,
    }
    cfg = ImageConfig(**{k: v for k, v in overrides.items() if v is not None})
    return train_images(cfg, steps=args.steps, out_dir=args.out)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser("distances", help="TV, KL, JS and exact EMD between two histograms")
    d.add_argument("P", help="histogram P, comma-separated bin masses (normalized for you)")
    d.add_argument("Q", help="histogram Q, same number of bins")
    d.add_argument("--base", type=float, default=None, help="log base: e (default, nats) or 2 (bits)")
    d.add_argument("--ground", choices=["abs", "sq", "saturated"], default="abs",
                   help="ground distance between bins: |x-y|, (x-y)^2 or 1-exp(-alpha|x-y|)")
    d.add_argument("--alpha", type=_nonneg_float, default=1.0, help="alpha of the saturated ground distance")
    d.add_argument("--positions", default=None, help="bin positions, comma-separated (default 0,1,2,...)")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(run=_distances)

    for name, run, dataset in (("toy", _toy, "8gaussians"), ("images", _images, "shapes")):
        t = sub.add_parser(name, help=f"train a {'2-D' if name == 'toy' else 'small image'} GAN headless")
        t.add_argument("--loss", choices=["gan", "wgan", "wgan-gp"], default=None,
                       help="default: wgan-gp for toy, gan for images (fast enough on a CPU)")
        t.add_argument("--dataset", default=dataset)
        t.add_argument("--steps", type=_positive_int, default=1000, help="generator steps")
        t.add_argument("--lam", type=_nonneg_float, default=None, help="gradient-penalty weight lambda")
        t.add_argument("--clip", type=_nonneg_float, default=None, help="weight-clipping bound c (wgan)")
        t.add_argument("--n-critic", dest="n_critic", type=_positive_int, default=None,
                       help="critic iterations per generator step")
        t.add_argument("--batch-size", dest="batch_size", type=_positive_int, default=None)
        t.add_argument("--seed", type=int, default=None)
        t.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None)
        t.add_argument("--out", default=None, help="folder for checkpoint, metrics, PNG and GIF")
        t.add_argument("--json", action="store_true", help="print one JSON object last")
        if name == "toy":
            t.add_argument("--width", type=_positive_int, default=None, help="hidden units per layer")
            t.add_argument("--depth", type=_positive_int, default=None, help="hidden layers")
            t.add_argument("--lr", type=_nonneg_float, default=None, help="learning rate of both nets")
            t.add_argument("--points", default=None, help="CSV file of x,y points (with --dataset points)")
        else:
            t.add_argument("--image-size", dest="image_size", type=int, choices=[28, 32, 64], default=None)
        t.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["distances"]:
        # "-1,2" is a histogram with a negative mass (reported as such), not an unknown option.
        argv = [" " + a if re.match(r"-[\d.]", a) else a for a in argv]
    args = parser.parse_args(argv)
    try:
        result = args.run(args)
    except (ValueError, OSError) as err:  # bad input, or a file we can't read or write
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # e.g. training diverged: say so, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    _emit(result, args.json)
    return 0
