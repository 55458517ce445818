"""Host memory kept for reuse: the process setting behind steady per-tile host times.

glibc's malloc serves blocks above a moving threshold (128 KiB at start) with fresh mappings
and gives freed memory back to the OS, so the next tile's arrays (coordinates, states, the
engine's outputs, features) land on new pages, and the first touch of each 4 KiB page costs a
fault. Measured on the 2-core CPU, P1 at 1024² with features, warm renders in one process:
~22 000 faults a render and 120 ms, against ~0 faults and 55 ms with freed memory kept.

`keep_freed_memory()` keeps blocks up to MMAP_THRESHOLD on the heap and trims it only once more
than TRIM_THRESHOLD lies free, so what one tile or render frees serves the next. The cost is
that up to TRIM_THRESHOLD of freed memory can stay with the process. The CLI calls it; a
process that renders many times (a notebook, a sweep) may call it too. No-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 32 << 20  # glibc's largest
TRIM_THRESHOLD = 512 << 20


def keep_freed_memory() -> bool:
    """Set glibc's malloc thresholds (see the module docstring); True if they took effect."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
