"""The addresses of SciPy's GEMMs, for kernels that call BLAS through a function pointer.

Numba's ``np.dot`` runs SciPy's BLAS (as exported to Cython, ``scipy.linalg.cython_blas``),
so kernels running beside it in one process call the same library: two OpenBLAS thread
pools in one process spin against each other (see ``dandelion.ops.numba.blas``). The
native LSTM and GRU libraries take these pointers on the Numba and JAX backends alike
(``dandelion.ops.native.load_kernels``).
"""

from __future__ import annotations

import ctypes


def _capsule_address(capsule):
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(capsule, get_name(capsule))


def scipy_gemm_addresses():
    """{dtype: address} of SciPy's Fortran-interface ``sgemm`` / ``dgemm`` (32-bit ``int``), or None without SciPy."""
    try:
        from scipy.linalg import cython_blas
    except ImportError:
        return None
    return {dtype: _capsule_address(cython_blas.__pyx_capi__[name]) for dtype, name in (("float32", "sgemm"), ("float64", "dgemm"))}
