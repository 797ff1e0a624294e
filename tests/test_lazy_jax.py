"""Importing dandelion, every public module and every internal one, never imports JAX.

JAX is optional and slow to start; it is imported on the first JAX compile (PyTensor's
JAX dispatch, then dandelion's kernels) or by ``dandelion.distributed``'s calls. The
modules that hold JAX kernels themselves are imported only from there and are left out.
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
