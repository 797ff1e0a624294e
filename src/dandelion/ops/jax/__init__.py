"""JAX implementations of dandelion's Ops, registered with PyTensor's JAX dispatcher on import."""

from dandelion.ops.jax import (  # noqa: F401
    attention,
    batch_norm,
    conv,
    ctc,
    dense_dot,
    edit_distance,
    gru,
    index_bounds,
    lstm,
    pool,
)
