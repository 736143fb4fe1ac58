"""glibc malloc settings for a long batch with many threads (called once by ``flows``).

With glibc's defaults a batch grows and slows for no gain: each worker thread gets its own
malloc arena (up to 8 per core), where freed page images and the local engine's layout-model
buffers stay cached, and the mmap threshold adapts upwards, so every multi-megabyte page buffer
is handed back to the OS and faulted in again. Measured here (bench/README.md): 8 threads of
the local engine 688 -> 264 MB RSS; render + thumbnail 14 -> 9.5 ms CPU a page.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc <malloc.h>
ARENA_MAX = 2
MMAP_THRESHOLD = 4 * 2**20  # fixed: a page image (~2.4 MB) is reused from the heap, not re-faulted
TRIM_THRESHOLD = 16 * 2**20

_done = False


def tune() -> bool:
    """Apply the settings (only on glibc, only once, before worker threads start); True if applied."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    ok = all(mallopt(param, value) == 1 for param, value in (
        (M_ARENA_MAX, ARENA_MAX), (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)))
    _done = ok
    return ok
