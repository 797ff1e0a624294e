"""``dandelion.ops.numba.blas.dot_into``: the Numba kernels' GEMM with ``beta``, on SciPy's BLAS.

Against NumPy's ``@`` over shapes (empty ones included), operand layouts (row-major and
transposed views), ``accumulate`` and both float dtypes; the kernels that use it (LSTM,
convolution) call the registered GEMM symbol; a kernel calling it caches on disk and
loads in a fresh process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit, types

from dandelion.ops.numba import blas, lstm_kernels

needs_scipy_blas = pytest.mark.skipif(not blas.HAVE_SCIPY_BLAS, reason="no scipy.linalg.cython_blas here; dot_into is np.dot")


@njit
def _product(A, B, C, accumulate, a_transposed, b_transposed):
    # the transposed operands arrive as row-major arrays of the transposed shape
    if a_transposed and b_transposed:
        blas.dot_into(A.T, B.T, C, accumulate)
    elif a_transposed:
        blas.dot_into(A.T, B, C, accumulate)
    elif b_transposed:
        blas.dot_into(A, B.T, C, accumulate)
    else:
        blas.dot_into(A, B, C, accumulate)


@njit
def _into_strided(A, B, C, accumulate):
    blas.dot_into(A, B, C[:, ::2], accumulate)


@settings(max_examples=25)
@given(
    M=st.integers(0, 9),
    K=st.integers(0, 9),
    N=st.integers(0, 9),
    dtype=st.sampled_from(["float32", "float64"]),
    accumulate=st.booleans(),
    a_transposed=st.booleans(),
    b_transposed=st.booleans(),
)
def test_dot_into_matches_numpy(M, K, N, dtype, accumulate, a_transposed, b_transposed):
    rng = np.random.default_rng(M * 100 + K * 10 + N)
    A = rng.standard_normal((M, K)).astype(dtype)
    B = rng.standard_normal((K, N)).astype(dtype)
    C0 = rng.standard_normal((M, N)).astype(dtype)
    C = C0.copy()
    a_arg = np.ascontiguousarray(A.T) if a_transposed else A
    b_arg = np.ascontiguousarray(B.T) if b_transposed else B
    _product(a_arg, b_arg, C, accumulate, a_transposed, b_transposed)
    expected = A.astype("float64") @ B.astype("float64") + (C0 if accumulate else 0)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(C, expected, rtol=tol, atol=tol)


def test_dot_into_a_strided_output_leaves_the_gaps_alone():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    C = np.full((4, 10), 7.0)
    _into_strided(A, B, C, True)
    np.testing.assert_allclose(C[:, ::2], 7.0 + A @ B, rtol=1e-12)
    assert (C[:, 1::2] == 7.0).all()


@needs_scipy_blas
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_lstm_kernels_call_the_registered_gemm(dtype):
    """The forward kernel's IR calls the registered symbol (the C library's ``dot_into`` where there is
    one, else SciPy's GEMM), not Numba's ``np.dot`` wrapper."""
    scalar = getattr(types, dtype)
    a3, a2, flag = types.Array(scalar, 3, "C"), types.Array(scalar, 2, "C"), types.boolean
    signature = (a3, a2, a2, a2, a2, a2, flag, flag, a3, a3, a3)
    lstm_kernels.lstm_forward.compile(signature)
    ir = lstm_kernels.lstm_forward.inspect_llvm(signature)
    assert (f"dandelion_dot_into_{dtype}" if blas._NATIVE is not None else blas._SYMBOLS[dtype]) in ir
    assert "numba_xxgemm" not in ir


@needs_scipy_blas
def test_a_kernel_calling_dot_into_is_cached_and_loads_in_a_new_process(tmp_path):
    """Numba refuses to cache calls through ctypes pointers; the registered symbol is cacheable."""
    module = tmp_path / "cached_product.py"
    module.write_text(
        textwrap.dedent(
            """
            import numpy as np
            from numba import njit
            from dandelion.ops.numba.blas import dot_into

            @njit(cache=True)
            def product(A, B):
                C = np.empty((A.shape[0], B.shape[1]))
                dot_into(A, B, C, False)
                return C

            A = np.arange(6.0).reshape(2, 3)
            print(float(product(A, A.T).sum()), len(product.stats.cache_hits))
            """
        )
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [
        subprocess.run([sys.executable, str(module)], capture_output=True, text=True, env=env, timeout=240, check=True)
        for _ in range(2)
    ]
    (first_sum, first_hits), (second_sum, second_hits) = (run.stdout.split() for run in runs)
    A = np.arange(6.0).reshape(2, 3)
    assert float(first_sum) == float(second_sum) == float((A @ A.T).sum())
    assert (first_hits, second_hits) == ("0", "1")
