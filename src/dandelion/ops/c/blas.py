"""The BLAS that PyTensor links, for dandelion's C kernels: declarations, a row-major GEMM and the link flags.

PyTensor passes ``blas__ldflags`` to the compiler; without it there is no BLAS to
call, so a kernel built on this module declines (``NotImplementedError``) and the Op's
``perform`` runs instead. The Fortran symbols ``sgemm_`` / ``dgemm_`` are the ones
every BLAS exports under the flags PyTensor documents (OpenBLAS, MKL, BLIS).
"""

from __future__ import annotations

from pytensor import config
from pytensor.link.c.op import COp
from pytensor.tensor.blas import ldflags

DECLARATIONS = """
extern "C" {
void sgemm_(char*, char*, const int*, const int*, const int*, const float *, const float *, const int*, const float *, const int*, const float *, float *, const int*);
void dgemm_(char*, char*, const int*, const int*, const int*, const double *, const double *, const int*, const double *, const int*, const double *, double *, const int*);
}
"""

# ``prefix`` keeps the helper's name apart from other families' in one compiled module.
_GEMM = """
/* Row-major C (M x N) = alpha op(A) op(B) + beta C through column-major BLAS: C^T = op(B)^T op(A)^T. */
static void @PREFIX@_gemm_@T@(char ta, char tb, int M, int N, int K, @T@ alpha, const @T@* A, int lda,
                              const @T@* B, int ldb, @T@ beta, @T@* C, int ldc)
{
    @GEMM@(&tb, &ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc);
}
"""

C_TYPES = {"float32": "float", "float64": "double"}


def gemm_code(prefix):
    """``{prefix}_gemm_float`` and ``{prefix}_gemm_double`` (row-major wrappers of sgemm_/dgemm_)."""
    return "".join(
        _GEMM.replace("@PREFIX@", prefix).replace("@T@", t).replace("@GEMM@", g)
        for t, g in (("float", "sgemm_"), ("double", "dgemm_"))
    )


def require_blas(where):
    """Raise ``NotImplementedError`` (so ``perform`` runs) when PyTensor links no BLAS."""
    if not config.blas__ldflags:
        raise NotImplementedError(f"{where} C code needs blas__ldflags")


def c_type_of(where, dtypes):
    """The C type of the one float32/float64 dtype in ``dtypes``; declines otherwise."""
    dtypes = set(dtypes)
    if len(dtypes) != 1 or next(iter(dtypes)) not in C_TYPES:
        raise NotImplementedError(f"{where} C code needs one float32 or float64 dtype, got {sorted(dtypes)}")
    return C_TYPES[dtypes.pop()]


class BlasLinkedCOp(COp):
    """A ``COp`` compiled and linked with PyTensor's BLAS flags."""

    def c_libraries(self, **kwargs):
        return ldflags()

    def c_compile_args(self, **kwargs):
        return ldflags(libs=False, flags=True)

    def c_lib_dirs(self, **kwargs):
        return ldflags(libs=False, libs_dir=True)

    def c_header_dirs(self, **kwargs):
        return ldflags(libs=False, include_dir=True)
