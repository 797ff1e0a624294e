"""Parameter checks and gradients shared by every optimizer."""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable

from dandelion.update.guard import guard_gradients


def check_params(where, params):
    """``params`` as a list of shared variables (clear error otherwise)."""
    if isinstance(params, SharedVariable):
        raise TypeError(
            f"{where}: params must be a list of shared variables, got a single {type(params).__name__}; wrap it in a list"
        )
    params = list(params)
    for index, param in enumerate(params):
        if not isinstance(param, SharedVariable):
            raise TypeError(
                f"{where}: params[{index}] must be a shared variable (the optimizer updates it), "
                f"got {type(param).__name__} {getattr(param, 'name', None)!r}; "
                "dandelion.util.collect_shared_vars() finds the shared variables of an expression"
            )
    if len({id(p) for p in params}) != len(params):
        raise ValueError(f"{where}: params lists a shared variable more than once")
    return params


def get_or_compute_grads(loss_or_grads, params, where="get_or_compute_grads", clear_nan=False):
    """Gradients of a scalar loss with respect to ``params``, or given gradients checked.

    Parameters
    ----------
    loss_or_grads : scalar tensor, or list of tensors
        A loss, or one gradient per parameter (each shaped like it).
    params : list of shared variables
    clear_nan : bool
        Replace NaN, +inf and -inf gradient entries with 0
        (``dandelion.update.guard``, the policy of every optimizer).

    Returns
    -------
    (params, grads) : two lists of equal length.
    """
    params = check_params(where, params)
    if isinstance(loss_or_grads, (list, tuple)):
        grads = [pt.as_tensor_variable(g) for g in loss_or_grads]
        if len(grads) != len(params):
            raise ValueError(f"{where}: got {len(grads)} gradient expressions for {len(params)} parameters")
        for index, (grad, param) in enumerate(zip(grads, params)):
            if grad.ndim != param.ndim:
                raise ValueError(
                    f"{where}: gradient {index} has ndim {grad.ndim}, parameter {param.name!r} has ndim {param.ndim}"
                )
    else:
        loss = pt.as_tensor_variable(loss_or_grads)
        if loss.ndim != 0:
            raise ValueError(
                f"{where}: loss_or_grads must be a scalar loss or a list of gradients, got a tensor of ndim {loss.ndim}"
            )
        grads = pytensor.grad(loss, params)
    return params, guard_gradients(grads, clear_nan)
