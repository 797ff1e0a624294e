"""Keep freed large buffers in the process heap, so that a training step does not page-fault.

The C and Numba backends allocate every intermediate array of a step with ``malloc`` and
free it after its last use; XLA on CPU allocates all of a step's temporaries as one block
per call (its "preallocated temp", 42.6 MB for W1's LSTM training step at batch 64).
glibc serves blocks above its mmap threshold (128 KiB at start, raised at run time to at
most 32 MiB) with fresh ``mmap`` pages and trims freed memory at the heap's top beyond
128 KiB: either way the next step touches new pages, and the kernel zeroes each one on
its first write. On W3's training step (batch 64, Numba, one thread) that was 12,000
minor faults and 25 ms of system time per step, a third of the step, growing with the
batch (58 ms at batch 128). With the two thresholds raised the buffers are reused: no
faults, the same peak memory (W3 measured 298 MB before and after, 356 instead of 468 MB
at batch 128).

glibc will not raise the mmap threshold above 32 MiB, so blocks larger than that (XLA's
temp block from W1 at batch 64 on, any C or Numba array over 32 MiB) were still mapped
and unmapped on every call: 10,400 faults a step on W1 at batch 64, whose JAX step took
56-61 ms where batch 32 took 21 (the bend of the README's scaling table). Turning glibc's
use of ``mmap`` off (``M_MMAP_MAX`` 0) serves them from the heap too: 41.8 ms.

Not every fault is gone: XLA's worker threads take turns allocating the block, each from
its own glibc arena, and an arena whose heap the freed block emptied hands that heap back
(``tests/test_allocator.py``'s block from two or three threads in turn: 2,400-4,900
faults a step). On W2 (the GRU, a 39 MB block at batch 64) that leaves 2,000-3,500
faults a step. One arena for every thread (``M_ARENA_MAX`` 1) removed them and made
batch 64 about 10% faster, but W2 at batch 32 a quarter slower (28-31 -> 36-39 ms; the
threads queue for the one arena's lock, we think), so the arenas are left as glibc sets them.

``keep_freed_buffers()`` sets the three once per process, before the first function is
compiled, on every backend. It does nothing off glibc, when the user set glibc's own
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_MAX_`` or a
``glibc.malloc`` tunable (theirs win), or when ``DANDELION_KEEP_FREED_BUFFERS=0``.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

ENV_VAR = "DANDELION_KEEP_FREED_BUFFERS"
# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
# glibc refuses mmap thresholds above HEAP_MAX_SIZE / 2, 32 MiB on 64-bit systems
MMAP_THRESHOLD = 32 * 1024 * 1024
# freed memory at the heap's top kept up to this much (a training step's buffers)
TRIM_THRESHOLD = 1024 * 1024 * 1024

__all__ = ["ENV_VAR", "keep_freed_buffers"]


def _glibc():
    """glibc's ``mallopt`` for this process, or None (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError, TypeError):
        return None
    version.restype = ctypes.c_char_p
    return libc.mallopt if version() else None


@cache
def keep_freed_buffers():
    """Raise glibc's mmap and trim thresholds and stop its use of mmap, once per process.

    Returns
    -------
    bool
        True when this call set all three; False when it left malloc as it was (not
        glibc, the user's own ``MALLOC_*`` settings, or ``DANDELION_KEEP_FREED_BUFFERS=0``).
    """
    if os.environ.get(ENV_VAR, "1").strip() == "0":
        return False
    if _user_tuned_malloc():
        return False
    mallopt = _glibc()
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_MMAP_MAX, 0))
    return all([bool(mallopt(parameter, value)) for parameter, value in settings])


def _user_tuned_malloc():
    """Whether the environment already tells glibc's malloc how to use mmap or trim."""
    own = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_")
    return any(name in os.environ for name in own) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")
