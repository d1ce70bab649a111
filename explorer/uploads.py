"""Your own pictures: PNG/JPG files or a zip of them, read in memory, resized and centre-cropped.

Everything here treats the input as hostile. A file that is not an image, is truncated, is huge
(checked from the header, before decoding), or a zip entry with an unsafe name, a suspicious
compression ratio or a nested archive is skipped with a sentence saying why; nothing is ever
extracted to disk and nothing raises past `load_uploaded_images` except "nothing usable at all".
"""
from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import PurePosixPath

import numpy as np
from PIL import Image, ImageOps

MAX_FILES = 2000                  # images accepted per upload (files and zip entries together)
MAX_FILE_BYTES = 20 * 2**20       # one encoded image
MAX_TOTAL_BYTES = 200 * 2**20     # all image bytes together, after unzipping
MAX_RATIO = 200                   # uncompressed / compressed size of a zip entry (bombs reach 1000+)
MAX_SIDE = 8192                   # pixels on either side, read from the header before decoding
MAX_PIXELS = 40_000_000           # width * height, same check
# Pixels actually decoded, after a JPEG's reduced-scale draft (a 40-megapixel photo decodes at an
# eighth a side): one picture, and an upload's pictures together. A 12 MP RGBA PNG decodes in about
# 0.25 s into 48 MB; the total keeps an upload of pixel bombs (small files, huge PNGs) to a few seconds.
MAX_DECODE_PIXELS = 12_000_000
MAX_TOTAL_DECODE_PIXELS = 120_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _decode(name: str, data: bytes, size: int, channels: int, pixels_left: int) -> tuple[np.ndarray, int]:
    """One image file -> (uint8 (channels, size, size), pixels decoded); ValueError with the reason
    otherwise, also when it would decode more than `pixels_left` pixels."""
    try:
        with warnings.catch_warnings():
            # Pillow's decompression-bomb guard warns above MAX_IMAGE_PIXELS: make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.format not in ("PNG", "JPEG"):
                    raise ValueError(f"{name}: a {img.format} image; only PNG and JPG are accepted.")
                w, h = img.size                     # from the header: nothing decoded yet
                if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
                    raise ValueError(f"{name}: {w}x{h} pixels is too large (at most {MAX_SIDE} a side).")
                if w < 1 or h < 1:
                    raise ValueError(f"{name}: the image is empty.")
                img.draft("RGB", (2 * size, 2 * size))  # JPEG: decode at reduced scale, much faster
                pixels = img.size[0] * img.size[1]        # what load() will decode
                if pixels > MAX_DECODE_PIXELS:
                    raise ValueError(f"{name}: {w}x{h} pixels would be decoded in full; at most "
                                     f"{MAX_DECODE_PIXELS / 1e6:g} million are (a JPEG is decoded at reduced scale).")
                if pixels > pixels_left:
                    raise ValueError(f"{name}: the upload's pictures add up to more than "
                                     f"{MAX_TOTAL_DECODE_PIXELS / 1e6:g} million pixels to decode; skipped.")
                img.load()
                img = _shrink(img, size)
                if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                    rgba = img.convert("RGBA")
                    flat = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                    img = Image.alpha_composite(flat, rgba)   # transparent -> black, like Shapes
                img = img.convert("L" if channels == 1 else "RGB")
                img = ImageOps.fit(img, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
                a = np.asarray(img, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"{name}: too many pixels (Pillow's decompression-bomb guard).") from None
    except Image.UnidentifiedImageError:
        raise ValueError(f"{name}: not an image Pillow can read.") from None
    except (OSError, SyntaxError, EOFError) as err:   # truncated or corrupt data
        raise ValueError(f"{name}: damaged image ({err}).") from None
    return (a[None] if channels == 1 else a.transpose(2, 0, 1)), pixels


def _shrink(img: Image.Image, size: int) -> Image.Image:
    """A whole-number box reduction to at least 2 * size pixels a side, before any mode conversion:
    every later copy of the picture is then small (a 36 MP RGBA PNG peaked at 700 MB without it)."""
    factor = min(img.size) // (2 * size)
    return img.reduce(factor) if factor >= 2 and img.mode in ("L", "LA", "RGB", "RGBA") else img


def _zip_entries(name: str, data: bytes, skipped: list[str]):
    """Yield (entry name, bytes) of the image entries of a zip, read in memory with size caps."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        skipped.append(f"{name}: not a readable zip archive ({err}).")
        return
    for info in infos:
        entry = f"{name}/{info.filename}"
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if info.is_dir() or path.parts[:1] == ("__MACOSX",) or path.name.startswith("."):
            continue    # folders and desktop metadata: not pictures, not worth a message
        if path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
            skipped.append(f"{entry}: unsafe path in the archive (absolute or '..'); skipped.")
            continue
        if path.suffix.lower() == ".zip":
            skipped.append(f"{entry}: archives inside archives are not opened.")
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(f"{entry}: not a .png/.jpg file.")
            continue
        if info.file_size > MAX_FILE_BYTES:
            skipped.append(f"{entry}: declares {info.file_size} bytes unpacked, over {MAX_FILE_BYTES}.")
            continue
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 2**20:
            skipped.append(f"{entry}: compressed {info.file_size // max(info.compress_size, 1)}:1, "
                           "looks like a zip bomb.")
            continue
        try:
            with archive.open(info) as stream:
                # Never trust the declared size: read one byte past the cap to catch a liar.
                blob = stream.read(MAX_FILE_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError) as err:
            skipped.append(f"{entry}: could not be unpacked ({err}).")
            continue
        if len(blob) > MAX_FILE_BYTES:
            skipped.append(f"{entry}: unpacks to more than {MAX_FILE_BYTES} bytes.")
            continue
        yield entry, blob


def load_uploaded_images(files: list[tuple[str, bytes]], size: int = 64,
                         channels: int = 3) -> tuple[np.ndarray, list[str]]:
    """Decode uploaded (name, bytes) pairs, PNG/JPG or zips of them, into uint8 (n, C, size, size).

    Each picture is scaled so its shorter side is `size`, then centre-cropped to a square.
    Returns (images, skipped): skipped holds one human-readable sentence per file left out.
    Raises ValueError only when no picture at all could be used.

    Cost bound: sizes and counts are read from zip directories and image headers before anything is
    unpacked or decoded; at most MAX_FILES pictures, MAX_TOTAL_BYTES of them, and MAX_TOTAL_DECODE_PIXELS
    decoded pixels (about 2 s of decoding on one core here), one picture at a time (at most about
    2 x 4 x MAX_DECODE_PIXELS = 96 MB at once), into a result of n x channels x size^2 bytes (24.6 MB
    at 2000 colour pictures of 64 x 64).
    """
    if size < 8 or channels not in (1, 3):
        raise ValueError(f"Uploads are resized to size >= 8 with 1 or 3 channels; got {size}, {channels}.")
    images: list[np.ndarray] = []
    skipped: list[str] = []
    total, pixels_left = 0, MAX_TOTAL_DECODE_PIXELS

    def candidates():
        for name, data in files:
            if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
                yield from _zip_entries(name, data, skipped)
            else:
                yield name, data

    for name, data in candidates():
        if len(images) >= MAX_FILES:
            skipped.append(f"{name}: more than {MAX_FILES} pictures; the rest are skipped.")
            break
        if len(data) > MAX_FILE_BYTES:
            skipped.append(f"{name}: {len(data)} bytes, over the {MAX_FILE_BYTES}-byte limit per picture.")
            continue
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            skipped.append(f"{name}: uploads add up to more than {MAX_TOTAL_BYTES} bytes; the rest are skipped.")
            break
        try:
            image, pixels = _decode(name, data, size, channels, pixels_left)
        except ValueError as err:
            skipped.append(str(err))
            continue
        images.append(image)
        pixels_left -= pixels
    if not images:
        reasons = " ".join(skipped[:5])
        raise ValueError(f"None of the uploaded files is a usable PNG/JPG picture. {reasons}".strip())
    return np.stack(images), skipped
