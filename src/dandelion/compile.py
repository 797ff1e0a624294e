"""Compile graphs for a chosen backend, with the Theano-era defaults dandelion's users expect."""

from __future__ import annotations

import os
from collections import OrderedDict

import pytensor
from pytensor.compile.mode import Mode, get_mode
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.graph.traversal import apply_ancestors, graph_inputs
from pytensor.scan.op import Scan

from dandelion._compat import compile_without_implicit_updates, read_default_update
from dandelion._workarounds import SCAN_PUSHOUT_TRUNCATED, linker_for, with_rewrite_fixes
from dandelion.allocator import keep_freed_buffers
from dandelion.compile_shapes import ShapeSpecializedFunction, can_specialize, shape_free_inputs
from dandelion.ops.dense_dot import with_dense_dot
from dandelion.ops.flat_elemwise import with_flat_elemwise
from dandelion.rollback import with_rollback

BACKEND_ENV_VAR = "DANDELION_BACKEND"

# Backend names users type, mapped to PyTensor's predefined modes. "c" uses the C VM
# (C thunks, C loop), which is what Theano's default "c|py" + cvm linker meant.
BACKEND_MODES = {"c": "CVM", "cvm": "CVM", "numba": "NUMBA", "jax": "JAX"}


def resolve_mode(mode=None) -> Mode:
    """Turn a backend name, a PyTensor mode name or a ``Mode`` into a ``Mode``.

    ``None`` reads the ``DANDELION_BACKEND`` environment variable, then falls back to
    PyTensor's own default mode. A mode on PyTensor's Numba or JAX linker comes back on
    dandelion's subclass of it, which works around PyTensor bugs in the generated code
    (``dandelion._workarounds``); other ``Mode`` objects pass through unchanged.
    """
    return linker_for(_named_mode(mode))


def _named_mode(mode):
    if mode is None:
        mode = os.environ.get(BACKEND_ENV_VAR) or None
        if mode is None:
            return get_mode(None)
    if isinstance(mode, Mode):
        return mode
    if not isinstance(mode, str):
        raise TypeError(f"dandelion.function: mode must be a str or a Mode, got {type(mode).__name__}")
    key = mode.strip()
    if key.lower() in BACKEND_MODES:
        return get_mode(BACKEND_MODES[key.lower()])
    try:
        return get_mode(key)
    except Exception as error:
        allowed = sorted(BACKEND_MODES) + sorted(pytensor.compile.mode.predefined_modes)
        raise ValueError(
            f"dandelion.function: unknown mode {mode!r}; expected one of {allowed} or a Mode"
        ) from error


def backend_name(mode=None) -> str:
    """'c', 'numba', 'jax' or the linker's class name, for messages and tests."""
    linker = type(resolve_mode(mode).linker).__name__.lower()
    for name in ("numba", "jax"):
        if name in linker:
            return name
    return "c" if "vm" in linker or linker.startswith("c") else linker


def with_backend_lowerings(mode):
    """``mode`` with dandelion's lowerings for its backend: flat elementwise loops on C, ``DenseDot`` on Numba."""
    backend = backend_name(mode)
    if backend == "c":
        return with_flat_elemwise(mode)
    if backend == "numba":
        return with_dense_dot(mode)
    return mode


def _as_update_pairs(updates):
    if updates is None:
        return []
    if isinstance(updates, dict):
        return list(updates.items())
    return list(updates)


def implicit_updates(outputs, explicit):
    """Updates that variables in the graph of ``outputs`` carry themselves.

    Theano's ``default_update`` semantics: random generator states (dropout) and a
    user's own ``default_update``. Module self-updates recorded as ``.update`` (running
    statistics, centres) are *not* implicit, as in Theano: a predict graph reads the
    same variables and must not update them; pass ``collect_self_updates()``.
    """
    explicit_vars = {var for var, _ in explicit}
    found = OrderedDict()
    pending = [o for o in outputs] + [expr for _, expr in explicit]
    seen = set()
    while pending:
        roots = [v for v in graph_inputs(pending) if v not in seen]
        pending = []
        for var in roots:
            seen.add(var)
            if not isinstance(var, SharedVariable) or var in explicit_vars or var in found:
                continue
            expr = read_default_update(var)
            if expr is not None:
                found[var] = expr
                # The update may itself read shared variables with updates of their own.
                pending.append(expr)
    return found


def function(inputs, outputs=None, updates=None, *, mode=None, no_default_updates=False, **kwargs):
    """Compile a graph like ``pytensor.function``, choosing the backend by name.

    Parameters
    ----------
    inputs, outputs, updates
        As for ``pytensor.function``.
    mode : str or Mode, optional
        ``'c'``, ``'numba'`` or ``'jax'`` (any case), a PyTensor mode name such as
        ``'FAST_COMPILE'``, or a ``Mode``. ``None`` reads ``$DANDELION_BACKEND``, then
        PyTensor's default.
    no_default_updates : bool
        Theano's flag. ``False`` (the default, as in the old tutorials) also applies the
        implicit updates of shared variables in the graph, as
        Theano's ``default_update`` (dropout generator states, a user's own). ``True`` applies only ``updates``.

    Notes
    -----
    A call that raises leaves every shared variable exactly as it was. PyTensor's
    inplace rewrites compute some updates into the variable's own buffer before the
    rest of the graph has run; those that a node running later could still fail after
    are copied before each call (into buffers kept between calls) and copied back when
    the call raises (``dandelion.rollback``; out-of-memory errors in the update nodes
    themselves aside). The result is then a ``RollbackFunction`` that forwards every
    attribute to the PyTensor ``Function`` (its ``function``); when nothing needs a
    copy, the PyTensor ``Function`` itself.

    The first call tunes glibc's malloc for the process, so that freed step buffers (C,
    Numba) and XLA's per-call temp block (JAX on CPU) are reused instead of page-faulted
    in again (``dandelion.allocator``; ``DANDELION_KEEP_FREED_BUFFERS=0`` opts out).

    On JAX, inputs declared without a static shape (``pt.matrix('x')``) are specialised
    like ``jax.jit``: the first call with a new combination of input shapes compiles the
    graph for those shapes (cached), so the result is a ``ShapeSpecializedFunction``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> import dandelion
    >>> x = pt.fvector("x")
    >>> f = dandelion.function([x], 2 * x, mode="numba")
    >>> f([1.0, 2.0]).tolist()
    [2.0, 4.0]
    """
    explicit = _as_update_pairs(updates)
    out_list = [] if outputs is None else (list(outputs) if isinstance(outputs, (list, tuple)) else [outputs])
    if not no_default_updates:
        explicit = explicit + list(implicit_updates(out_list, explicit).items())
    resolved = with_backend_lowerings(with_rewrite_fixes(resolve_mode(mode)))
    if SCAN_PUSHOUT_TRUNCATED.active and _has_truncated_scan(out_list + [expr for _, expr in explicit]):
        resolved = resolved.excluding("scan_pushout_add")
    # every backend's step mallocs its buffers: reuse them instead of page-faulting (allocator)
    keep_freed_buffers()
    if backend_name(resolved) == "jax" and shape_free_inputs(inputs) and can_specialize(inputs):
        # JAX needs concrete shapes while tracing: compile per shape signature, as jax.jit
        def compile_for(shaped_inputs, shaped_outputs, shaped_updates):
            compiled = compile_without_implicit_updates(shaped_inputs, shaped_outputs, shaped_updates, resolved, **kwargs)
            return with_rollback(compiled)

        return ShapeSpecializedFunction(inputs, outputs, explicit, compile_for)
    compiled = compile_without_implicit_updates(inputs, outputs, explicit or None, resolved, **kwargs)
    # A call that raises (x and y of different batch sizes) must leave every shared
    # variable as it was, including those an inplace node had already overwritten.
    return with_rollback(compiled)


def _has_truncated_scan(variables):
    variables = [v for v in variables if isinstance(v, Variable)]
    return any(isinstance(node.op, Scan) and node.op.truncate_gradient != -1 for node in apply_ancestors(variables))
