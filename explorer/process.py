"""Process-wide settings, made once where a process starts: the app (streamlit_app.py), the command
line (explorer/cli.py) and every worker (explorer/worker.py). Nothing else in the core changes them;
constructing a trainer in particular changes nothing outside it.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path


def cache_dir() -> Path:
    """The only folder the app writes to: $EXPLORER_CACHE_DIR, else .cache/ in the project."""
    return Path(os.environ.get("EXPLORER_CACHE_DIR") or Path(__file__).resolve().parents[1] / ".cache")


def configure(threads: int | None = None) -> None:
    """Settle this process: where matplotlib keeps its font cache, POT without its torch backend,
    and for a process that trains, torch's thread count and glibc's handling of freed memory.

    Call before matplotlib or POT is imported. threads: torch intra-op threads (None: leave torch's
    choice, and leave the allocator alone: a process that only draws does not need either).
    """
    # Matplotlib writes a font cache on first import (by default under $HOME): keep it with the app's.
    os.environ.setdefault("MPLCONFIGDIR", str(cache_dir() / "matplotlib"))
    # POT imports torch to offer a torch backend; every array given to POT here is NumPy, and without
    # the import `python -m explorer distances` answers in a fraction of a second instead of ~4 s.
    os.environ.setdefault("POT_BACKEND_DISABLE_PYTORCH", "1")
    if threads is not None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        import torch
        torch.set_num_threads(threads)
        keep_freed_memory()


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory mapped (Linux only; process-wide; True if applied).

    A training step allocates a few hundred-KB tensors and frees them again. By default glibc hands
    such blocks back to the kernel (munmap, or trimming the heap once 128 KiB-ish lie free at its top)
    and maps them anew on the next step: a page fault per 4 KiB, which on the virtual machines this
    project runs on cost about as much as the arithmetic (width 128: 46 -> 78 steps/s with this).
    Blocks up to 32 MiB (glibc's own dynamic ceiling) now come from the heap, and up to 64 MiB may lie
    free at its top before it is trimmed; the peak memory of a run does not change.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED is None:
        try:
            libc = ctypes.CDLL("libc.so.6")
            _MALLOC_TUNED = bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20))
        except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
            _MALLOC_TUNED = False
    return _MALLOC_TUNED


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h> parameter numbers
_MALLOC_TUNED: bool | None = None


