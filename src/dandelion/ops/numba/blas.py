"""Matrix products for the Numba kernels with ``beta``: ``dot_into(A, B, C, accumulate)``.

The kernels call the GEMM that Numba's own ``np.dot`` calls, SciPy's BLAS as exported
to Cython (``scipy.linalg.cython_blas``), through its Fortran interface with ``beta``:
an accumulating product needs no temporary and a transposed operand no copy. It must be
that library and no other: a PyTensor graph on the Numba backend runs its own products
(dense layers, input projections) through ``np.dot``, and two OpenBLAS thread pools in
one process spin against each other. Measured (AMD EPYC, 2 threads, W1's Numba training
step): 35 ms with one pool, 100 ms when these kernels called NumPy's bundled OpenBLAS
while the graph's products called SciPy's. The function pointer is registered with LLVM
under a name of ours when this module is imported, before any cached kernel that calls
it is loaded, so the kernels stay cacheable on disk (Numba would not cache a call
through a ctypes pointer).

Where there is a C++ compiler, ``dot_into`` is the library build of
``dandelion.ops.c.dot_kernels`` (same layouts, same GEMM): the Numba functions below
compile their layout logic once per combination of array layouts in every cold graph
(a cold W4 training step 24.7 s with them, 14.8 s with the library, AMD EPYC).
``source_cache`` keys the kernels that call ``dot_into`` on which one it is.
"""

from __future__ import annotations

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops import native
from dandelion.ops.c import dot_kernels
from dandelion.ops.c.blas import C_TYPES
from dandelion.ops.scipy_blas import scipy_gemm_addresses

_SYMBOLS = {"float32": "dandelion_scipy_sgemm", "float64": "dandelion_scipy_dgemm"}


def _register_symbols():
    """The integer width of SciPy's GEMMs, registered once for jitted code; None without them."""
    addresses = scipy_gemm_addresses()
    if addresses is None:
        return None
    for dtype, address in addresses.items():
        llvm.add_symbol(_SYMBOLS[dtype], address)
    return 32  # SciPy's cython_blas takes Fortran ``int``


INT_BITS = _register_symbols()
HAVE_SCIPY_BLAS = INT_BITS is not None


@intrinsic
def _gemm(typingctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Column-major ``c = alpha op(a) op(b) + beta c`` through SciPy's xGEMM (Fortran interface)."""
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
def _dot_into_scipy_blas(A, B, C, accumulate):
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


def _register_native():
    """{dtype: external function} of ``dot_kernels``' library build (registered for jitted code), or None."""
    library = native.load_kernels("dot", dot_kernels.native_code(), "dot")
    if library is None:
        return None
    functions = {}
    for dtype, ctype in C_TYPES.items():
        symbol = f"dandelion_dot_into_{dtype}"
        llvm.add_symbol(symbol, native.function_address(library, f"dandelion_native_dot_into_{ctype}"))
        pointer = types.CPointer(getattr(types, dtype))
        functions[dtype] = types.ExternalFunction(symbol, types.int32(pointer, pointer, pointer, types.CPointer(types.int64)))
    return functions


_NATIVE = _register_native() if HAVE_SCIPY_BLAS else None


def _call_native(A, B, C, p):
    raise NotImplementedError("jitted code only")


@overload(_call_native)
def _call_native_for_dtype(A, B, C, p):
    function = _NATIVE[str(C.dtype)]

    def call(A, B, C, p):
        return function(A.ctypes, B.ctypes, C.ctypes, p.ctypes)

    return call


@numba_basic.numba_njit(boundscheck=False)
def _dot_into_native(A, B, C, accumulate):
    item = C.itemsize
    p = np.empty(10, dtype=np.int64)
    p[0], p[1] = A.shape
    p[2] = B.shape[1]
    p[3], p[4] = A.strides[0] // item, A.strides[1] // item
    p[5], p[6] = B.strides[0] // item, B.strides[1] // item
    p[7], p[8] = C.strides[0] // item, C.strides[1] // item
    p[9] = 1 if accumulate else 0
    if _call_native(A, B, C, p) != 0:
        raise MemoryError("dot_into: no memory to copy an operand")


# ``C = A @ B`` (``C += A @ B`` when ``accumulate``) for 2-D float arrays of one dtype: A
# (M, K) and B (K, N) row-major or transposed views of row-major arrays (other layouts
# are copied), C (M, N). The library build of ``dandelion.ops.c.dot_kernels`` where there
# is a compiler (the layout logic then compiles once per machine, not per layout in
# every graph), else the Numba functions above.
if _NATIVE is not None:
    dot_into = _dot_into_native
elif HAVE_SCIPY_BLAS:
    dot_into = _dot_into_scipy_blas
else:
    dot_into = _dot_into_numba
