"""``dandelion.allocator``: after a C/Numba compile, freed step-sized buffers are reused, not page-faulted in again.

Each check runs in a fresh interpreter: the thresholds are process-wide and set once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dandelion.allocator import _glibc, keep_freed_buffers

ROOT = Path(__file__).resolve().parents[1]

# Compiles a graph (the Python linker: no C or Numba build), then counts the minor page
# faults of a loop that allocates and frees buffers as a training step does: six 8 MiB
# arrays (a C or Numba step's intermediates), or one 48 MiB block from whichever of three
# long-lived worker threads has the turn (XLA's per-call temp block, above glibc's 32 MiB
# mmap-threshold cap: with mmap off but an arena per thread it still faults ~4,900 times).
SCRIPT = """
import ctypes, resource, sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
import pytensor.tensor as pt
from pytensor.compile.mode import Mode
import dandelion

x = pt.vector("x")
dandelion.function([x], 2 * x, mode=Mode(linker="py", optimizer=None))

def intermediates():
    buffers = [np.ones(2 * 1024 * 1024, dtype="float32") for _ in range(6)]
    del buffers

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)

def temp_block():
    # malloc as XLA does: NumPy would advise huge pages for a block this size
    size = 48 * 1024 * 1024
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)

if sys.argv[1] == "intermediates":
    step = intermediates
else:
    workers = [ThreadPoolExecutor(1) for _ in range(3)]
    turns = iter(range(10**6))
    step = lambda: workers[next(turns) % 3].submit(temp_block).result()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


def faults_per_step(pattern, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    environment.update(env, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), environment.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT, pattern], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_glibc() is None, reason="the settings are glibc's; other C libraries are left alone")
@pytest.mark.parametrize("pattern", ["intermediates", "temp_block"])
def test_compiling_makes_freed_buffers_reusable(pattern):
    # freed memory handed back to the system faults about 3,000 times a step here; reused heap memory none
    assert faults_per_step(pattern) < 100
    assert faults_per_step(pattern, DANDELION_KEEP_FREED_BUFFERS="0") > 1000


def test_opt_out_and_user_settings_leave_malloc_alone(monkeypatch):
    keep_freed_buffers.cache_clear()
    monkeypatch.setenv("DANDELION_KEEP_FREED_BUFFERS", "0")
    assert keep_freed_buffers() is False
    keep_freed_buffers.cache_clear()
    monkeypatch.delenv("DANDELION_KEEP_FREED_BUFFERS")
    for variable, value in [("MALLOC_TRIM_THRESHOLD_", "131072"), ("MALLOC_ARENA_MAX", "4"), ("GLIBC_TUNABLES", "glibc.malloc.mmap_max=8")]:
        monkeypatch.setenv(variable, value)
        assert keep_freed_buffers() is False, variable
        keep_freed_buffers.cache_clear()
        monkeypatch.delenv(variable)
