"""Checkpoint files: a trainer's state_dict() wrapped with a format tag, read back safely.

torch.save on write; torch.load(weights_only=True) on read, so opening a file never runs its code.
Anything unreadable (truncated, corrupted, foreign) is a ValueError with a readable sentence.

A file is also measured before torch reads it: its size, the number of entries in its archive and
the size of its object tree (everything but the tensors: config, history, optimizer settings) are
read from the zip's directory and capped, so a small hostile file cannot make the unpickler build
millions of objects. What the file declares inside (network sizes, step counter, history length, NaN
weights) is checked by explorer/upload_checks.py before anything is built from it; NaN and infinity
in the tensors are looked for in the file's bytes before torch copies them (_check_finite_storages).
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import torch

CHECKPOINT_FORMAT = "gan-explorer-checkpoint"
# Any checkpoint: the largest a page writes is the Image GAN page's, 92 MB (64 x 64 colour, 64 feature
# maps, Adam, the averaged generator). An upload to a page is held to that page's own largest
# (upload_checks.largest_checkpoint_bytes).
MAX_CHECKPOINT_BYTES = 96 * 2**20
# The object tree of a checkpoint with the full 10,000-record history pickles to 0.73 MB. torch's
# weights-only unpickler reads about 2.5 MB a second here, so this cap also bounds its time (~0.4 s).
MAX_PICKLE_BYTES = 2**20
MAX_ENTRIES = 1000                  # files in the archive: one per tensor (about 120 at the largest)


def checkpoint_bytes(trainer) -> bytes:
    """The checkpoint as bytes (for a download button)."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "trainer": trainer.state_dict()}, buf)
    return buf.getvalue()


def save_checkpoint(trainer, path: str | os.PathLike) -> None:
    """Write the trainer's state to `path` atomically (temp file, then rename)."""
    write_atomically(Path(path), checkpoint_bytes(trainer))


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it into place (os.replace): a reader,
    or another process writing the same file, sees the whole of one file or none, never half of two.
    The temporary file ends in ".tmp" and is removed if the write fails."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(source: str | os.PathLike | bytes | BinaryIO, max_bytes: int = MAX_CHECKPOINT_BYTES) -> dict:
    """Read a checkpoint (path, bytes or binary file) -> the trainer state dict (with "config").

    Uses torch.load(weights_only=True): no code in the file is run. ValueError for a truncated,
    corrupted, foreign or oversized file.

    Cost bound: at most `max_bytes` are read; the unpickler sees at most MAX_PICKLE_BYTES (under half
    a second) and the tensors take the file's size again (about 95 MB for the largest, a 92 MB file),
    but only once every floating-point tensor has been found free of NaN and infinity in the file's own
    bytes (_check_finite_storages), so a file refused for those costs no copy of its tensors.
    """
    data = _read_capped(source, max_bytes)
    _check_finite_storages(data, _check_archive(data))
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # pickle/zip errors come in many types; all mean "not a readable checkpoint"
        raise ValueError(_UNREADABLE) from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT or "trainer" not in blob:
        raise ValueError("This file is a PyTorch file but not a checkpoint saved by this app.")
    return blob["trainer"]


_UNREADABLE = ("This file is not a readable checkpoint of this app (truncated, corrupted or a different "
               "format).")


def _too_big(size: int, max_bytes: int) -> ValueError:
    return ValueError(f"The checkpoint is {size / 2**20:.1f} MB, more than the {max_bytes / 2**20:.0f} MB of the "
                      "largest one this app writes for it.")


def _read_capped(source: str | os.PathLike | bytes | BinaryIO, max_bytes: int) -> bytes:
    """The file's bytes, never reading more than max_bytes + 1 of them."""
    if isinstance(source, (bytes, bytearray)):
        data = source
    elif isinstance(source, (str, os.PathLike)):
        size = os.stat(source).st_size          # FileNotFoundError and friends pass through
        if size > max_bytes:
            raise _too_big(size, max_bytes)
        data = Path(source).read_bytes()
    else:
        data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_big(len(data), max_bytes)
    return bytes(data)


def _check_archive(data: bytes) -> zipfile.ZipFile:
    """The archive, if it is laid out as torch.save writes it and declares nothing too large; else
    ValueError.

    torch.save writes a zip of stored (uncompressed) entries: one object tree `<name>/data.pkl` and
    one entry per tensor. The entry count is read from the end-of-directory record before Python's
    zipfile parses the directory (a million-entry directory would cost seconds and hundreds of MB).
    """
    tail = data[-(2**16 + 22):]
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        raise ValueError(_UNREADABLE)
    entries = struct.unpack_from("<H", tail, end + 10)[0]
    if entries > MAX_ENTRIES:    # 0xFFFF (zip64) included: torch never writes that many here
        raise ValueError(f"The checkpoint's archive holds {entries:,} entries; this app's hold at most "
                         f"{MAX_ENTRIES:,}.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error):
        raise ValueError(_UNREADABLE) from None
    trees = [i for i in infos if i.filename.endswith("data.pkl")]
    if len(trees) != 1:
        raise ValueError(_UNREADABLE)
    if any(i.compress_type != zipfile.ZIP_STORED for i in infos) or sum(i.file_size for i in infos) > len(data):
        raise ValueError("The checkpoint's archive is packed differently from torch.save's (compressed "
                         "or with sizes that do not add up), so it is not opened.")
    if trees[0].file_size > MAX_PICKLE_BYTES:
        raise ValueError(f"The checkpoint's settings and history take {trees[0].file_size / 2**20:.1f} MB, "
                         f"more than the {MAX_PICKLE_BYTES / 2**20:g} MB of this app's largest (its history is "
                         "probably far longer than the app keeps).")
    return archive


# ----------------------------------------------------------------------------- NaN before loading
_FLOAT_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                   "BFloat16Storage": "bfloat16"}
_CHUNK = 2**20   # elements checked at a time: 1 MB of temporaries


class _Stub:
    """What any class named in the object tree becomes while it is only read for its storages: a
    record of its arguments and items. Nothing named in the file is imported or called."""

    def __init__(self, *args):
        self.args, self.items = args, {}

    def __setitem__(self, key, value):
        self.items[key] = value

    def append(self, value):
        self.items[len(self.items)] = value

    def extend(self, values):
        for value in values:
            self.append(value)

    def __setstate__(self, state):
        self.state = state


class _StorageRef:
    def __init__(self, kind: str, key: str):
        self.kind, self.key = kind, key


class _StorageReader(pickle.Unpickler):
    """Unpickles a checkpoint's object tree with every class a _Stub and every tensor storage a
    _StorageRef (its type and archive key): the layout of the tensors, without their data."""

    def find_class(self, module, name):
        return type(name, (_Stub,), {})

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise pickle.UnpicklingError("not a torch.save storage")
        kind = pid[1]   # the storage's class, a _Stub subclass named after it ("FloatStorage")
        return _StorageRef(getattr(kind, "__name__", ""), str(pid[2]))


def _storage_paths(node, path: tuple = ()) -> Iterator[tuple[tuple, _StorageRef]]:
    """(where in the tree, storage) for every storage below node; paths hold dict keys and list indices."""
    if isinstance(node, _StorageRef):
        yield path, node
    elif isinstance(node, _Stub):
        for child in node.args:
            yield from _storage_paths(child, path)
        for key, child in node.items.items():
            yield from _storage_paths(child, path + (key,))
    elif isinstance(node, dict):
        for key, child in node.items():
            yield from _storage_paths(child, path + (key,))
    elif isinstance(node, (list, tuple)):
        for i, child in enumerate(node):
            yield from _storage_paths(child, path + (i,))


def _finite_bytes(buf: memoryview, dtype) -> bool:
    """No NaN or infinity among the floats in buf (little-endian), in chunks, copying nothing else."""
    if dtype == "bfloat16":   # no NumPy type: a bfloat16 is not finite when its 8 exponent bits are all set
        values = np.frombuffer(buf, dtype="<u2")
        return not any(((values[i:i + _CHUNK] & 0x7F80) == 0x7F80).any() for i in range(0, len(values), _CHUNK))
    values = np.frombuffer(buf, dtype=np.dtype(dtype).newbyteorder("<"))
    return all(np.isfinite(values[i:i + _CHUNK]).all() for i in range(0, len(values), _CHUNK))


def _check_finite_storages(data: bytes, archive: zipfile.ZipFile) -> None:
    """Refuse a checkpoint whose floating-point tensors hold NaN or infinity, reading them in place in
    the archive's bytes (torch.save stores them uncompressed, _check_archive made sure) before
    torch.load copies any of them; the sentence names the tensor. Costs one pass over the bytes and
    about a megabyte."""
    tree = next(i for i in archive.infolist() if i.filename.endswith("data.pkl"))
    root = tree.filename[: -len("data.pkl")]
    try:
        if archive.read(root + "byteorder").strip() != b"little":
            return                                  # torch.load's own checks (upload_checks) cover the rest
    except KeyError:
        pass
    try:
        objects = _StorageReader(io.BytesIO(archive.read(tree))).load()
    except Exception:  # noqa: BLE001 - any failure to read the tree means it is not a readable checkpoint
        raise ValueError(_UNREADABLE) from None
    seen = set()
    for path, ref in _storage_paths(objects):
        dtype = _FLOAT_STORAGES.get(ref.kind)
        if dtype is None or ref.key in seen:
            continue
        seen.add(ref.key)
        try:
            info = archive.getinfo(f"{root}data/{ref.key}")
        except KeyError:
            raise ValueError(_UNREADABLE) from None
        name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
        start = info.header_offset + 30 + name_len + extra_len
        if not _finite_bytes(memoryview(data)[start:start + info.file_size], dtype):
            raise ValueError(_non_finite_sentence(path))


def _non_finite_sentence(path: tuple) -> str:
    """Where the NaN is, said as the upload checks say it (upload_checks._check_weights / _check_optimizer)."""
    where = path[1:] if path[:1] == ("trainer",) else path
    if where and where[0] in ("opt_g", "opt_c"):
        return (f"The checkpoint's optimizer state ({where[0]}) does not fit its weights or holds NaN, "
                f"infinite or out-of-range values ({where[-1]}).")
    if len(where) >= 2:
        return (f"The checkpoint's {where[0]} weights hold NaN or infinite values ({where[1]}); "
                "a run cannot resume from them.")
    return f"The checkpoint holds NaN or infinite values ({'.'.join(map(str, where)) or 'a tensor'})."
