"""JAX implementations of dandelion's Ops, registered with PyTensor's JAX dispatcher on import."""

from dandelion.ops.jax import (  # noqa: F401
    conv2d,
    conv2d_grad_filters,
    conv2d_grad_input,
    index_bounds,
    lstm,
    pool,
    pool_grad,
    pool_grad_grad,
)
