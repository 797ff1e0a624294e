"""Device meshes with the axis types PyTensor's JAX code runs under."""

from __future__ import annotations

import numpy as np

from dandelion.distributed._jax import require_jax

DATA_AXIS = "data"


def make_mesh(data=None, model=1, devices=None, axis_names=(DATA_AXIS, "model")):
    """A ``jax.sharding.Mesh`` of shape ``(data, model)`` over ``devices``.

    The axes get ``AxisType.Auto`` (the compiler propagates shardings). ``jax.make_mesh``
    defaults to explicit axis types, under which PyTensor's fused elementwise code
    (``jnp.vectorize``) fails to trace; build meshes here or with ``Mesh(...)`` directly.

    Parameters
    ----------
    data : int, optional
        Size of the data-parallel axis; all devices divided by ``model`` when None.
    model : int
        Size of the second axis, for parameters split by sharding rules (1: none).
    devices : sequence of jax devices, optional
        ``jax.devices()`` (every device of every process) when None.
    axis_names : pair of str
        Names of the two axes.

    Examples
    --------
    >>> from dandelion.distributed import make_mesh
    >>> mesh = make_mesh()  # doctest: +SKIP
    >>> dict(mesh.shape)  # doctest: +SKIP
    {'data': 1, 'model': 1}
    """
    jax = require_jax("dandelion.distributed.make_mesh")
    from jax.sharding import AxisType, Mesh

    devices = list(jax.devices() if devices is None else devices)
    model = int(model)
    if model < 1 or len(devices) % model:
        raise ValueError(
            f"make_mesh: model must be a positive divisor of the device count {len(devices)}, got {model}"
        )
    data = len(devices) // model if data is None else int(data)
    if data < 1 or data * model > len(devices):
        raise ValueError(
            f"make_mesh: data * model must be at most the device count {len(devices)} (data >= 1), "
            f"got data={data}, model={model}"
        )
    names = tuple(axis_names)
    if len(names) != 2 or len(set(names)) != 2 or not all(isinstance(n, str) for n in names):
        raise ValueError(f"make_mesh: axis_names must be two distinct strings, got {axis_names!r}")
    grid = np.asarray(devices[: data * model], dtype=object).reshape(data, model)
    return Mesh(grid, names, axis_types=(AxisType.Auto, AxisType.Auto))


def check_axis(where, argument, mesh, axis):
    """``axis`` if ``mesh`` has it, else a ValueError naming the mesh's axes."""
    if axis not in mesh.axis_names:
        raise ValueError(f"{where}: {argument} must be an axis of the mesh, one of {list(mesh.axis_names)}; got {axis!r}")
    return axis
