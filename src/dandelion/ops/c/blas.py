"""The BLAS behind dandelion's C kernels: which library, its declarations, a row-major GEMM, the link flags.

With ``blas__ldflags`` set, the kernels call the library PyTensor links, through the
Fortran symbols ``sgemm_`` / ``dgemm_`` every BLAS exports under the flags PyTensor
documents (OpenBLAS, MKL, BLIS), as PyTensor's own BLAS Ops do. Without it (a plain
``pip install``), they call the OpenBLAS bundled in NumPy's wheel
(``dandelion.ops.c.numpy_blas``), the library NumPy's ``dot`` and PyTensor's BLAS Ops then
run on, so the process keeps one BLAS and one thread pool. Where neither exists a kernel
built on this module declines (``NotImplementedError``) and the Op's ``perform`` runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pytensor import config
from pytensor.link.c.op import COp
from pytensor.tensor.blas import ldflags

from dandelion.ops.c.numpy_blas import numpy_openblas


@dataclass(frozen=True)
class BlasLink:
    """How C kernels reach a BLAS: symbol names, their integer type and the compiler flags."""

    origin: str
    sgemm: str
    dgemm: str
    int_type: str
    libraries: tuple[str, ...]
    lib_dirs: tuple[str, ...]
    compile_args: tuple[str, ...]
    header_dirs: tuple[str, ...]


def _configured_link():
    return BlasLink(
        origin=f"blas__ldflags={config.blas__ldflags}",
        sgemm="sgemm_",
        dgemm="dgemm_",
        int_type="int",
        libraries=tuple(ldflags()),
        lib_dirs=tuple(ldflags(libs=False, libs_dir=True)),
        compile_args=tuple(ldflags(libs=False, flags=True)),
        header_dirs=tuple(ldflags(libs=False, include_dir=True)),
    )


def _numpy_link(bundled):
    folder = str(bundled.path.parent)
    return BlasLink(
        origin=f"NumPy's OpenBLAS ({bundled.path.name})",
        sgemm=bundled.sgemm,
        dgemm=bundled.dgemm,
        int_type="long long" if bundled.ilp64 else "int",
        libraries=(f":{bundled.path.name}",),
        lib_dirs=(folder,),
        compile_args=(f"-Wl,-rpath,{folder}",),
        header_dirs=(),
    )


@functools.cache
def _link_for(flags):
    if flags:
        return _configured_link()
    bundled = numpy_openblas()
    return None if bundled is None else _numpy_link(bundled)


def linked_blas():
    """The ``BlasLink`` C kernels use under the current ``blas__ldflags``, or None without one."""
    return _link_for(config.blas__ldflags)


def require_blas(where):
    """The ``BlasLink`` to compile against; ``NotImplementedError`` (so ``perform`` runs) when there is none."""
    link = linked_blas()
    if link is None:
        raise NotImplementedError(f"{where} C code needs a BLAS: set blas__ldflags (NumPy bundles none here)")
    return link


_GEMM = """
extern "C" {
void @SGEMM@(char*, char*, const @I@*, const @I@*, const @I@*, const float*, const float*, const @I@*, const float*, const @I@*, const float*, float*, const @I@*);
void @DGEMM@(char*, char*, const @I@*, const @I@*, const @I@*, const double*, const double*, const @I@*, const double*, const @I@*, const double*, double*, const @I@*);
}
"""

# ``prefix`` keeps the helper's name apart from other families' in one compiled module.
_ROW_MAJOR = """
/* Row-major C (M x N) = alpha op(A) op(B) + beta C through column-major BLAS: C^T = op(B)^T op(A)^T. */
static void @PREFIX@_gemm_@T@(char ta, char tb, int M, int N, int K, @T@ alpha, const @T@* A, int lda,
                              const @T@* B, int ldb, @T@ beta, @T@* C, int ldc)
{
    const @I@ m = M, n = N, k = K, la = lda, lb = ldb, lc = ldc;
    @GEMM@(&tb, &ta, &n, &m, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
}
"""


def gemm_code(prefix, link):
    """Declarations of ``link``'s GEMMs and ``{prefix}_gemm_float`` / ``{prefix}_gemm_double`` (row-major, int sizes)."""
    code = _GEMM.replace("@SGEMM@", link.sgemm).replace("@DGEMM@", link.dgemm).replace("@I@", link.int_type)
    for ctype, symbol in (("float", link.sgemm), ("double", link.dgemm)):
        code += _ROW_MAJOR.replace("@PREFIX@", prefix).replace("@T@", ctype).replace("@GEMM@", symbol).replace("@I@", link.int_type)
    return code


_POINTER_GEMM = """
typedef void (*@PREFIX@_sgemm_fn)(char*, char*, const int*, const int*, const int*, const float*, const float*, const int*,
                                   const float*, const int*, const float*, float*, const int*);
typedef void (*@PREFIX@_dgemm_fn)(char*, char*, const int*, const int*, const int*, const double*, const double*, const int*,
                                   const double*, const int*, const double*, double*, const int*);
static @PREFIX@_sgemm_fn @PREFIX@_sgemm = NULL;
static @PREFIX@_dgemm_fn @PREFIX@_dgemm = NULL;

extern "C" void dandelion_native_@FAMILY@_init(void* sgemm, void* dgemm)
{
    @PREFIX@_sgemm = (@PREFIX@_sgemm_fn)sgemm;
    @PREFIX@_dgemm = (@PREFIX@_dgemm_fn)dgemm;
}
"""


def pointer_gemm_code(prefix, family):
    """``{prefix}_gemm_float`` / ``_double`` as ``gemm_code`` defines them, calling the Fortran-interface
    GEMMs (32-bit integers) at the pointers ``{prefix}_sgemm`` / ``{prefix}_dgemm``, which the
    library's entry point ``dandelion_native_{family}_init(sgemm, dgemm)`` sets.

    For code built outside PyTensor (``dandelion.ops.native``, whose ``load_kernels`` calls
    the init), which links no BLAS: the Numba backend hands it SciPy's, the one its own
    products run on.
    """
    code = _POINTER_GEMM.replace("@PREFIX@", prefix).replace("@FAMILY@", family)
    for ctype, symbol in (("float", f"{prefix}_sgemm"), ("double", f"{prefix}_dgemm")):
        code += _ROW_MAJOR.replace("@PREFIX@", prefix).replace("@T@", ctype).replace("@GEMM@", symbol).replace("@I@", "int")
    return code


C_TYPES = {"float32": "float", "float64": "double"}


def c_type_of(where, dtypes):
    """The C type of the one float32/float64 dtype in ``dtypes``; declines otherwise."""
    dtypes = set(dtypes)
    if len(dtypes) != 1 or next(iter(dtypes)) not in C_TYPES:
        raise NotImplementedError(f"{where} C code needs one float32 or float64 dtype, got {sorted(dtypes)}")
    return C_TYPES[dtypes.pop()]


class BlasLinkedCOp(COp):
    """A ``COp`` compiled and linked against ``linked_blas()`` (its ``c_code`` calls ``require_blas``)."""

    @staticmethod
    def _link_flags(field):
        link = linked_blas()
        return [] if link is None else list(getattr(link, field))

    def c_libraries(self, **kwargs):
        return self._link_flags("libraries")

    def c_compile_args(self, **kwargs):
        return self._link_flags("compile_args")

    def c_lib_dirs(self, **kwargs):
        return self._link_flags("lib_dirs")

    def c_header_dirs(self, **kwargs):
        return self._link_flags("header_dirs")


class BlasKernelCOp(BlasLinkedCOp):
    """A ``BlasLinkedCOp`` whose support code and cache version are its family's, generated per ``BlasLink``.

    Subclasses define ``kernel_support_code(link)`` and ``kernel_code_version(link)`` (methods
    or ``staticmethod``) and may set ``kernel_headers``.
    """

    kernel_headers = ("<math.h>", "<string.h>")

    def c_support_code(self, **kwargs):
        return self.kernel_support_code(require_blas(type(self).__name__))

    def c_code_cache_version(self):
        link = linked_blas()
        return () if link is None else self.kernel_code_version(link)

    def c_headers(self, **kwargs):
        return list(self.kernel_headers)
