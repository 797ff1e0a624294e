"""``DataParallelStep``: a training function run over a device mesh, state kept on the devices."""

from __future__ import annotations

import numpy as np

from dandelion.distributed._jax import require_jax
from dandelion.distributed.graph import compile_training_graph, pure_step
from dandelion.distributed.mesh import DATA_AXIS, check_axis, make_mesh
from dandelion.distributed.placement import fetch, local_rows, named_sharding, place
from dandelion.distributed.rules import display_name, path_names, resolve_rules

_WHERE = "DataParallelStep"


def _label(variable, index):
    return variable.name if variable.name else f"input {index}"


class DataParallelStep:
    """A training step split over the devices of a ``jax.sharding.Mesh``.

    The graph is the one ``dandelion.function(inputs, outputs, updates, mode='jax')``
    compiles; it is traced once for the global batch and handed to the XLA compiler
    with shardings: batch inputs are split over ``data_axis``, the state (parameters,
    optimizer state, running statistics, dropout counters) is replicated unless a
    sharding rule splits it. The compiler inserts the collectives (the all-reduce of
    the gradients, the global batch statistics of ``BatchNorm``), so one call computes
    what the single-device function computes on the whole batch, up to float32
    rounding. Dropout masks are drawn for the global batch (each element's mask is a
    hash of its global index), so they equal the single-device masks too.

    The state lives on the devices between calls: the buffers of updated state are
    donated to the step and replaced by its results; nothing goes back to the host
    until ``pull()``. ``push()`` sends the module's shared variables to the devices
    again (after ``load_checkpoint`` or ``set_weights``).

    Parameters
    ----------
    inputs, outputs, updates
        As for ``dandelion.function``; or pass a JAX-compiled ``Function`` as
        ``inputs`` alone (see ``from_function``).
    mesh : jax.sharding.Mesh, optional
        ``make_mesh()`` (every device on the data axis) when None.
    data_axis : str
        The mesh axis the batch is split over.
    sharding_rules : dict, optional
        ``{name pattern: spec}``, e.g. ``{"fc1.W": (None, "model")}`` splits a Dense
        weight on its output axis; see ``dandelion.distributed.rules``.
    module : Module, optional
        The model: rules then match path names (``fc1.W``) as well as variable names
        (``W@Dense|fc1``), and ``state_shardings`` and ``device_state`` use path names.
    replicated_inputs : sequence of variables
        Inputs that are not batches (a learning rate, a mask shared by every sample):
        every process passes the whole value. Scalars are always replicated.
    no_default_updates : bool
        As for ``dandelion.function``.

    Calling
    -------
    ``step(*values)`` takes the inputs in order. In one process a batch input is the
    global batch; with several processes each passes its own rows
    (``step.local_rows(global_batch_size)`` says which). Outputs come back replicated
    as JAX arrays (``float(loss)`` or ``np.asarray`` reads them), shaped as the
    ``Function`` returns them.
    """

    def __init__(self, inputs, outputs=None, updates=None, *, mesh=None, data_axis=DATA_AXIS,
                 sharding_rules=None, module=None, replicated_inputs=(), no_default_updates=False):
        jax = require_jax(_WHERE)
        # The mesh first: a bad axis name fails before seconds of graph compilation.
        self.mesh = make_mesh() if mesh is None else mesh
        self.data_axis = check_axis(_WHERE, "data_axis", self.mesh, data_axis)
        function = inputs if outputs is None and updates is None and hasattr(inputs, "maker") else None
        if function is None:
            if outputs is None:
                raise ValueError(f"{_WHERE}: outputs is required unless inputs is a compiled Function")
            function = compile_training_graph(inputs, outputs, updates, no_default_updates)
        self._graph = pure_step(function, _WHERE)
        graph = self._graph
        replicated = {id(v) for v in replicated_inputs}
        unknown = [v for v in replicated_inputs if not any(v is i for i in graph.inputs)]
        if unknown:
            raise ValueError(f"{_WHERE}: replicated_inputs {unknown} are not inputs; expected some of {graph.inputs}")
        self._batched = [v.ndim >= 1 and id(v) not in replicated for v in graph.inputs]
        paths = path_names(module)
        self._names = [display_name(v, paths) for v in graph.state]
        self._state_specs = resolve_rules(_WHERE, self.mesh, graph.state, sharding_rules, paths)
        self._input_shardings = [named_sharding(self.mesh, (self.data_axis,) if b else ()) for b in self._batched]
        self._state_shardings = [named_sharding(self.mesh, spec) for spec in self._state_specs]
        self._updated = sorted(graph.updated)
        self._jitted = self._jit(jax)
        self.push()

    def _jit(self, jax):
        """The pure step under ``jax.jit``: shardings in and out, updated state donated."""
        graph, updated = self._graph, self._updated

        def step(*args):
            results = graph.fn(*args)
            results = tuple(results) if isinstance(results, (list, tuple)) else (results,)
            return results[: graph.num_outputs] + tuple(results[graph.updated[i]] for i in updated)

        replicated = named_sharding(self.mesh, ())
        return jax.jit(
            step,
            in_shardings=tuple(self._input_shardings + self._state_shardings),
            out_shardings=tuple([replicated] * graph.num_outputs + [self._state_shardings[i] for i in updated]),
            donate_argnums=tuple(len(graph.inputs) + i for i in updated),
        )

    @classmethod
    def from_function(cls, function, **kwargs):
        """A step from a ``Function`` compiled with ``dandelion.function(..., mode='jax')``."""
        return cls(function, **kwargs)

    # ------------------------------------------------------------------ state
    @property
    def state_variables(self):
        """The shared variables the step holds on the devices, in its own order."""
        return list(self._graph.state)

    @property
    def state_shardings(self):
        """``{variable name: partition spec}`` of the state (``()`` is replicated)."""
        return dict(zip(self._names, self._state_specs))

    @property
    def device_state(self):
        """``{variable name: jax.Array}``: the state as it lives on the devices now.

        Read-only use: the arrays of updated state are donated to the next call.
        """
        return dict(zip(self._names, self._state))

    def push(self):
        """Send the shared variables' values to the devices (replacing the step's state)."""
        self._state = [
            place(np.asarray(v.get_value(borrow=True)), sharding)
            for v, sharding in zip(self._graph.state, self._state_shardings)
        ]

    def pull(self):
        """Copy the devices' state into the shared variables (for ``get_weights``, checkpoints).

        With several processes every process must call it (split state is gathered).
        """
        for variable, array in zip(self._graph.state, self._state):
            variable.set_value(np.asarray(fetch(array), dtype=variable.dtype))

    # ---------------------------------------------------------------- batches
    def _data_size(self):
        return self.mesh.shape[self.data_axis]

    def _local_data_share(self):
        """How many of the data axis' positions this process's devices cover."""
        jax = require_jax(_WHERE)
        axis = self.mesh.axis_names.index(self.data_axis)
        local = {d.id for d in jax.local_devices()}
        devices = np.moveaxis(self.mesh.devices, axis, 0).reshape(self._data_size(), -1)
        return sum(1 for row in devices if any(d.id in local for d in row))

    def local_rows(self, global_batch_size):
        """The rows of a global batch of ``global_batch_size`` this process feeds."""
        self._check_divisible("global_batch_size", int(global_batch_size))
        return local_rows(named_sharding(self.mesh, (self.data_axis,)), (int(global_batch_size),))

    def _check_divisible(self, argument, rows):
        size = self._data_size()
        if rows % size:
            raise ValueError(
                f"{_WHERE}: {argument} has a global batch of {rows} rows; expected a multiple of the size "
                f"{size} of mesh axis {self.data_axis!r}"
            )

    def _global_input(self, index, value):
        variable = self._graph.inputs[index]
        label = _label(variable, index)
        value = np.asarray(value)
        if value.ndim != variable.ndim:
            raise ValueError(f"{_WHERE}: input {label!r} must have ndim {variable.ndim}, got shape {value.shape}")
        if value.dtype != variable.dtype:
            if not np.can_cast(value.dtype, variable.dtype, casting="same_kind"):
                raise TypeError(f"{_WHERE}: input {label!r} must have dtype {variable.dtype}, got {value.dtype}")
            value = value.astype(variable.dtype)
        shape = value.shape
        if self._batched[index]:
            share = self._local_data_share()
            rows = value.shape[0] * self._data_size() // share
            if (value.shape[0] * self._data_size()) % share:
                raise ValueError(
                    f"{_WHERE}: input {label!r} has {value.shape[0]} local rows; expected a multiple of {share} "
                    f"(this process's devices on mesh axis {self.data_axis!r})"
                )
            self._check_divisible(f"input {label!r}", rows)
            shape = (rows,) + value.shape[1:]
        static = variable.type.shape
        if any(s is not None and s != g for s, g in zip(static, shape)):
            raise ValueError(f"{_WHERE}: input {label!r} has global shape {shape}; expected {static}")
        import jax

        return jax.make_array_from_process_local_data(self._input_shardings[index], value, shape)

    # ------------------------------------------------------------------- call
    def __call__(self, *values):
        graph = self._graph
        if len(values) != len(graph.inputs):
            names = [_label(v, i) for i, v in enumerate(graph.inputs)]
            raise TypeError(f"{_WHERE}: expected {len(names)} inputs {names}, got {len(values)}")
        arrays = [self._global_input(i, v) for i, v in enumerate(values)]
        results = self._jitted(*arrays, *self._state)
        for position, state_index in enumerate(self._updated):
            self._state[state_index] = results[graph.num_outputs + position]
        outputs = list(results[: graph.num_outputs])
        return outputs[0] if graph.unpack_single and len(outputs) == 1 else outputs
