"""Numba implementations of dandelion's Ops, registered with PyTensor's Numba dispatcher on import."""

from dandelion.ops.numba import (  # noqa: F401
    conv2d,
    conv2d_grad_filters,
    conv2d_grad_input,
    lstm,
    pool,
    pool_grad,
    pool_grad_grad,
)
