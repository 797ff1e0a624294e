"""PyTensor Ops of dandelion with their backend kernels, one home module per Op family.

``attention`` (fused scaled dot-product attention and its gradient), ``conv`` (2-D
convolution and its adjoints), ``pool`` (pooling and its gradients), ``ctc`` (the CTC
forward recursion), ``edit_distance``, ``lstm`` and ``gru`` (the fused LSTM and GRU
sequences), ``batch_norm`` (fused training-mode batch normalisation), ``axis_sum``,
``index_bounds``, ``dense_dot`` and ``flat_elemwise`` (Numba's and C's lowerings of products and
elementwise loops); shape arithmetic in ``geometry``. Each family's kernels live at
mirrored paths: NumPy in ``<family>_numpy`` (the ``perform`` path), C in ``c/<family>.py``,
Numba in ``numba/<family>.py`` (with ``<family>_kernels`` / ``<family>_cfuncs``), JAX in
``jax/<family>.py``. Importing this package arranges for the Numba and JAX implementations
of every Op to register when PyTensor's backend first loads, so a graph holding them compiles on
any backend. Users call the wrappers in
``dandelion.functional`` and ``dandelion.objective``; the Op classes are internal (import
them from their home module).
"""

import importlib

from dandelion._compat import JAX_DISPATCH_MODULE, NUMBA_DISPATCH_MODULE, after_dispatch_import
from dandelion.ops.gru import gru_sequence
from dandelion.ops.lstm import lstm_sequence

__all__ = ["gru_sequence", "lstm_sequence"]

# The backend kernels register themselves with PyTensor's dispatchers when imported, which
# imports Numba or JAX: they register when PyTensor's backend is first used instead (both
# are slow to start and hold memory; JAX is optional).
after_dispatch_import(NUMBA_DISPATCH_MODULE, lambda: importlib.import_module("dandelion.ops.numba"))
after_dispatch_import(JAX_DISPATCH_MODULE, lambda: importlib.import_module("dandelion.ops.jax"))
