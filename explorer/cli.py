"""Headless command line: `python -m explorer distances|toy|images ... [--json]`.

The CLI builds the same config dataclasses the pages build from widgets, and calls the same
core functions. With --json the last line printed is one JSON object (non-finite numbers are
written as the strings "inf", "-inf" or "nan", so strict JSON readers accept it).
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import re
import sys
from pathlib import Path
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
        raise CliError(f"{name} must be a comma-separated list of numbers, such as 0.2,0.5,0.3; "
                       f"got {text!r}.") from None


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
# Flags come from the config dataclasses' fields, their trailing comments as help; these fields are
# left out (set elsewhere, or not for a command line), and these choice lists go with these fields.
NOT_FLAGS = {"history_cap", "n_metric", "channels_last"}
CHOICES = {"loss": "LOSSES", "optimizer": "OPTIMIZERS", "device": "DEVICES", "engine": "ENGINES",
           "g_norm": "NORMS", "c_norm": "NORMS", "amp": "PRECISIONS", "image_size": "IMAGE_SIZES"}


def field_help(cls: type) -> dict[str, str]:
    """{field: its trailing comment} from the source of a dataclass and its bases."""
    notes: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        for line in inspect.getsource(klass).splitlines():
            m = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.+)$", line)
            if m:
                notes[m.group(1)] = m.group(2).strip()
    return notes


def add_config_flags(parser: argparse.ArgumentParser, cls: type, datasets: tuple) -> None:
    """One --flag per field of `cls` (a ToyConfig or ImageConfig); default None: the config's own."""
    from explorer import choices
    notes = field_help(cls)
    for f in dataclasses.fields(cls):
        if f.name in NOT_FLAGS:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type).split("|")[0].strip()
        options = getattr(choices, CHOICES[f.name]) if f.name in CHOICES else None
        note = notes.get(f.name, "")
        if f.name == "dataset":   # checked by the config, whose message lists them
            note = f"one of {', '.join(datasets)}"
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": note}
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            continue
        if options is not None:
            kw["choices"] = list(options)
        kw["type"] = {"int": _whole, "float": _number}.get(kind, str)
        parser.add_argument(flag, **kw)


def _config(cls: type, args: argparse.Namespace, base: Any) -> Any:
    """The config from the flags given; `base` decides every field not given."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
             if f.name not in NOT_FLAGS and getattr(args, f.name, None) is not None}
    return dataclasses.replace(base, **given)


def _toy(args: argparse.Namespace) -> dict:
    from explorer.process import configure
    configure(threads=args.threads or 1)   # small MLPs gain little from more threads
    from explorer.toy_training import ToyConfig, train_toy
    if args.lr is not None:
        args.lr_g = args.lr_g or args.lr
        args.lr_c = args.lr_c or args.lr
    # The settings the app proposes for this dataset and loss, then every flag given on top.
    base = ToyConfig.recommended(args.dataset or "8gaussians", args.loss or "wgan-gp", args.spread)
    cfg = _config(ToyConfig, args, base)
    return train_toy(cfg, steps=args.steps, out_dir=args.out, points_csv=args.points,
                     progress=None if args.json else print)


def _images(args: argparse.Namespace) -> dict:
    from explorer.process import configure
    configure(threads=args.threads)
    from explorer.image_training import ImageConfig, train_images
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(ImageConfig)
             if f.name not in NOT_FLAGS and getattr(args, f.name, None) is not None}
    cfg = ImageConfig.for_loss(given.pop("loss", "gan"), **given)   # the loss's own defaults under the flags
    return train_images(cfg, steps=args.steps, out_dir=args.out)


def _sweep(args: argparse.Namespace) -> dict:
    from explorer.process import configure
    configure(threads=1)
    from explorer.sweep import SHEET_SAMPLES, grid_configs, parse_values, run_sweep
    from explorer.sweep_table import run_line, text_table, write_csv
    from explorer.toy_training import ToyConfig
    grid = {}
    for item in args.grid:
        name, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise CliError(f"--grid takes FIELD=V1,V2,... or FIELD=A..B; got {item!r}.")
        grid[name.strip().replace("-", "_")] = parse_values(values)
    keys = tuple(grid)
    configs = grid_configs(ToyConfig.recommended(args.dataset, args.loss), grid)
    finished = iter(range(1, len(configs) + 1))

    def say(index: int, row: dict) -> None:     # one line a run, as it finishes
        print(f"[{next(finished)}/{len(configs)}] {run_line(keys, row)}", flush=True)

    result = run_sweep(configs, args.steps, args.backend, keys, on_row=say,
                       samples=SHEET_SAMPLES if args.sheet else 0)
    if args.sheet:
        from explorer.plots import sweep_sheet_png
        Path(args.sheet).write_bytes(sweep_sheet_png(keys, result["runs"]))
        for row in result["runs"]:   # the points were for the sheet, not for the table
            row.pop("samples", None)
    if args.csv:
        write_csv(args.csv, keys, result["runs"])
    if args.json:
        return result
    print(text_table(keys, result["runs"]))
    summary = {"backend": result["backend"], "runs": len(configs),
               "failed": sum("error" in row for row in result["runs"])}
    files = {name: getattr(args, name) for name in ("csv", "sheet") if getattr(args, name)}
    return {**summary, **files}


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


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


def build_parser(training: bool = True) -> argparse.ArgumentParser:
    """The parser; training=False leaves out `toy` and `images`, whose flags need torch to build."""
    from explorer import choices
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser("distances", help="TV, KL, JS and exact EMD between two histograms")
    d.add_argument("P", help="histogram P, comma-separated bin masses (normalized for you)")
    d.add_argument("Q", help="histogram Q, same number of bins")
    d.add_argument("--base", type=float, default=None, help="log base: e (default, nats) or 2 (bits)")
    d.add_argument("--ground", choices=choices.GROUNDS, default="abs",
                   help="ground distance between bins: |x-y|, (x-y)^2 or 1-exp(-alpha|x-y|)")
    d.add_argument("--alpha", type=_nonneg_float, default=1.0, help="alpha of the saturated ground distance")
    d.add_argument("--positions", default=None, help="bin positions, comma-separated (default 0,1,2,...)")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(run=_distances)

    if not training:
        return parser
    from explorer.image_training import ImageConfig
    from explorer.toy_training import ToyConfig
    for name, run, cls, datasets in (("toy", _toy, ToyConfig, choices.TOY_DATASETS),
                                     ("images", _images, ImageConfig, choices.IMAGE_DATASETS)):
        t = sub.add_parser(name, help=f"train a {'2-D' if name == 'toy' else 'small image'} GAN headless",
                           description="Every setting not given keeps the run's default" + (
                               ": ToyConfig.recommended for the dataset and loss." if name == "toy"
                               else " for its loss (ImageConfig.for_loss)."))
        t.add_argument("--steps", type=_positive_int, default=1000, help="generator steps")
        t.add_argument("--out", default=None, help="folder for checkpoint, metrics, PNG and GIF")
        t.add_argument("--json", action="store_true", help="print one JSON object last")
        t.add_argument("--threads", type=_positive_int, default=None,
                       help="torch threads (default: 1 for toy, torch's own choice for images)")
        if name == "toy":
            t.add_argument("--lr", type=_nonneg_float, default=None, help="learning rate of both nets")
            t.add_argument("--points", default=None, help="CSV file of x,y points (with --dataset points)")
        add_config_flags(t, cls, datasets)
        t.set_defaults(run=run)

    w = sub.add_parser("sweep", help="a grid of headless 2-D runs on the local worker pool or Ray",
                       description="Every combination of the --grid values on top of ToyConfig.recommended "
                                   "for the dataset and loss; one JSON object with every run's result.")
    w.add_argument("--grid", action="append", required=True, metavar="FIELD=V1,V2",
                   help="a setting and its values, e.g. lam=0.1,1,10 (give --grid once per setting)")
    w.add_argument("--dataset", default="8gaussians", help="one of " + ", ".join(choices.TOY_DATASETS[:-1]))
    w.add_argument("--loss", default="wgan-gp", choices=choices.LOSSES)
    w.add_argument("--steps", type=_positive_int, default=500, help="generator steps of every run")
    w.add_argument("--backend", default="auto", choices=("auto", "local", "ray"),
                   help="auto: Ray when EXPLORER_RAY_ADDRESS is set, else the local pool")
    w.add_argument("--csv", default=None, metavar="PATH", help="also write the table to PATH as CSV, one row a run")
    w.add_argument("--sheet", default=None, metavar="PATH",
                   help="also draw every run's final samples as small multiples, one PNG (a column per seed)")
    w.add_argument("--json", action="store_true", help="print one JSON object last")
    w.set_defaults(run=_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from explorer.process import configure
    configure()     # before POT or matplotlib are imported; `toy` and `images` add their threads
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(training=argv[:1] != ["distances"])   # distances: no torch to import
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
