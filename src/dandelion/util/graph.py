"""Graph-building helpers shared by modules and users (no I/O here)."""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.graph.traversal import graph_inputs

from dandelion.config import floatx


def floatX(arr):
    """Cast a NumPy array or scalar to the library's float dtype (float32 by default)."""
    return np.asarray(arr, dtype=floatx())


def shape_of(x):
    """``x``'s shape with the statically known lengths as Python ints.

    JAX compiles reshapes and allocations only when their shapes are constants; using
    the static lengths where the type knows them keeps such graphs JAX-compatible.
    """
    x = pt.as_tensor_variable(x)
    return tuple(x.shape[axis] if length is None else length for axis, length in enumerate(x.type.shape))


def one_hot(x, m=None):
    """One-hot encode integer tensor ``x`` (any shape) into ``x.shape + (m,)``.

    ``m`` defaults to ``max(x) + 1``, which needs a dynamic shape; give it for JAX.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.util import one_hot
    >>> one_hot(pt.constant([2, 0]), 3).eval().tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    x = pt.as_tensor_variable(x)
    if m is None:
        m = pt.cast(pt.max(x) + 1, "int64")
    return pt.eq(x[..., None], pt.arange(m)).astype(floatx())


def batch_gather(x, index):
    """``x[b, index[b]]`` for every batch entry ``b``.

    x : (B, N, ...); index : (B,) int. Returns (B, ...).
    """
    x = pt.as_tensor_variable(x)
    index = pt.as_tensor_variable(index)
    return x[pt.arange(x.shape[0]), index]


def as_tuple(x, N, t=None):
    """``x`` repeated to a tuple of length ``N`` (or checked, if already iterable).

    ``t`` optionally names the type every element must have.
    """
    try:
        values = tuple(x)
    except TypeError:
        values = (x,) * N
    if len(values) != N:
        raise ValueError(f"as_tuple: expected a single value or an iterable of length {N}, got {x!r}")
    if t is not None and not all(isinstance(v, t) for v in values):
        raise TypeError(f"as_tuple: expected elements of type {t}, got {x!r}")
    return values


def create_param(spec, shape=None, name=None, dim_broadcast=None):
    """Make a parameter from an initializer, array, shared variable or expression.

    spec : callable (initializer, called with ``shape``), ndarray, SharedVariable or
        symbolic expression. Arrays become shared variables of floatX (integer arrays keep
        their dtype).
    shape : tuple of int, optional
        Checked against the result when given; required for a callable.
    dim_broadcast : tuple of bool, optional
        Axes that must have length 1 and broadcast (e.g. GroupNorm's (1, C, 1, 1)
        parameters); checked. Every parameter made here has its full static shape.
    """
    where = f"create_param({name!r})" if name else "create_param"
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if any(s <= 0 for s in shape):
            raise ValueError(f"{where}: shape must be positive, got {shape}")

    if isinstance(spec, Variable):
        if shape is not None and spec.ndim != len(shape):
            raise ValueError(f"{where}: expected a variable of ndim {len(shape)}, got ndim {spec.ndim}")
        if isinstance(spec, SharedVariable) and shape is not None:
            actual = spec.get_value(borrow=True).shape
            if actual != shape:
                raise ValueError(f"{where}: expected shape {shape}, got {actual}")
        if name is not None and spec.name is None:
            spec.name = name
        return spec

    if isinstance(spec, (np.ndarray, np.generic, numbers.Number)):
        value = np.asarray(spec)
    elif isinstance(spec, Callable):
        if shape is None:
            raise ValueError(f"{where}: an initializer needs a shape")
        value = np.asarray(spec(shape))
    else:
        raise TypeError(f"{where}: expected an initializer, ndarray, shared variable or expression, got {type(spec).__name__}")

    if shape is not None and value.shape != shape:
        raise ValueError(f"{where}: expected shape {shape}, got {value.shape}")
    if value.dtype.kind not in "iub":
        value = value.astype(floatx())
    if dim_broadcast is not None and len(dim_broadcast) != value.ndim:
        raise ValueError(f"{where}: dim_broadcast has {len(dim_broadcast)} entries for a {value.ndim}-D value")
    if dim_broadcast is not None and any(b and n != 1 for b, n in zip(dim_broadcast, value.shape)):
        raise ValueError(f"{where}: broadcastable axes must have length 1, got shape {value.shape} for {dim_broadcast}")
    # Parameters keep their shape for life (set_weights checks it), so the type carries
    # it: rewrites then need no broadcast checks and JAX sees constant shapes.
    return pytensor.shared(value, name=name, shape=value.shape)


def collect_shared_vars(expressions):
    """Shared variables an expression (or list of expressions) depends on, in graph order."""
    if isinstance(expressions, Variable):
        expressions = [expressions]
    return [v for v in graph_inputs(expressions) if isinstance(v, SharedVariable)]


def compute_norms(array, norm_axes=None):
    """L2 norms of a NumPy array over ``norm_axes`` (default: all but the first).

    Useful to inspect the effect of ``norm_constraint`` on weights.
    """
    array = np.asarray(array)
    if norm_axes is None:
        norm_axes = tuple(range(1, array.ndim)) if array.ndim > 1 else (0,)
    return np.sqrt(np.sum(array**2, axis=tuple(norm_axes)))


def unroll_scan(fn, sequences, outputs_info, non_sequences, n_steps, go_backwards=False):
    """Unrolled version of ``scan`` for a fixed, known number of steps.

    Builds the graph step by step in Python: no scan node, so every backend sees a flat
    graph (faster for short loops, larger graphs for long ones). Returns a list of
    stacked outputs, like ``scan``; a single output is returned unwrapped.
    """
    sequences = list(sequences or [])
    non_sequences = list(non_sequences or [])
    outputs_info = list(outputs_info) if isinstance(outputs_info, (list, tuple)) else [outputs_info]
    steps = range(n_steps - 1, -1, -1) if go_backwards else range(n_steps)
    previous = list(outputs_info)
    collected = [[] for _ in outputs_info]
    for t in steps:
        step_inputs = [seq[t] for seq in sequences] + [p for p in previous if p is not None] + non_sequences
        step_outputs = fn(*step_inputs)
        if not isinstance(step_outputs, (list, tuple)):
            step_outputs = [step_outputs]
        for k, out in enumerate(step_outputs):
            collected[k].append(out)
        previous = list(step_outputs)
    stacked = [pt.stack(outs) for outs in collected]
    return stacked[0] if len(stacked) == 1 else stacked
