"""``dot_into`` in C, for the Numba kernels: ``C = A @ B`` (``C += A @ B``) on strided matrices.

The Numba backend's products (``dandelion.ops.numba.blas.dot_into``) read transposed
views in place and copy only what neither BLAS layout fits. Written in Numba, that
layout logic compiles anew for every combination of array layouts a graph passes it,
from empty caches: 4.2 s of a cold W4 training step's 24.7 (AMD EPYC). Built once per
machine as a library (``dandelion.ops.native``), it leaves Numba a call to compile.
``native_code()`` is the library's source; its GEMMs are SciPy's, the pointers
``dandelion_native_dot_init`` receives.
"""

from __future__ import annotations

import functools

from dandelion.ops.c.blas import pointer_gemm_code
from dandelion.ops.c.sequence import fill

_LAYOUT = """
/* Where a (rows, cols) matrix with element strides s0, s1 can be read in place: 'N' row-major with
   leading dimension *ld, 'T' as the transpose of a row-major matrix, or 0 (copy it). */
static char dl_dot_layout(int64_t rows, int64_t cols, int64_t s0, int64_t s1, int64_t* ld)
{
    const int64_t r = rows > 1 ? rows : 1, c = cols > 1 ? cols : 1;
    if ((s1 == 1 || cols <= 1) && s0 >= c) {
        *ld = s0;
        return 'N';
    }
    if ((s0 == 1 || rows <= 1) && s1 >= r) {
        *ld = s1;
        return 'T';
    }
    return 0;
}
"""

_ENTRY = """
/* A row-major copy of a strided (rows, cols) matrix, or NULL when it cannot be allocated. */
static @T@* dl_dot_copy_@T@(const @T@* x, int64_t rows, int64_t cols, int64_t s0, int64_t s1)
{
    @T@* out = (@T@*)malloc(sizeof(@T@) * (size_t)(rows * cols));
    if (!out) return NULL;
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) out[i * cols + j] = x[i * s0 + j * s1];
    return out;
}

/* p: [M, K, N, A's strides (2), B's (2), C's (2), accumulate], strides in elements.
   C (M, N) = A (M, K) @ B (K, N), plus C when accumulate. Returns 0, or 1 when a copy could not be allocated. */
int dandelion_native_dot_into_@T@(const @T@* A, const @T@* B, @T@* C, const int64_t* p)
{
    const int64_t M = p[0], K = p[1], N = p[2], accumulate = p[9];
    if (M == 0 || N == 0) return 0;
    if (K == 0) {
        if (!accumulate)
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) C[i * p[7] + j * p[8]] = 0;
        return 0;
    }
    int64_t lda, ldb, ldc;
    char ta = dl_dot_layout(M, K, p[3], p[4], &lda), tb = dl_dot_layout(K, N, p[5], p[6], &ldb);
    const int in_place = dl_dot_layout(M, N, p[7], p[8], &ldc) == 'N';
    @T@* a_copy = ta ? NULL : dl_dot_copy_@T@(A, M, K, p[3], p[4]);
    @T@* b_copy = tb ? NULL : dl_dot_copy_@T@(B, K, N, p[5], p[6]);
    @T@* c_copy = in_place ? NULL : (accumulate ? dl_dot_copy_@T@(C, M, N, p[7], p[8]) : (@T@*)malloc(sizeof(@T@) * (size_t)(M * N)));
    if ((!ta && !a_copy) || (!tb && !b_copy) || (!in_place && !c_copy)) {
        free(a_copy);
        free(b_copy);
        free(c_copy);
        return 1;
    }
    if (!ta) ta = 'N', lda = K;
    if (!tb) tb = 'N', ldb = N;
    if (!in_place) ldc = N;
    dl_dot_gemm_@T@(ta, tb, (int)M, (int)N, (int)K, 1, a_copy ? a_copy : A, (int)lda, b_copy ? b_copy : B, (int)ldb,
                    accumulate ? 1 : 0, c_copy ? c_copy : C, (int)ldc);
    if (c_copy)
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) C[i * p[7] + j * p[8]] = c_copy[i * N + j];
    free(a_copy);
    free(b_copy);
    free(c_copy);
    return 0;
}
"""

@functools.cache
def native_code():
    """The library's C++ source: both dtypes' ``dandelion_native_dot_into_{float,double}`` and the GEMMs' init."""
    head = "#include <stddef.h>\n#include <stdint.h>\n#include <stdlib.h>\n"
    entries = "".join(fill(_ENTRY, {"T": ctype}) for ctype in ("float", "double"))
    return head + pointer_gemm_code("dl_dot", "dot") + _LAYOUT + 'extern "C" {\n' + entries + "}\n"
