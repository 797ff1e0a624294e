"""A compiled PyTensor function as a pure JAX step over explicit state.

PyTensor's JAX backend turns the function's graph into
``step(inputs..., state...) -> (outputs..., new values of the updated state...)``;
``fgraph.update_mapping`` says which output replaces which input. The ``Function``
itself would copy JAX arrays back to the host on every call, so the distributed step
calls the pure function directly and keeps the state on the devices.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytensor.compile.sharedvalue import SharedVariable

import dandelion
from dandelion._workarounds import with_jax_fixes
from dandelion.compile import backend_name


@dataclass
class PureStep:
    """The pieces of a compiled training function.

    fn : the pure JAX function ``fn(*inputs, *state) -> (*outputs, *new_state)``.
    inputs : the explicit input variables, in call order.
    state : the shared variables the graph reads (parameters, optimizer and random
        states, running statistics), in ``fn``'s argument order after the inputs (not
        ``collect_params()`` order).
    updated : {state index: output index of its new value}.
    num_outputs : how many of ``fn``'s outputs are the user's outputs.
    unpack_single : the function was compiled with a single output (not a list).
    """

    fn: object
    inputs: list
    state: list
    updated: dict
    num_outputs: int
    unpack_single: bool


def compile_training_graph(inputs, outputs, updates=None, no_default_updates=False):
    """``dandelion.function`` on the JAX backend; its graph is what gets distributed."""
    return dandelion.function(inputs, outputs, updates=updates, mode="jax", no_default_updates=no_default_updates)


def pure_step(function, where):
    """Split a JAX-compiled ``Function`` into a ``PureStep``."""
    from pytensor.link.jax.dispatch import jax_funcify
    from pytensor.tensor.random.type import RandomType

    if backend_name(function.maker.mode) != "jax":
        raise ValueError(
            f"{where}: function must be compiled with mode='jax' (its graph is handed to JAX), got a "
            f"{backend_name(function.maker.mode)!r} function; or pass inputs, outputs and updates instead"
        )
    if getattr(function.maker.linker, "scalar_shape_inputs", ()):
        raise NotImplementedError(f"{where}: graphs with scalar shape inputs (static arguments) are not supported")
    fgraph = function.maker.fgraph
    specs = function.maker.inputs
    explicit = [spec.variable for spec in specs if not spec.implicit]
    state = [spec.variable for spec in specs if spec.implicit]
    if [spec.implicit for spec in specs] != [False] * len(explicit) + [True] * len(state):
        raise NotImplementedError(f"{where}: functions whose shared inputs precede explicit ones are not supported")
    for variable in state:
        if not isinstance(variable, SharedVariable):
            raise NotImplementedError(f"{where}: implicit input {variable} is not a shared variable")
        if isinstance(variable.type, RandomType):
            raise NotImplementedError(
                f"{where}: shared random generators ({variable}) are not supported; dandelion's Dropout "
                "draws from a counter instead"
            )
    mapping = fgraph.update_mapping or {}
    num_outputs = len(fgraph.outputs) - len(mapping)
    updated = {in_index - len(explicit): out_index for out_index, in_index in mapping.items()}
    return PureStep(
        fn=jax_funcify(fgraph, **with_jax_fixes({})),
        inputs=explicit,
        state=state,
        updated=updated,
        num_outputs=num_outputs,
        unpack_single=bool(getattr(function, "unpack_single", False)),
    )
