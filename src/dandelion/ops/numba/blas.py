"""Matrix products for the Numba kernels on NumPy's own OpenBLAS: ``dot_into(A, B, C, accumulate)``.

Numba's ``np.dot`` calls the BLAS that SciPy exports to Cython (SciPy's bundled
OpenBLAS, a second library beside NumPy's). Measured here (AMD EPYC, one thread) for
the LSTM(256) step's (32 x 256) by (256 x 1024) float32 product: 0.32 ms through Numba's
``np.dot`` against 0.23 ms through NumPy's; W1's training step runs about a hundred
such products. ``dot_into`` calls the GEMM of the OpenBLAS in NumPy's wheel
(``dandelion.ops.c.numpy_blas``) instead, with ``beta`` so that accumulating products
need no temporary. The symbol is registered with LLVM under a name of ours when this
module is imported, before any cached kernel that calls it is loaded, so the kernels
stay cacheable on disk (Numba would not cache a call through a ctypes pointer).

Where NumPy bundles no OpenBLAS, ``dot_into`` is ``np.dot``.
"""

from __future__ import annotations

import ctypes

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.c.numpy_blas import numpy_openblas

_SYMBOLS = {"float32": "dandelion_numpy_sgemm", "float64": "dandelion_numpy_dgemm"}


def _register_symbols():
    """Whether NumPy's GEMMs are reachable from jitted code (registering them once)."""
    bundled = numpy_openblas()
    if bundled is None:
        return None
    lib = ctypes.CDLL(str(bundled.path))
    for dtype, symbol in (("float32", bundled.sgemm), ("float64", bundled.dgemm)):
        llvm.add_symbol(_SYMBOLS[dtype], ctypes.cast(getattr(lib, symbol), ctypes.c_void_p).value)
    return 64 if bundled.ilp64 else 32


INT_BITS = _register_symbols()
HAVE_NUMPY_BLAS = INT_BITS is not None


@intrinsic
def _gemm(typingctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Column-major ``c = alpha op(a) op(b) + beta c`` through NumPy's xGEMM (Fortran interface)."""
    dtype = c.dtype

    def codegen(context, builder, signature, args):
        ta_v, tb_v, m_v, n_v, k_v, alpha_v, a_v, lda_v, b_v, ldb_v, beta_v, c_v, ldc_v = args
        int_t = ir.IntType(INT_BITS)
        float_t = context.get_value_type(dtype)
        char_p, int_p, float_p = ir.IntType(8).as_pointer(), int_t.as_pointer(), float_t.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [char_p, char_p, int_p, int_p, int_p, float_p, float_p, int_p, float_p, int_p, float_p, float_p, int_p])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOLS[str(dtype)])

        def slot(value, ty):
            if value.type.width > ty.width:
                value = builder.trunc(value, ty)
            return cgutils.alloca_once_value(builder, value)

        def data(array_type, value):
            return builder.bitcast(context.make_array(array_type)(context, builder, value).data, float_p)

        chars = [slot(v, ir.IntType(8)) for v in (ta_v, tb_v)]
        sizes = [slot(v, int_t) for v in (m_v, n_v, k_v, lda_v, ldb_v, ldc_v)]
        scalars = [cgutils.alloca_once_value(builder, v) for v in (alpha_v, beta_v)]
        builder.call(
            fn,
            [chars[0], chars[1], sizes[0], sizes[1], sizes[2], scalars[0], data(signature.args[6], a_v), sizes[3],
             data(signature.args[8], b_v), sizes[4], scalars[1], data(signature.args[11], c_v), sizes[5]],
        )  # fmt: skip
        return context.get_dummy_value()

    return types.void(ta, tb, m, n, k, dtype, a, lda, b, ldb, dtype, c, ldc), codegen


@numba_basic.numba_njit(inline="always")
def _as_blas_operand(x):
    """``(transposed, leading dimension)`` of a 2-D array read as a row-major matrix; ld 0 if neither layout."""
    item = x.itemsize
    rows, cols = x.shape
    s0, s1 = x.strides
    if (s1 == item or cols <= 1) and s0 >= max(cols, 1) * item and s0 % item == 0:
        return False, s0 // item
    if (s0 == item or rows <= 1) and s1 >= max(rows, 1) * item and s1 % item == 0:
        return True, s1 // item
    return False, 0


@numba_basic.numba_njit(boundscheck=False)
def _gemm_into_contiguous(A, B, C, accumulate):
    """``dot_into`` for a C-contiguous C (M, N) and non-empty shapes."""
    M, K = A.shape
    N = B.shape[1]
    ta, lda = _as_blas_operand(A)
    if lda == 0:
        A = np.ascontiguousarray(A)
        ta, lda = False, K
    tb, ldb = _as_blas_operand(B)
    if ldb == 0:
        B = np.ascontiguousarray(B)
        tb, ldb = False, N
    one = np.ones(1, dtype=C.dtype)[0]
    beta = one if accumulate else one - one
    # row-major C = A B is column-major C^T = B^T A^T: swap the operands, keep the flags
    _gemm(
        np.uint8(84 if tb else 78), np.uint8(84 if ta else 78), np.int64(N), np.int64(M), np.int64(K),
        one, B, np.int64(ldb), A, np.int64(lda), beta, C, np.int64(N),
    )  # fmt: skip


# Not self-recursive (the strided case calls the contiguous helper): a cached kernel that
# reached a recursive ``dot_into`` crashed (SIGSEGV) when a new process loaded it from disk.
@numba_basic.numba_njit(boundscheck=False)
def _dot_into_numpy_blas(A, B, C, accumulate):
    M, K = A.shape
    N = B.shape[1]
    if M == 0 or N == 0:
        return
    if K == 0:
        if not accumulate:
            C[:] = 0
        return
    item = C.itemsize
    if N > 1 and C.strides[1] != item or M > 1 and C.strides[0] != N * item:
        out = np.empty((M, N), dtype=C.dtype)
        if accumulate:
            out[:] = C
        _gemm_into_contiguous(A, B, out, accumulate)
        C[:] = out
    else:
        _gemm_into_contiguous(A, B, C, accumulate)


@numba_basic.numba_njit(boundscheck=False)
def _dot_into_numba(A, B, C, accumulate):
    if accumulate:
        C += np.dot(A, B)
    else:
        np.dot(A, B, C)


# ``C = A @ B`` (``C += A @ B`` when ``accumulate``) for 2-D float arrays of one dtype: A
# (M, K) and B (K, N) row-major or transposed views of row-major arrays (other layouts
# are copied), C (M, N) C-contiguous.
dot_into = _dot_into_numpy_blas if HAVE_NUMPY_BLAS else _dot_into_numba
