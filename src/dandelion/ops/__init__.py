"""PyTensor Ops of dandelion (convolution, pooling) with their backend kernels.

Importing this package registers the Numba and JAX implementations of every Op, so a
graph holding them compiles on any backend. Users call the wrappers in
``dandelion.functional``; the Op classes are internal.
"""

from dandelion._compat import after_jax_dispatch_import
from dandelion.ops.conv2d import Conv2D
from dandelion.ops.conv2d_grad_filters import Conv2DGradFilters
from dandelion.ops.conv2d_grad_input import Conv2DGradInput
from dandelion.ops.lstm import lstm_sequence
from dandelion.ops.pool import Pool
from dandelion.ops.pool_grad import PoolGrad
from dandelion.ops.pool_grad_grad import MaxPoolGather

__all__ = ["Conv2D", "Conv2DGradInput", "Conv2DGradFilters", "Pool", "PoolGrad", "MaxPoolGather", "lstm_sequence"]

# Backend kernels register themselves with PyTensor's dispatchers when imported.
from dandelion.ops import numba as _numba_kernels  # noqa: E402, F401



def _register_jax_kernels():
    import importlib

    importlib.import_module("dandelion.ops.jax")


# The JAX kernels import JAX, which importing dandelion must not do (it is optional and
# slow to start): they register when PyTensor's JAX backend is first used.
after_jax_dispatch_import(_register_jax_kernels)
