"""What a visitor's file costs the process that opens it: the worst file each upload path accepts, and
each crafted hostile file (oversized networks, huge histories, process settings, step counters, NaN
weights), refused or accepted, with its time and peak memory.

    python bench/upload_limits.py [--only SUBSTRING]

Every case runs in a child forked from one warmed-up process (torch imported, one file of each kind
already opened, as in a worker that has served visitors), holding the upload's bytes as a worker
does when it receives them: "peak" is the growth of the resident set above that (Linux's VmHWM,
reset per case). The baseline, measured in the same run, is opening the 2-D page's default
checkpoint. Targets: every refusal under 1 s and 100 MB; every accepted file within the bound its
docstring states. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import io
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.process import configure  # noqa: E402

configure(threads=1)

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from explorer import histograms as H  # noqa: E402
from explorer.checkpoints import CHECKPOINT_FORMAT, checkpoint_bytes, load_checkpoint  # noqa: E402
from explorer.image_training import (ImageConfig, describe_image_checkpoint, image_trainer_from_bytes,  # noqa: E402
                                     make_image_trainer)
from explorer.toy_data import MAX_POINTS, parse_points_csv  # noqa: E402
from explorer.toy_training import ToyConfig, describe_toy_checkpoint, make_toy_trainer  # noqa: E402
from explorer.uploads import load_uploaded_images  # noqa: E402

REFUSAL_S, REFUSAL_MB = 1.0, 100.0
RECORD = {"step": 1, "loss_c": -0.123456789, "loss_g": 1.23456789, "w_est": 0.123456789, "gp": math.nan}


# ----------------------------------------------------------------------------- the files
def _saved(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "trainer": state}, buf)
    return buf.getvalue()


def _edited(data: bytes, **change) -> bytes:
    state = load_checkpoint(data)
    state["config"] = dict(state["config"], **change.pop("config", {}))
    state.update(change)
    return _saved(state)


def _nan(data: bytes, key: str = "generator", value: float = math.nan) -> bytes:
    state = load_checkpoint(data)
    state[key] = {k: v.clone().fill_(value) if v.is_floating_point() else v for k, v in state[key].items()}
    return _saved(state)


def _png(mode: str, w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def toy_files(folder: Path) -> dict[str, tuple]:
    """name -> (function, argument, bound): each 2-D case as the page's worker opens it."""
    default = make_toy_trainer(ToyConfig())
    default.step(5)
    default.history = [dict(RECORD, step=1 + i % 5) for i in range(200)]
    base = checkpoint_bytes(default)
    largest = make_toy_trainer(ToyConfig(width=512, depth=6, batch_size=64, n_critic=1))
    largest.step(1)
    largest.history = [dict(RECORD) for _ in range(10_000)]
    top = checkpoint_bytes(largest)
    sparse = {}
    for records in (20_000_000, 2_000_000):          # the files such histories make, without their bytes
        path = folder / f"history_{records}.pt"
        with path.open("wb") as f:
            f.truncate(records * 73)
        sparse[records] = path
    many = bytearray(base)
    end = many.rfind(b"PK\x05\x06")
    many[end + 8:end + 12] = (60_000).to_bytes(2, "little") * 2
    toy = describe_toy_checkpoint
    return {
        "toy: the page's default run (baseline)": (toy, base, "accept"),
        "toy: largest offered, full history (31 MB)": (toy, top, "accept"),
        "toy: width 4096, depth 16, noise_dim 256": (toy, _edited(base, config={"width": 4096, "depth": 16,
                                                                                 "noise_dim": 256}), "refuse"),
        "toy: width 2048, depth 16": (toy, _edited(base, config={"width": 2048, "depth": 16}), "refuse"),
        "toy: 20 million history records (1.5 GB file)": (load_checkpoint, sparse[20_000_000], "refuse"),
        "toy: 2 million history records (146 MB file)": (load_checkpoint, sparse[2_000_000], "refuse"),
        "toy: 20,000 history records (object tree over the cap)": (toy, _edited(base, history=[
            dict(RECORD) for _ in range(20_000)]), "refuse"),
        "toy: 1 MB object tree of empty records (worst under the cap)": (toy, _edited(base, history=[
            {} for _ in range(170_000)]), "refuse"),
        "toy: cpu_threads 256": (toy, _edited(base, config={"cpu_threads": 256}), "accept"),
        "toy: step counter 2^62": (toy, _edited(base, step=2**62), "refuse"),
        "toy: NaN weights (largest offered)": (toy, _nan(top), "refuse"),
        "toy: inf weights (largest offered)": (toy, _nan(top, "critic", math.inf), "refuse"),
        "toy: 60,000 archive entries declared": (toy, bytes(many), "refuse"),
        "toy: 40 MB file": (toy, top + bytes(9 * 2**20), "refuse"),
    }


def image_files() -> dict[str, tuple]:
    cfg = ImageConfig.for_loss("wgan-gp", image_size=64, channels=3, latent_dim=128, g_features=64, c_features=64,
                               batch_size=8, n_critic=1, device="cpu")
    trainer = make_image_trainer(cfg)
    trainer.step(1)
    top = checkpoint_bytes(trainer)
    small = make_image_trainer(ImageConfig.for_loss("gan", batch_size=8, g_features=8, c_features=8, latent_dim=16))
    small.step(1)
    base = checkpoint_bytes(small)
    return {
        "image: largest offered, opened": (describe_image_checkpoint, top, "accept"),
        "image: largest offered, resumed": (image_trainer_from_bytes, top, "accept"),
        "image: g_features 512": (describe_image_checkpoint, _edited(base, config={"g_features": 512}), "refuse"),
        "image: n_metric 10,000": (describe_image_checkpoint, _edited(base, config={"n_metric": 10_000}), "refuse"),
        "image: NaN generator (largest offered)": (describe_image_checkpoint, _nan(top), "refuse"),
    }


def other_files() -> dict[str, tuple]:
    rows = "x,y\n" + "".join(f"{-123.456789012345 + i * 1e-6:.15f},{987.654321098765:.15f}\n\n"
                             for i in range(MAX_POINTS))
    paste = ", ".join(f"{0.1 + i * 1e-13:.15f}" for i in range(H.MAX_BINS))
    tiny, bomb, rgba = _png("RGB", 40, 30), _png("L", 4000, 2975), _png("RGBA", 4000, 3000)
    return {
        "csv: 100,000 rows (largest accepted)": (parse_points_csv, rows.encode(), "accept"),
        "csv: one line of a million cells": (parse_points_csv, b"1," * 1_000_000 + b"\n", "refuse"),
        "csv: 7 MB": (parse_points_csv, b"1,2\n" * 1_750_000, "refuse"),
        "paste: 1,000 bins (largest accepted)": (lambda text: H.parse_text(text, "P"), paste, "accept"),
        "paste: 2 million characters": (lambda text: H.parse_text(text, "P"), "1," * 1_000_000, "refuse"),
        "images: 2,000 small PNGs in a zip": (_images, [("a.zip", _zip({f"{i}.png": tiny for i in range(2000)}))],
                                              "accept"),
        "images: 20 PNG pixel bombs of 12 MP (1 MB zip)": (_images, [("b.zip", _zip({f"{i}.png": bomb
                                                                                    for i in range(20)}))], "accept"),
        "images: one 12 MP RGBA PNG (largest decoded)": (_images, [("c.png", rgba)], "accept"),
        "images: one 36 MP PNG": (_images, [("d.png", _png("L", 6000, 6000))], "refuse"),
    }


def _images(files):
    return load_uploaded_images(files, 64, 3)


def warm_up() -> None:
    """Open one small file of each kind first, as a worker that has served visitors has."""
    describe_toy_checkpoint(checkpoint_bytes(make_toy_trainer(ToyConfig(width=16, depth=1))))
    small = checkpoint_bytes(make_image_trainer(ImageConfig.for_loss("gan", batch_size=8, g_features=8,
                                                                     c_features=8, latent_dim=16)))
    describe_image_checkpoint(small)
    image_trainer_from_bytes(small)
    parse_points_csv(b"1,2\n" * 20)
    _images([("w.png", _png("RGB", 40, 30))])


# ----------------------------------------------------------------------------- measuring
_LIBC = ctypes.CDLL("libc.so.6")


def _kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def measure(fn, arg) -> dict:
    """fn(arg) in a forked child: outcome, seconds, peak MB above the child's start, torch threads.

    Freed memory is handed back to the kernel first (the app keeps freed blocks mapped, see
    explorer/process.py): a child reusing the parent's free blocks would hide its growth."""
    gc.collect()
    _LIBC.malloc_trim(0)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        Path("/proc/self/clear_refs").write_text("5")    # VmHWM := VmRSS
        start_kb, threads = _kb("VmRSS"), torch.get_num_threads()
        t0 = time.perf_counter()
        try:
            fn(arg)
            outcome, message = "accepted", ""
        except ValueError as err:
            outcome, message = "refused", str(err)
        seconds = time.perf_counter() - t0
        result = {"outcome": outcome, "message": message, "seconds": seconds,
                  "peak_mb": (_kb("VmHWM") - start_kb) / 1024, "threads_after": torch.get_num_threads(),
                  "threads_before": threads}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = {**toy_files(Path(tmp)), **image_files(), **other_files()}
        warm_up()
        results, worst = {}, {"refusal_s": 0.0, "refusal_mb": 0.0}
        print(f"{os.cpu_count()} cores, 1 torch thread; each case forked from one warm process; "
              f"targets: refusals < {REFUSAL_S:g} s and < {REFUSAL_MB:g} MB")
        print(f"{'case':64} {'outcome':9} {'seconds':>8} {'peak MB':>8}")
        for name, (fn, arg, expected) in cases.items():
            if args.only not in name:
                continue
            r = measure(fn, arg)
            results[name] = r
            ok = r["outcome"].startswith(expected[:5]) and r["threads_after"] == r["threads_before"]
            print(f"{name:64} {r['outcome']:9} {r['seconds']:8.3f} {r['peak_mb']:8.1f}" + ("" if ok else "  UNEXPECTED"))
            if r["outcome"] == "refused":
                worst["refusal_s"] = max(worst["refusal_s"], r["seconds"])
                worst["refusal_mb"] = max(worst["refusal_mb"], r["peak_mb"])
        base = results.get("toy: the page's default run (baseline)")
        if base:
            print(f"baseline (the 2-D page's default checkpoint): {base['seconds']:.3f} s, {base['peak_mb']:.1f} MB")
        print(f"slowest refusal {worst['refusal_s']:.3f} s ({worst['refusal_s'] / REFUSAL_S:.2f} of the target), "
              f"largest {worst['refusal_mb']:.1f} MB ({worst['refusal_mb'] / REFUSAL_MB:.2f} of the target)")
    summary = {name: {"outcome": r["outcome"], "seconds": round(r["seconds"], 4), "peak_mb": round(r["peak_mb"], 1)}
               for name, r in results.items()}
    print(json.dumps({"cases": summary, "slowest_refusal_s": round(worst["refusal_s"], 4),
                      "largest_refusal_mb": round(worst["refusal_mb"], 1),
                      "targets": {"refusal_s": REFUSAL_S, "refusal_mb": REFUSAL_MB},
                      "met": worst["refusal_s"] < REFUSAL_S and worst["refusal_mb"] < REFUSAL_MB}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
