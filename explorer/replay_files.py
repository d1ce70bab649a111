"""Where replays are kept: a file each in cache_dir()/"replays", and one recording for a missing one.

A replay (explorer/replays.py) is a file named by its name (the run's key and the recording's
lengths) and this format's version. It is written to a temporary file and renamed into place
(os.replace), so a reader, or a second server recording the same replay at the same moment, sees
the whole of one file or none: never half of two. The folder is bounded: after each write the least
recently read files are removed until it holds at most MAX_BYTES.

Reading never fails a page: a file that does not read back whole as a replay of this version and
name (truncated, corrupted, from another version) is removed and recorded again. The file is a
pickle read with a list of allowed classes (the replay, the snapshots pages draw, NumPy's arrays):
nothing a file names beyond them is imported or run.

`replay_or_recording(recipe)` is what a page asks: the replay, read from its file once a process
(every later visitor and the next server start read it), or the job recording it on a worker,
started by the first request; the server writes the file when the job ends.
"""
from __future__ import annotations

import io
import logging
import os
import pickle
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from explorer.checkpoints import write_atomically
from explorer.process import cache_dir
from explorer.replays import Replay, ReplayRecipe, record_replay

log = logging.getLogger(__name__)
FOLDER = "replays"
FORMAT, VERSION = "gan-explorer-replay", 1   # a new VERSION names new files; the old ones age out
SUFFIX = f".v{VERSION}.replay"
# Measured files: the 2-D page's defaults 10.2 MB (nine checkpoints, 8.4 MB; 41 frames of 42 KB; written
# in 0.06 s, read in 0.01 s), a Compare preset of two runs 20.1 MB (16.7 MB of checkpoints), so about
# 30 MB for three: the page's and all five presets' make about 135 MB, which the cap holds with room.
MAX_BYTES = 256 * 2**20
RETRY_S = 300.0    # a recording that failed is tried again after this long (a worker died, say)
# Replays held in the server's memory once read, the least recently asked for dropped first (and read
# again from their file, 0.01-0.05 s, when asked for again): the 2-D page's and three or four presets'.
KEPT_BYTES = 96 * 2**20

# What a replay's pickle may name: the replay, the frames pages draw, and NumPy arrays (as NumPy
# 1.x and 2.x write them). Anything else is refused before it is imported.
ALLOWED = {
    ("explorer.replays", "Replay"), ("explorer.toy_training", "ToySnapshot"), ("explorer.compare", "CompareSnapshot"),
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
}


def replay_folder() -> Path:
    return cache_dir() / FOLDER


def replay_path(folder: Path, name: str) -> Path:
    return Path(folder) / f"{name}{SUFFIX}"


# ----------------------------------------------------------------------------- files
def save_replay(replay: Replay, folder: Path, max_bytes: int = MAX_BYTES) -> Path:
    """Write `replay` to its file in `folder` atomically (a temporary file, then os.replace), then
    bound the folder (prune); the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = replay_path(folder, replay.name)
    write_atomically(path, pickle.dumps({"format": FORMAT, "version": VERSION, "replay": replay},
                                        protocol=pickle.HIGHEST_PROTOCOL))
    prune(folder, max_bytes, keep=path)
    return path


def load_replay(folder: Path, name: str) -> Replay | None:
    """The replay `name` from its file in `folder`; None if there is none. A file that does not read
    back as that replay is removed (None: it is recorded again). Reading marks it as recently used."""
    path = replay_path(folder, name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warning("could not read the replay %s: %s", path, err)
        return None
    try:
        blob = _Reader(io.BytesIO(data)).load()
        replay = blob["replay"]
        if blob["format"] != FORMAT or blob["version"] != VERSION or not isinstance(replay, Replay) \
                or replay.name != name or not replay.frames or not replay.checkpoints:
            raise ValueError("not this replay")
    except Exception as err:   # truncated, corrupted, another version: record it again
        log.warning("removing the unreadable replay %s (%s)", path, err)
        path.unlink(missing_ok=True)
        return None
    os.utime(path)   # recently used: the last file pruned
    return replay


def prune(folder: Path, max_bytes: int, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used replay files of `folder` until they total at most max_bytes
    (`keep`, just written, stays whatever its size), and temporary files an interrupted writer left
    an hour ago or more; the paths removed."""
    now, files, removed = time.time(), [], []
    for path in Path(folder).iterdir():
        try:
            stat = path.stat()
        except FileNotFoundError:   # another server pruned it meanwhile
            continue
        if path.name.endswith(".tmp") and now - stat.st_mtime > 3600:
            path.unlink(missing_ok=True)
            removed.append(path)
        elif path.name.endswith(".replay"):
            files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):   # oldest first
        if total <= max_bytes:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            removed.append(path)
            total -= size
    return removed


class _Reader(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"a replay names {module}.{name}, which it may not")
        return super().find_class(module, name)


# ----------------------------------------------------------------------------- a page's request
_LOCK = threading.Lock()
_KEPT: OrderedDict[Path, tuple[Replay, int]] = OrderedDict()   # file -> (its replay, its size), once read here
_RECORDING: dict[Path, tuple[Any, float]] = {}         # file -> (its recording job, when it started)


def replay_or_recording(recipe: ReplayRecipe, folder: Path | None = None, pool: Any = None) -> Replay | Any:
    """The recipe's replay if it has been recorded (read from its file once a process), else the pool
    Job recording it (started by the first request; its .latest is the step reached): the server
    writes the file when it ends. A job that failed is returned as it is (its .future holds why) until
    RETRY_S after its start, then recorded again."""
    folder = replay_folder() if folder is None else Path(folder)
    path = replay_path(folder, recipe.name)
    with _LOCK:
        if path in _KEPT:
            _KEPT.move_to_end(path)
            return _KEPT[path][0]
        job, started = _RECORDING.get(path, (None, 0.0))
        if job is not None and (not job.future.done() or time.monotonic() - started < RETRY_S):
            return job
        replay = load_replay(folder, recipe.name)   # another server may have recorded it meanwhile
        if replay is not None:
            _keep(path, replay)
            return replay
        if pool is None:
            from explorer.pool import get_pool
            pool = get_pool()
        job = pool.submit(record_replay, recipe)
        _RECORDING[path] = (job, time.monotonic())
    job.future.add_done_callback(lambda done: _recorded(done, folder, path))
    return job


def _recorded(done: Any, folder: Path, path: Path) -> None:
    """A recording job ended (in the pool's reader thread): write its replay and keep it in memory."""
    if done.cancelled() or done.exception() is not None:
        log.warning("recording the replay %s failed: %s", path.name, done.exception())
        return
    replay = done.result()
    try:
        save_replay(replay, folder)
    except OSError as err:   # a full or read-only disk: shown from memory, recorded again next start
        log.warning("could not write the replay %s: %s", path, err)
    with _LOCK:
        _keep(path, replay)
        _RECORDING.pop(path, None)


def _keep(path: Path, replay: Replay) -> None:
    """Hold `replay` in memory (its size: its file's, else its checkpoints', nine tenths of it)."""
    try:
        size = path.stat().st_size
    except OSError:
        size = sum(len(data) for data in replay.checkpoints.values())
    _KEPT[path] = (replay, size)
    _KEPT.move_to_end(path)
    while len(_KEPT) > 1 and sum(held for _, held in _KEPT.values()) > KEPT_BYTES:
        _KEPT.popitem(last=False)
