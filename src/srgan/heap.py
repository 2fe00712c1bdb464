"""Let CPU inference reuse freed memory instead of page-faulting fresh memory for every layer.

glibc's malloc hands blocks above its mmap threshold (at most 32 MiB) straight to the kernel
and gives them back on free. A tile's activations are 20-100 MiB each, so every layer of
every forward pass maps new pages and the kernel zero-fills them on first touch: on 2 cores
that was a fifth to a quarter of the fast path's CPU time. Serving all blocks from the heap
and never trimming it turns that into reuse of pages already mapped (what a jemalloc or
tcmalloc preload does, without the preload). The cost: freed memory stays with the process,
whose resident size settles at its peak.

`srgan upscale` turns this on for CPU runs (a batch job: its peak is what it needs anyway;
a long-lived server is left on the system's policy); `SRGAN_SYSTEM_MALLOC=1` leaves the
allocator alone. Other C libraries (musl, macOS): nothing happens.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

__all__ = ["ENV_OPT_OUT", "keep_freed_memory"]

ENV_OPT_OUT = "SRGAN_SYSTEM_MALLOC"

# mallopt parameters (malloc.h) and glibc's defaults, to restore them
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_KEEP_TRIM_THRESHOLD = 2**31 - 1  # an int: mallopt takes one


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def keep_freed_memory(enabled: bool = True) -> bool:
    """Serve every allocation from the heap and keep freed memory (True), or restore glibc's
    defaults and hand free memory back to the kernel (False). Process-wide. Returns whether
    the setting took effect: False without glibc, or when $SRGAN_SYSTEM_MALLOC is set."""
    if enabled and os.environ.get(ENV_OPT_OUT, "").strip() not in ("", "0"):
        return False
    libc = _libc()
    if libc is None:
        return False
    mmap_max, trim = (0, _KEEP_TRIM_THRESHOLD) if enabled else (_DEFAULT_MMAP_MAX,
                                                                 _DEFAULT_TRIM_THRESHOLD)
    ok = libc.mallopt(_M_MMAP_MAX, mmap_max) == 1
    ok = libc.mallopt(_M_TRIM_THRESHOLD, trim) == 1 and ok
    if not enabled and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
    return ok
