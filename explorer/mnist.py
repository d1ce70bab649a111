"""MNIST and Fashion-MNIST: downloaded once into a cache folder, checked, parsed from IDX files.

IDX layout (LeCun): a big-endian header `0x00 0x00 <dtype 0x08 = uint8> <ndim>`, then ndim
big-endian uint32 sizes, then the data row-major. Image files have magic 2051 (= 0x00000803,
three dimensions: count x 28 x 28). Files may be gzip-compressed (they are, on every mirror).
"""
from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import numpy as np

from explorer.process import cache_dir as app_cache_dir

IMAGE_MAGIC = 2051
# name -> (mirrors, {file: md5 of the .gz as published}, train count, test count)
DATASETS = {
    "mnist": (
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3"},
    ),
    "fashion-mnist": (
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79"},
    ),
}
COUNTS = {"train-images-idx3-ubyte.gz": 60_000, "t10k-images-idx3-ubyte.gz": 10_000}
MAX_DOWNLOAD_BYTES = 64 * 2**20   # the largest file is ~26 MB gzipped; refuse anything far bigger


class DatasetUnavailable(OSError):
    """The dataset could not be downloaded or read; the message says what to do instead."""


def default_cache_dir() -> Path:
    """$EXPLORER_CACHE_DIR, else `.cache/` in the project folder (ignored by git)."""
    return app_cache_dir()


def parse_idx_images(data: bytes) -> np.ndarray:
    """Parse an IDX image file (raw or gzip bytes) into uint8 (count, rows, cols).

    Raises ValueError naming the problem: wrong magic number, header/size mismatch (truncated).
    """
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise ValueError(f"The IDX file is a damaged gzip archive ({err}).") from None
    if len(data) < 16:
        raise ValueError(f"The IDX file is truncated: {len(data)} bytes, shorter than its 16-byte header.")
    magic = int.from_bytes(data[:4], "big")
    if magic != IMAGE_MAGIC:
        raise ValueError(f"Not an IDX image file: magic number {magic}, expected {IMAGE_MAGIC} "
                         "(unsigned bytes, three dimensions).")
    count, rows, cols = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    expected = 16 + count * rows * cols
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(f"The IDX file is {what}: header says {count} images of {rows}x{cols} "
                         f"({expected} bytes), file has {len(data)} bytes.")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def fetch_url(url: str, timeout: float = 30.0) -> bytes:
    """Download url into memory (at most MAX_DOWNLOAD_BYTES)."""
    request = urllib.request.Request(url, headers={"User-Agent": "distance-gan-explorer"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - fixed https/http mirrors
        data = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise OSError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes; refusing it.")
    return data


def _check(file: str, data: bytes, md5: str | None) -> np.ndarray:
    """Checksum and image count (when md5 is given), then parse and check the 28x28 size."""
    if md5 is not None and hashlib.md5(data, usedforsecurity=False).hexdigest() != md5:
        raise ValueError(f"{file}: checksum mismatch (damaged or different file).")
    images = parse_idx_images(data)
    if images.shape[1:] != (28, 28) or (md5 is not None and len(images) != COUNTS[file]):
        raise ValueError(f"{file}: expected {COUNTS[file]} images of 28x28, found {images.shape}.")
    return images


def load_mnist(name: str = "mnist", cache_dir: str | Path | None = None,
               fetch: Callable[[str], bytes] | None = None,
               strict: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) uint8 images (60000, 28, 28) and (10000, 28, 28) of MNIST or Fashion-MNIST.

    Reads `<cache_dir>/<name>/<file>` when present and valid; otherwise downloads it with fetch
    (default fetch_url, trying each mirror), checks it, and stores it atomically. strict=False
    skips the MD5 and image-count tests (for small self-made files); magic, length and 28x28 are
    always checked. Offline -> DatasetUnavailable with a message suggesting Shapes.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown download dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    mirrors, files = DATASETS[name]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / name
    fetch = fetch or fetch_url
    out = []
    for file, md5 in files.items():
        md5 = md5 if strict else None
        path = folder / file
        if path.exists():
            try:
                out.append(_check(file, path.read_bytes(), md5))
                continue
            except ValueError:
                path.unlink(missing_ok=True)   # a damaged cached file: fetch it again
        errors = []
        for mirror in mirrors:
            try:
                data = fetch(mirror + file)
                images = _check(file, data, md5)
            except (OSError, ValueError, urllib.error.URLError) as err:
                errors.append(f"{mirror}: {err}")
                continue
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(path)            # atomic: a half-written file never looks cached
            out.append(images)
            break
        else:
            pretty = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}[name]
            # Where the file goes, said relative to the app's cache folder: a visitor must not see the
            # server's own paths (the one who runs the server knows where EXPLORER_CACHE_DIR points).
            where = f"{folder.name}/"
            raise DatasetUnavailable(
                f"Could not download {pretty} ({file}); are you offline? Choose the Shapes dataset, which needs "
                f"no download; or whoever runs the app can put {file} into {where} in the app's cache folder "
                f"(EXPLORER_CACHE_DIR, by default .cache/ in the project) and try again. "
                f"({len(errors)} mirror(s) failed: {'; '.join(e.split(': ', 1)[-1] for e in errors)[:300]})")
    return out[0], out[1]
