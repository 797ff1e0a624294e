"""Moving arrays between the host and a mesh, in one process or several."""

from __future__ import annotations

import numpy as np


def named_sharding(mesh, spec):
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec(*spec))


def place(value, sharding):
    """A global array with ``sharding`` whose every shard is cut from the host ``value``.

    Every process passes the same full ``value`` (a parameter's initial value, a loaded
    checkpoint); each builds only the shards of its own devices.
    """
    import jax

    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def fetch(array):
    """The whole of a global array as a NumPy array, in any process.

    Replicated arrays are read from a local copy; arrays split over devices of other
    processes are gathered (a collective: every process must call it).
    """
    import jax

    if array.is_fully_addressable:
        return np.asarray(jax.device_get(array))
    if array.is_fully_replicated:
        return np.asarray(array.addressable_data(0))
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def local_rows(sharding, global_shape):
    """The contiguous slice of axis 0 of a ``global_shape`` array this process holds."""
    starts, stops = [], []
    for index in sharding.addressable_devices_indices_map(tuple(global_shape)).values():
        rows = index[0]
        starts.append(rows.start or 0)
        stops.append(global_shape[0] if rows.stop is None else rows.stop)
    return slice(min(starts), max(stops))
