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
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}".strip()


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
