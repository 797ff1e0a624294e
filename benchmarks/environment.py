"""Thread pinning and a description of the machine, shared by every benchmark process.

``pin_threads`` must run before NumPy, PyTorch or JAX are imported: their thread pools
read these variables once. Every framework gets the same number of threads.
"""

from __future__ import annotations

import os
import platform
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def pin_threads(threads: int) -> None:
    """The same number of threads for every framework in this process and its children.

    The BLAS/OpenMP/Numba pools read the variables. XLA's CPU client sizes its thread
    pool from the CPUs the process may run on, with no flag for it: the often quoted
    ``intra_op_parallelism_threads=N`` is not an XLA flag (after a ``--flag`` XLA skips
    it; first in ``XLA_FLAGS`` it makes XLA take the variable for a file name and abort).
    So the affinity is cut to ``threads`` CPUs; one thread also switches Eigen's
    multi-threading off.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    words = [w for w in os.environ.get("XLA_FLAGS", "").split() if w.startswith("--")]
    if threads == 1 and not any(w.startswith("--xla_cpu_multi_thread_eigen") for w in words):
        words.append("--xla_cpu_multi_thread_eigen=false")
    if words:
        os.environ["XLA_FLAGS"] = " ".join(words)
    else:
        os.environ.pop("XLA_FLAGS", None)
    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        if 0 < threads < len(allowed):
            os.sched_setaffinity(0, allowed[:threads])


def pin_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict:
    found = {"python": sys.version.split()[0]}
    for package in ("numpy", "pytensor", "numba", "jax", "torch", "dandelion"):
        try:
            module = __import__(package)
            found[package] = getattr(module, "__version__", "?")
        except Exception:  # noqa: BLE001 - absence is information, not an error
            found[package] = None
    return found


def describe(threads: int) -> dict:
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "versions": versions(),
        "pytensor_flags": os.environ.get("PYTENSOR_FLAGS", ""),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }
