"""Importing dandelion, every public module and every internal one, never imports JAX; the
public modules do not import Numba either.

JAX is optional and slow to start; it is imported on the first JAX compile (PyTensor's
JAX dispatch, then dandelion's kernels) or by ``dandelion.distributed``'s calls. The
modules that hold JAX kernels themselves are imported only from there and are left out.
Numba (62 MB of a process, AMD EPYC) comes with PyTensor's Numba dispatch, on the first
Numba compile, and dandelion's Numba kernels right after it.
"""

from __future__ import annotations

import subprocess
import sys

_IMPORT_ALL = """
import importlib, pkgutil, sys
import dandelion
kernels = ("dandelion.ops.jax", "dandelion.distributed._jax")
names = []
def walk(package):  # pkgutil.walk_packages would import the kernel packages to list them
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if info.name.startswith(kernels) or info.name.endswith("__main__"):
            continue
        names.append(info.name)
        module = importlib.import_module(info.name)
        if info.ispkg:
            walk(module)
walk(dandelion)
print(len(names), sorted(m for m in sys.modules if m == "jax" or m.startswith("jax.")))
"""

PUBLIC = (
    "dandelion", "dandelion.module", "dandelion.functional", "dandelion.activation", "dandelion.initialization",
    "dandelion.objective", "dandelion.update", "dandelion.util", "dandelion.model", "dandelion.train",
    "dandelion.distributed", "dandelion.ops", "dandelion.demo",
)


def test_importing_every_module_does_not_import_jax():
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL + "print(' '.join(names))"], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    summary, imported = completed.stdout.strip().split("\n")
    count, jax_modules = summary.split(" ", 1)
    assert jax_modules == "[]", summary
    assert set(PUBLIC) - {"dandelion"} <= set(imported.split()) and int(count) == len(imported.split())


_PUBLIC_THEN_NUMBA = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
before = "numba" in sys.modules
import numpy as np
import pytensor.tensor as pt
import dandelion
from dandelion.ops.gru import GRUSequenceOp

GRUSequenceOp.perform = None  # the Numba kernel must serve the Op, not perform in object mode
gi, W, h0 = pt.tensor3("gi"), pt.matrix("W"), pt.matrix("h0")
hs, _ = GRUSequenceOp()(gi, W, h0)
fn = dandelion.function([gi, W, h0], hs, mode="numba")
value = fn(np.ones((2, 1, 3), "float32"), np.zeros((1, 3), "float32"), np.zeros((1, 1), "float32"))
print(before, "numba" in sys.modules, value.shape)
"""


def test_public_modules_do_not_import_numba_and_the_numba_kernels_register_on_first_use():
    completed = subprocess.run(
        [sys.executable, "-c", _PUBLIC_THEN_NUMBA, *PUBLIC], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["False", "True", "(2,", "1,", "1)"], completed.stdout
