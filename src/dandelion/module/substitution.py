"""Weight substitution: a module's graph with other variables in place of its own."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable
from pytensor.graph.replace import graph_replace

from dandelion.self_update import pending_update


def _replacement(module, path, variable, value):
    where = f"functional_call({type(module).__name__})"
    if not isinstance(value, Variable):
        array = np.asarray(value)
        if not np.can_cast(array.dtype, variable.dtype, casting="same_kind"):
            raise TypeError(f"{where}: replacement for {path!r} has dtype {array.dtype}, expected {variable.dtype}")
        value = pt.constant(array.astype(variable.dtype))
    replacement = pt.as_tensor_variable(value)
    if replacement.ndim != variable.ndim:
        raise ValueError(f"{where}: replacement for {path!r} has {replacement.ndim} dims, expected {variable.ndim}")
    shape = variable.get_value(borrow=True).shape
    static = replacement.type.shape
    if any(s is not None and s != expected for s, expected in zip(static, shape)):
        raise ValueError(f"{where}: replacement for {path!r} has shape {static}, expected {shape}")
    if replacement.dtype != variable.dtype:
        raise TypeError(
            f"{where}: replacement for {path!r} has dtype {replacement.dtype}, expected {variable.dtype} "
            "(cast it explicitly)"
        )
    # Keep the variable's broadcastable pattern: a (1, C, 1, 1) GroupNorm scale stays broadcastable.
    return pt.specify_broadcastable(replacement, *[i for i, b in enumerate(variable.broadcastable) if b])


def functional_call(module, replacements, args=(), kwargs=None, method="forward", return_updates=False):
    """Call ``module.<method>(*args, **kwargs)`` with some of its variables replaced.

    The module is not changed: its shared variables keep their values, and the
    self-updates that the call records (running statistics) are taken back afterwards.
    Use it for tests, meta-learning (weights as functions of other weights) and tying.

    Parameters
    ----------
    module : Module
    replacements : dict
        {key: tensor or array}; a key is a path name (``'block1.fc.W'``), a Theano-era
        name (``'W@Dense|fc'``) or the shared variable itself. The value must have the
        variable's dtype, number of dimensions and (where static) shape.
    args, kwargs : the arguments of ``method``.
    method : {'forward', 'predict'} or the name of another graph-building method.
    return_updates : bool
        Also return the ``OrderedDict`` of self-updates the call recorded, with the
        replacements applied.

    Returns
    -------
    The method's outputs with the replacements substituted (and the updates).

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> from dandelion.module import Dense, functional_call
    >>> dense = Dense(2, 3)
    >>> x, W = pt.fmatrix("x"), pt.tensor("W", shape=(2, 3), dtype="float32")
    >>> y = functional_call(dense, {"W": W}, (x,))  # a graph of x and W; dense.W is not in it
    >>> f = pytensor.function([x, W], y)
    >>> f(np.ones((1, 2), "float32"), np.ones((2, 3), "float32")).tolist()
    [[2.0, 2.0, 2.0]]
    """
    variables = module.named_variables()
    by_id = {id(v): (path, v) for path, v in variables}
    names = [key for key in replacements if isinstance(key, str)]
    resolved = module.resolve_names(names, variables)
    unknown = [key for key in names if key not in resolved]
    unknown += [getattr(k, "name", k) for k in replacements if not isinstance(k, str) and id(k) not in by_id]
    if unknown:
        raise KeyError(
            f"functional_call({type(module).__name__}): {unknown} name no variable of the module; "
            f"path names: {[path for path, _ in variables]}"
        )
    mapping = {}
    for key, value in replacements.items():
        path, variable = resolved[key] if isinstance(key, str) else by_id[id(key)]
        if variable in mapping:
            raise ValueError(f"functional_call({type(module).__name__}): {path!r} is replaced twice")
        mapping[variable] = _replacement(module, path, variable, value)

    updated = [v for _, v in variables]
    before = {id(v): (getattr(v, "update", None), v) for v in updated}
    outputs = getattr(module, method)(*args, **(kwargs or {}))
    recorded = OrderedDict()
    for variable in updated:
        expression = pending_update(variable)
        if expression is not None and expression is not before[id(variable)][0]:
            recorded[variable] = expression
        variable.update = before[id(variable)][0]  # the module keeps the updates it had

    single = not isinstance(outputs, (list, tuple))
    flat = [outputs] if single else list(outputs)
    replaced = graph_replace(flat + list(recorded.values()), mapping, strict=False) if mapping else flat + list(recorded.values())
    results = replaced[: len(flat)]
    results = results[0] if single else type(outputs)(results)
    if not return_updates:
        return results
    return results, OrderedDict(zip(recorded.keys(), replaced[len(flat) :]))
