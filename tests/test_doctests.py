"""The ``>>>`` examples in dandelion's docstrings run and print what they say.

One test per module that has examples, so a failure names the module. PyTensor's
default mode is switched to FAST_COMPILE while they run: the examples show values,
not backends (every backend is checked against the others elsewhere), and a Numba
compile per example would cost seconds each. Examples that name a backend
(``dandelion.function(..., mode="numba")``) still use it.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytensor
import pytest

import dandelion

# JAX kernels and the demo's entry point: no examples, and importing them needs JAX or runs the demo.
_NOT_DOCUMENTED = ("__main__", ".jax", "._jax", "jax_kernels")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples():
    names = []
    for info in pkgutil.walk_packages(dandelion.__path__, "dandelion."):
        if any(part in info.name for part in _NOT_DOCUMENTED):
            continue
        module = importlib.import_module(info.name)
        tests = doctest.DocTestFinder(exclude_empty=True).find(module, info.name)
        if any(t.examples for t in tests):
            names.append(info.name)
    return names


MODULES = _modules_with_examples()


def test_the_public_packages_have_examples():
    for package in ("dandelion.module", "dandelion.functional", "dandelion.objective", "dandelion.update",
                    "dandelion.train", "dandelion.util", "dandelion.activation", "dandelion.compile"):
        assert any(name == package or name.startswith(package + ".") for name in MODULES), package


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
            runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(report)
