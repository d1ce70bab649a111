"""Hostile inputs shared by the fuzz tests (test_fuzz*.py): files, CSV text, pickles, and a sandbox.

Every hostile file name carries the token `fuzzpwn`, so the last fuzz test can look for any copy that
escaped to disk.
"""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from explorer.checkpoints import checkpoint_bytes
from explorer.toy_data import MAX_POINTS
from explorer.toy_training import ToyConfig, make_toy_trainer

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "fuzzpwn"


# ----------------------------------------------------------------------------- sandbox
@pytest.fixture(autouse=True)
def sandbox(tmp_path, monkeypatch):
    """Run every case with an empty temp HOME and cwd and a private cache; both must stay empty."""
    home, cwd, cache = tmp_path / "home", tmp_path / "cwd", tmp_path / "cache"
    for d in (home, cwd, cache):
        d.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(cache))
    monkeypatch.chdir(cwd)
    yield tmp_path
    # Matplotlib builds its font cache under $HOME on first import in a fresh HOME: a library's
    # own cache, not the app's data (reported; MPLCONFIGDIR would move it).
    library = {"home/.cache", "home/.config", "home/.cache/matplotlib", "home/.config/matplotlib"}
    written = [str(p.relative_to(tmp_path)) for d in (home, cwd) for p in d.rglob("*")
               if str(p.relative_to(tmp_path)) not in library and "matplotlib" not in p.parts]
    assert written == [], f"files written outside the cache folder: {written}"


def _msg(err: pytest.ExceptionInfo) -> str:
    """The message must be a readable sentence, not a repr or an empty string."""
    text = str(err.value)
    assert len(text) >= 15 and " " in text, f"unclear message: {text!r}"
    assert "Traceback" not in text
    return text


def _rows(n: int) -> str:
    return "".join(f"{i % 7 * 0.1},{i % 5 * 0.2}\n" for i in range(n))


BAD_CSV = {
    "empty": b"",
    "blank-lines": b"\n\n  \n",
    "header-only": b"x,y\n",
    "too-few": _rows(3).encode(),
    "one-column": ("x\n" + "1\n" * 20).encode(),
    "three-columns": ("x,y,z\n" + "1,2,3\n" * 20).encode(),
    "text-cells": ("x,y\n" + "a,b\n" * 20).encode(),
    "nan": (_rows(20) + "nan,1\n").encode(),
    "inf": (_rows(20) + "inf,1\n").encode(),
    "overflow-to-inf": (_rows(20) + "1e400,1\n").encode(),
    "huge-coordinates": (_rows(20) + "1e300,1\n").encode(),
    "binary-garbage": bytes(range(256)) * 40,
    "latin-1": ("x,y\n" + "1,2\n" * 20 + "\xe9,1\n").encode("latin-1"),
    "nul-bytes": (_rows(20) + "1,2\x00\n").encode(),
    "decimal-commas": ("x;y\n" + "1,5;2,5\n" * 20).encode(),
    "header-in-the-middle": (_rows(20) + "x,y\n" + _rows(20)).encode(),
    "too-many-rows": _rows(MAX_POINTS + 1).encode(),
    "one-huge-line": b"1," * 2_000_000,
    "html": b"<html><body>not a csv</body></html>\n" * 20,
    "zip-file": b"PK\x03\x04" + bytes(200),
}


def png_bytes(w: int = 40, h: int = 30, mode: str = "RGB") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (w, h), (200, 30, 30) if mode == "RGB" else 128).save(buf, format="PNG")
    return buf.getvalue()


def huge_png(w: int, h: int) -> bytes:
    """A valid grey PNG of w x h black pixels, built with zlib (fast, small: it compresses 1000:1)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = zlib.compress(bytes(w + 1) * h, 1)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def zip_of(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def lying_zip(name: str, true_size: int) -> bytes:
    """A zip whose headers claim a tiny entry while the deflate stream unpacks to true_size bytes."""
    data = zip_of({name: bytes(true_size)})
    real = struct.pack("<I", true_size)
    return data.replace(real, struct.pack("<I", 100))   # both the local and the central header


BAD_IMAGE_UPLOADS = {   # built lazily: some are 100 MB before compression
    "text-file": lambda: [(f"{TOKEN}.png", b"hello, not a picture")],
    "empty-file": lambda: [(f"{TOKEN}.png", b"")],
    "truncated-png": lambda: [(f"{TOKEN}.png", png_bytes()[:60])],
    "truncated-jpeg": lambda: [(f"{TOKEN}.jpg", b"\xff\xd8\xff\xe0" + bytes(50))],
    "gif": lambda: [(f"{TOKEN}.gif", b"GIF89a" + bytes(30))],
    "svg-script": lambda: [(f"{TOKEN}.svg", b"<svg onload='alert(1)'></svg>")],
    "10000x10000-png": lambda: [(f"{TOKEN}.png", huge_png(10_000, 10_000))],
    "60000x1-png": lambda: [(f"{TOKEN}.png", huge_png(60_000, 1))],
    "zip-bomb": lambda: [(f"{TOKEN}.zip", zip_of({"bomb.png": bytes(120 * 2**20)}))],
    "zip-bomb-liar": lambda: [(f"{TOKEN}.zip", lying_zip("liar.png", 40 * 2**20))],
    "zip-of-zip": lambda: [(f"{TOKEN}.zip", zip_of({"inner.zip": zip_of({"a.png": png_bytes()})}))],
    "zip-traversal-only": lambda: [(f"{TOKEN}.zip", zip_of({f"../../{TOKEN}_up.png": png_bytes(),
                                                    f"/tmp/{TOKEN}_abs.png": png_bytes(),
                                                    f"C:/{TOKEN}_drive.png": png_bytes()}))],
    "zip-of-text": lambda: [(f"{TOKEN}.zip", zip_of({"readme.txt": b"hi"}))],
    "corrupt-zip": lambda: [(f"{TOKEN}.zip", b"PK\x03\x04" + bytes(100))],
    "nothing": lambda: [],
}


@pytest.fixture(scope="module")
def tiny_checkpoint() -> bytes:
    trainer = make_toy_trainer(ToyConfig(seed=0, width=8, depth=1, batch_size=16, n_critic=1))
    trainer.step(3)
    return checkpoint_bytes(trainer)


class _Evil:
    """Unpickling this object opens (creates) a file: the classic "pickle runs code" exploit."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))
