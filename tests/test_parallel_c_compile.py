"""The C backend compiles a graph's missing modules in parallel (``dandelion.parallel_c_compile``).

Each check runs a child process on an empty compile directory (PyTensor's module cache is
per process and per directory) that counts the compiler's runs and the threads they ran on.
C only: the other backends compile no C modules.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, threading
import numpy as np
import pytensor.tensor as pt
import pytensor.link.c.cmodule as cmodule
import dandelion
from dandelion.ops.conv import Conv2dOp
from dandelion.ops.pool import PoolOp
from tests.conv_reference import conv2d_ref
from tests.pool_reference import pool_ref

runs = []
compile_str = cmodule.GCC_compiler.compile_str

def counted(*args, **kwargs):
    name = kwargs.get("module_name", args[0] if args else None)
    runs.append([name, threading.current_thread() is threading.main_thread()])
    return compile_str(*args, **kwargs)

cmodule.GCC_compiler.compile_str = staticmethod(counted)

def build():
    x = pt.tensor("x", shape=(2, 3, 8, 8), dtype="float32")
    w = pt.tensor("w", shape=(4, 3, 3, 3), dtype="float32")
    conv = Conv2dOp(stride=(1, 1), pad=(1, 1), dilation=(1, 1), num_groups=1, flip=False)(x, w)
    pooled = PoolOp(2, (2, 2), (2, 2), (0, 0), True, "max")(pt.maximum(conv, 0))
    return dandelion.function([x, w], [pooled, pt.tanh(x).sum()], mode="c")

rng = np.random.default_rng(0)
xv, wv = rng.standard_normal((2, 3, 8, 8)).astype("float32"), rng.standard_normal((4, 3, 3, 3)).astype("float32")
pooled, total = build()(xv, wv)
expected = pool_ref(np.maximum(conv2d_ref(xv, wv, pad=(1, 1), flip=False), 0), ws=(2, 2), stride=(2, 2), mode="max")
first = len(runs)
build()(xv, wv)  # the same graph again: everything is cached now
print("RESULT " + json.dumps({
    "runs": runs[:first], "again": len(runs) - first,
    "pool_error": float(np.abs(pooled - expected).max()), "tanh_error": float(abs(total - np.tanh(xv).sum())),
}))
"""


def _node_modules(runs):
    """The runs that compiled a node's module (named by its hash), not PyTensor's own helpers."""
    return [(name, on_main) for name, on_main in runs if re.fullmatch(r"m[0-9a-f]{64}", name or "")]


def _child(tmp_path, **env):
    environment = dict(os.environ)
    flags = [f for f in environment.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith(("base_compiledir=", "compiledir="))]
    environment["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={tmp_path}"])
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), environment.get("PYTHONPATH")) if p)
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    return _child(tmp_path_factory.mktemp("sequential"), DANDELION_PARALLEL_C_COMPILE="0")


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="the worker count comes from the CPU affinity (Linux)")
def test_missing_modules_compile_on_worker_threads_once_each(tmp_path, sequential):
    parallel = _child(tmp_path, DANDELION_PARALLEL_C_COMPILE="1")
    runs, alone = _node_modules(parallel["runs"]), _node_modules(sequential["runs"])
    names = [name for name, _ in runs]
    # every module the linker needed was compiled once, by the pool, and then found in the cache
    assert len(names) == len(set(names)) == len(alone) >= 2
    assert sorted(names) == sorted(name for name, _ in alone)
    assert all(not on_main for _, on_main in runs)
    assert parallel["again"] == 0
    assert parallel["pool_error"] < 1e-5 and parallel["tanh_error"] < 1e-3


def test_switched_off_the_linker_compiles_on_the_calling_thread(sequential):
    assert all(on_main for _, on_main in _node_modules(sequential["runs"]))
    assert sequential["again"] == 0
    assert sequential["pool_error"] < 1e-5 and sequential["tanh_error"] < 1e-3
