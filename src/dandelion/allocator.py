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
use of ``mmap`` off (``M_MMAP_MAX`` 0) serves them from the heap too: 41.8 ms. XLA's
worker threads take turns allocating the block, each from its own glibc arena, and an
arena hands back a heap the freed block emptied (``tests/test_allocator.py``: a block from
three threads in turn faults 4,900 times a step, from two 2,400); W1 at batch 128 still
faulted 28,000 times a step (112 ms). With one arena for every thread (``M_ARENA_MAX`` 1)
the faults are gone: 80 ms, and peak memory 30-100 MB lower. On this noisy 2-core
machine W2's JAX step at batch 32 read slower with one arena in 7 of 9 paired runs (up to
a quarter) and the same or faster in the other two: a cost we could not pin down, kept
for the faults it removes.

``keep_freed_buffers()`` sets the four once per process, before the first function is
compiled, on every backend. It does nothing off glibc, when the user set glibc's own
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_MAX_`` /
``MALLOC_ARENA_MAX`` or a ``glibc.malloc`` tunable (theirs win), or when
``DANDELION_KEEP_FREED_BUFFERS=0``.
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
M_ARENA_MAX = -8
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
    """Raise glibc's mmap and trim thresholds, stop its use of mmap and share one arena, once per process.

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
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_MMAP_MAX, 0), (M_ARENA_MAX, 1))
    return all([bool(mallopt(parameter, value)) for parameter, value in settings])


def _user_tuned_malloc():
    """Whether the environment already tells glibc's malloc how to use mmap or trim."""
    own = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX")
    return any(name in os.environ for name in own) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")
