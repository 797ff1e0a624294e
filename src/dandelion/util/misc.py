"""Small helpers for training scripts: time stamps, weight look-up, out-of-memory-safe calls."""

from __future__ import annotations

import time


def get_time_stamp():
    """Local time as ``YYYY-MM-DD_HH-MM-SS`` (safe in file names)."""
    return time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime())


def get_weight_by_name(module_weights, name):
    """The value saved under ``name`` in ``Module.get_weights()`` output, or None."""
    for value, weight_name in module_weights:
        if weight_name == name:
            return value
    return None


# Messages by which backends report failed allocations as something other than
# MemoryError (CUDA through JAX/XLA, and the old Theano GPU backends).
_OUT_OF_MEMORY_MARKERS = (
    "out of memory",
    "resource_exhausted",
    "resource exhausted",
    "cuda_error_out_of_memory",
    "failed to allocate",
)


def _is_out_of_memory(error):
    text = str(error).lower()
    return any(marker in text for marker in _OUT_OF_MEMORY_MARKERS)


def safe_run(fn, input_list):
    """Call ``fn(*input_list)``, turning an out-of-memory failure into a status code.

    Returns
    -------
    (status, result) : ``(0, result)`` on success; ``(1, None)`` for a ``MemoryError``,
    ``(2, None)`` for another error whose message reports exhausted memory (as JAX/XLA
    and GPU runtimes do). Other errors propagate.

    Examples
    --------
    >>> safe_run(lambda a, b: a + b, [1, 2])
    (0, 3)
    """
    try:
        return 0, fn(*input_list)
    except MemoryError:
        print("safe_run: out of memory (MemoryError)")
        return 1, None
    except Exception as error:
        if _is_out_of_memory(error):
            print(f"safe_run: out of memory ({type(error).__name__})")
            return 2, None
        raise


# The Theano-era name.
theano_safe_run = safe_run
