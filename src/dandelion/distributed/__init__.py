"""Data-parallel and sharded training on JAX's distributed runtime.

A dandelion training graph becomes one step over a ``jax.sharding.Mesh``: the batch is
split over the devices (of one process or several), the state stays on the devices,
and the compiler adds the collectives. JAX is optional: importing this package does
not import it; the first call that needs it does, or says how to install it.

See the "Scaling out" page of the documentation.
"""

from dandelion.distributed.mesh import DATA_AXIS, make_mesh
from dandelion.distributed.processes import initialize, shutdown
from dandelion.distributed.step import DataParallelStep
from dandelion.distributed.threads import communication_threads

__all__ = ["DATA_AXIS", "DataParallelStep", "communication_threads", "initialize", "make_mesh", "shutdown"]
