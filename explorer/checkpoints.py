"""Checkpoint files: a trainer's state_dict() wrapped with a format tag, read back safely.

torch.save on write; torch.load(weights_only=True) on read, so opening a file never runs its code.
Anything unreadable (truncated, corrupted, foreign) is a ValueError with a readable sentence.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import torch

CHECKPOINT_FORMAT = "gan-explorer-checkpoint"


def checkpoint_bytes(trainer) -> bytes:
    """The checkpoint as bytes (for a download button)."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "trainer": trainer.state_dict()}, buf)
    return buf.getvalue()


def save_checkpoint(trainer, path: str | os.PathLike) -> None:
    """Write the trainer's state to `path` atomically (temp file, then rename)."""
    path = Path(path)
    data = checkpoint_bytes(trainer)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(source: str | os.PathLike | bytes | BinaryIO) -> dict:
    """Read a checkpoint (path, bytes or binary file) -> the trainer state dict (with "config").

    Uses torch.load(weights_only=True): no code in the file is run. ValueError for a truncated,
    corrupted or foreign file.
    """
    f = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        blob = torch.load(f, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception:  # pickle/zip errors come in many types; all mean "not a readable checkpoint"
        raise ValueError("This file is not a readable checkpoint of this app (truncated, corrupted "
                         "or a different format).") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT or "trainer" not in blob:
        raise ValueError("This file is a PyTorch file but not a checkpoint saved by this app.")
    return blob["trainer"]
