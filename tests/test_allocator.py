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
# faults of a loop that allocates and frees six 8 MiB arrays, as a training step does.
SCRIPT = """
import resource
import numpy as np
import pytensor.tensor as pt
from pytensor.compile.mode import Mode
import dandelion

x = pt.vector("x")
dandelion.function([x], 2 * x, mode=Mode(linker="py", optimizer=None))

def step():
    buffers = [np.ones(2 * 1024 * 1024, dtype="float32") for _ in range(6)]
    del buffers

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


def faults_per_step(**env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environment.update(env, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), environment.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_glibc() is None, reason="the thresholds are glibc's; other C libraries are left alone")
def test_compiling_makes_freed_buffers_reusable():
    # freed memory returned to the system faults about 3,000 times a step here; reused heap memory none
    assert faults_per_step() < 100
    assert faults_per_step(DANDELION_KEEP_FREED_BUFFERS="0") > 1000


def test_opt_out_and_user_settings_leave_malloc_alone(monkeypatch):
    keep_freed_buffers.cache_clear()
    monkeypatch.setenv("DANDELION_KEEP_FREED_BUFFERS", "0")
    assert keep_freed_buffers() is False
    keep_freed_buffers.cache_clear()
    monkeypatch.delenv("DANDELION_KEEP_FREED_BUFFERS")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert keep_freed_buffers() is False
    keep_freed_buffers.cache_clear()
