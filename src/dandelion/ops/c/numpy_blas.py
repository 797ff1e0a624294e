"""Find the OpenBLAS that NumPy's wheels bundle, for C kernels when PyTensor links no BLAS.

NumPy's Linux wheels carry their own OpenBLAS in ``numpy.libs/`` (since NumPy 2.0 the
``scipy-openblas64`` build: 64-bit integers, symbols ``scipy_sgemm_64_``; NumPy 1.26
wheels: ``sgemm_64_``). The process has already loaded it with NumPy, so C code linked
against that file shares NumPy's thread pool instead of starting a second OpenBLAS, and
it selects its kernels for the CPU at run time (Debian's packaged OpenBLAS 0.3.21 does
not recognise recent Xeons and runs their GEMMs at a quarter of the speed).

Only Linux is handled: the link uses GNU ld's ``-l:file`` form. Elsewhere, and for a
NumPy built against a system BLAS, ``numpy_openblas()`` is None and the caller sets
``blas__ldflags`` as before.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# (symbol prefix, symbol suffix after the Fortran underscore), most recent wheels first.
_NAMINGS = (("scipy_", "64_"), ("", "64_"), ("scipy_", ""), ("", ""))


@dataclass(frozen=True)
class BundledOpenBLAS:
    """One OpenBLAS shared library and how its GEMM symbols are named.

    path : the library file; sgemm, dgemm : the Fortran-interface symbol names;
    ilp64 : whether its integer arguments are 64-bit.
    """

    path: Path
    sgemm: str
    dgemm: str
    ilp64: bool


def _candidates():
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    return sorted(libs.glob("*openblas*.so*")) if libs.is_dir() else []


def _describe(path):
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    for prefix, suffix in _NAMINGS:
        sgemm, dgemm = f"{prefix}sgemm_{suffix}", f"{prefix}dgemm_{suffix}"
        if hasattr(lib, sgemm) and hasattr(lib, dgemm):
            return BundledOpenBLAS(path, sgemm, dgemm, suffix == "64_" or _built_ilp64(lib, prefix))
    return None


def _built_ilp64(lib, prefix):
    # Unsuffixed symbols say nothing about the integer width; the build string does.
    get_config = getattr(lib, f"{prefix}openblas_get_config", None)
    if get_config is None:
        return False
    get_config.restype = ctypes.c_char_p
    return b"USE64BITINT" in (get_config() or b"")


@functools.cache
def numpy_openblas():
    """NumPy's bundled OpenBLAS as a ``BundledOpenBLAS``, or None where there is none to link."""
    if not sys.platform.startswith("linux"):
        return None
    for path in _candidates():
        found = _describe(path)
        if found is not None:
            return found
    return None
