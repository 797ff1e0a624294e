"""The Numba kernels' matrix product ``dandelion.ops.numba.blas.dot_into`` on every layout.

Where there is a C++ compiler it is the library build of ``dandelion.ops.c.dot_kernels``
(the layout logic in C), else the Numba functions over SciPy's BLAS; both, and Numba's
``np.dot`` fallback, are checked here against NumPy in float64: operands read in place
(row-major, transposed) or copied (strided, reversed), outputs in place or through a
copy, accumulating or not, empty sizes.
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor
import pytest

from dandelion.ops.numba import blas

# Any-layout signatures: one compile per dtype instead of one per combination of layouts.
SIGNATURES = [f"void({t}[:, :], {t}[:, :], {t}[:, :], b1)" for t in ("f4", "f8")]


@numba.njit(SIGNATURES)
def _native(A, B, C, accumulate):
    blas._dot_into_native(A, B, C, accumulate)


@numba.njit(SIGNATURES)
def _scipy(A, B, C, accumulate):
    blas._dot_into_scipy_blas(A, B, C, accumulate)


IMPLEMENTATIONS = {"native": _native, "scipy": _scipy}


def _available(name):
    return {"native": blas._NATIVE is not None, "scipy": blas.HAVE_SCIPY_BLAS}[name]


def _operand(rng, rows, cols, layout, dtype):
    """A (rows, cols) array in ``layout``: values from ``rng``."""
    if layout == "row-major":
        return rng.standard_normal((rows, cols)).astype(dtype)
    if layout == "transposed":
        return rng.standard_normal((cols, rows)).astype(dtype).T
    if layout == "strided":
        return rng.standard_normal((rows, 2 * cols + 1)).astype(dtype)[:, 1::2]
    return rng.standard_normal((rows, cols)).astype(dtype)[::-1]  # reversed rows: a negative stride


def _output(rows, cols, layout, dtype):
    if layout == "row-major":
        return np.zeros((rows, cols), dtype)
    if layout == "transposed":
        return np.zeros((cols, rows), dtype).T
    return np.zeros((rows, 2 * cols), dtype)[:, ::2]


LAYOUTS = ("row-major", "transposed", "strided", "reversed")
OUTPUTS = ("row-major", "transposed", "strided")


def test_the_library_build_serves_the_kernels_where_there_is_a_compiler():
    expected = blas._dot_into_native if (pytensor.config.cxx and blas.HAVE_SCIPY_BLAS) else None
    assert (blas.dot_into is blas._dot_into_native) == (expected is not None)


@pytest.mark.parametrize("name", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_layout_against_numpy(name, dtype):
    if not _available(name):
        pytest.skip(f"{name}: no C++ compiler or SciPy BLAS here")
    rng = np.random.default_rng(11)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    for a_layout in LAYOUTS:
        for b_layout in LAYOUTS:
            for c_layout in OUTPUTS:
                for accumulate in (False, True):
                    M, K, N = 5, 7, 3
                    A, B = _operand(rng, M, K, a_layout, dtype), _operand(rng, K, N, b_layout, dtype)
                    C = _output(M, N, c_layout, dtype)
                    C[...] = rng.standard_normal((M, N))
                    expected = A.astype("float64") @ B.astype("float64") + (C.astype("float64") if accumulate else 0)
                    IMPLEMENTATIONS[name](A, B, C, accumulate)
                    where = f"{name}: A {a_layout}, B {b_layout}, C {c_layout}, accumulate={accumulate}"
                    np.testing.assert_allclose(C, expected, rtol=tolerance, atol=tolerance, err_msg=where)


@pytest.mark.parametrize("name", sorted(IMPLEMENTATIONS))
def test_empty_sizes(name):
    if not _available(name):
        pytest.skip(f"{name}: no C++ compiler or SciPy BLAS here")
    function = IMPLEMENTATIONS[name]
    C = np.full((2, 3), 7.0)
    function(np.zeros((2, 0)), np.zeros((0, 3)), C, True)  # K = 0: nothing to add
    np.testing.assert_array_equal(C, 7.0)
    function(np.zeros((2, 0)), np.zeros((0, 3)), C[:, ::-1], False)  # K = 0: C = 0, through any layout
    np.testing.assert_array_equal(C, 0.0)
    function(np.zeros((0, 4)), np.zeros((4, 3)), np.zeros((0, 3)), False)  # M = 0: no call at all


_PRODUCT = """
import sys
import numpy as np, pytensor.tensor as pt, dandelion
from dandelion.ops.numba import blas
a, b = pt.matrix("a"), pt.matrix("b")
f = dandelion.function([a, b], pt.dot(a, b.T), mode="numba")
x, y = np.arange(6.0).reshape(2, 3).astype(a.dtype), np.arange(12.0).reshape(4, 3).astype(a.dtype)
assert np.allclose(f(x, y), x @ y.T)
print(blas.dot_into is blas._dot_into_native, blas._NATIVE is None)
"""


def test_each_kernel_choice_keeps_its_own_cached_functions(tmp_path):
    """A graph cached with the C library's product, then loaded with ``DANDELION_NATIVE_KERNELS=0``
    (read when the module loads), must not call a library that this process never loaded."""
    import os
    import subprocess
    import sys

    caches = {"PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'pytensor'}", "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    outputs = []
    for kernels in ("1", "0", "1"):
        environment = dict(os.environ, DANDELION_NATIVE_KERNELS=kernels, **caches)
        completed = subprocess.run([sys.executable, "-c", _PRODUCT], capture_output=True, text=True, timeout=300, env=environment)
        assert completed.returncode == 0, f"DANDELION_NATIVE_KERNELS={kernels}: {completed.stderr[-2000:]}"
        outputs.append(completed.stdout.split())
    native = bool(pytensor.config.cxx) and blas.HAVE_SCIPY_BLAS
    assert outputs == [[str(native), str(not native)], ["False", "True"], [str(native), str(not native)]]
