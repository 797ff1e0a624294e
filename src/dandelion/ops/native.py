"""Kernels built as plain shared libraries, for backends that compile no C of their own (Numba, JAX).

The C backend compiles dandelion's C kernels into PyTensor's modules. The Numba backend
can run the same kernels: ``load_library(name, source)`` compiles ``source`` (C++ with
no Python or NumPy in it) once per machine with PyTensor's compiler and flags (``cxx``,
its ``-march`` for this CPU), files it under ``compiledir/dandelion_native`` keyed by a
hash of the source, compiler and flags, and loads it with ``ctypes``. Two processes
building the same library at once each compile into a folder of their own and rename
into place, so a reader sees a whole file.

Returns None, and the caller keeps its Numba loops, when there is no compiler
(``cxx`` empty), the build fails or the library cannot be filed or loaded (a warning says
why), or ``DANDELION_NATIVE_KERNELS=0``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
import warnings
from functools import cache
from pathlib import Path

from pytensor import config

from dandelion.ops.scipy_blas import scipy_gemm_addresses


def native_kernels_enabled():
    """False when ``DANDELION_NATIVE_KERNELS=0`` asks every backend to keep its own loops."""
    return os.environ.get("DANDELION_NATIVE_KERNELS", "1") != "0"


@cache
def _build_flags():
    from pytensor.link.c.cmodule import GCC_compiler

    # PyTensor's own flags carry -march for this CPU; its -D flags are NumPy's and unused here
    machine = [flag for flag in GCC_compiler.compile_args() if not flag.startswith("-D")]
    return ("-O3", *machine, "-shared", "-fPIC", "-pthread")


def native_folder():
    """The folder of the built libraries, beside PyTensor's compiled modules."""
    return Path(config.compiledir) / "dandelion_native"


def library_path(name, source, extra_flags=()):
    """Where ``load_library`` files the library built from ``source``."""
    key = hashlib.sha256("\0".join([source, config.cxx, *_build_flags(), *extra_flags]).encode()).hexdigest()[:20]
    return native_folder() / f"{name}_{key}.so"


def _build(name, source, path, extra_flags=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f"build_{name}_") as folder:
        src, out = Path(folder) / f"{name}.cpp", Path(folder) / f"{name}.so"
        src.write_text(source)
        command = [config.cxx, *_build_flags(), *extra_flags, str(src), "-o", str(out), "-ldl"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            warnings.warn(
                f"dandelion.ops.native: building {name} failed ({' '.join(command[:2])} ...), "
                f"the backend's own loops run instead (Numba loops, JAX scans):\n{result.stderr[-2000:]}",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        os.replace(out, path)
    return True


@cache
def load_library(name, source, extra_flags=()):
    """The ``ctypes.CDLL`` of ``source`` built as library ``name``, or None (see the module's doc).

    ``extra_flags`` (a tuple) follow PyTensor's; the tests build the kernels for narrower
    instruction sets with them (``-mno-avx512f``).
    """
    if not native_kernels_enabled() or not config.cxx:
        return None
    path = library_path(name, source, extra_flags)
    try:
        if not path.exists() and not _build(name, source, path, extra_flags):
            return None
        return ctypes.CDLL(str(path))
    except OSError as error:  # an unwritable cache folder, a library the loader refuses
        warnings.warn(f"dandelion.ops.native: {name} unavailable ({error}), the backend's own loops run instead", RuntimeWarning, stacklevel=2)
        return None


def load_kernels(name, source, family, extra_flags=()):
    """``load_library`` for recurrent kernels that call SciPy's GEMMs (``scipy_blas``): the library with
    ``dandelion_native_{family}_init`` given their addresses, or None (also without SciPy)."""
    gemms = scipy_gemm_addresses()
    library = None if gemms is None else load_library(name, source, extra_flags)
    if library is not None:
        getattr(library, f"dandelion_native_{family}_init")(ctypes.c_void_p(gemms["float32"]), ctypes.c_void_p(gemms["float64"]))
    return library


def entry_addresses(library, family):
    """``{dtype: (forward, backward) addresses}`` of ``dandelion_native_{family}_{forward,backward}_{float,double}``."""
    return {
        dtype: tuple(function_address(library, f"dandelion_native_{family}_{d}_{c}") for d in ("forward", "backward"))
        for dtype, c in (("float32", "float"), ("float64", "double"))
    }


def function_address(library, symbol):
    """The address of ``symbol`` in a loaded ``library``."""
    return ctypes.cast(getattr(library, symbol), ctypes.c_void_p).value
