"""Gradient descent, with and without (Nesterov) momentum."""

from __future__ import annotations

from dandelion.update.gradients import check_params, get_or_compute_grads
from dandelion.update.transforms import add_velocity, descend


def sgd(loss_or_grads, params, learning_rate=1e-4, clear_nan=False):
    """Stochastic gradient descent: ``param := param - learning_rate * grad``.

    Parameters
    ----------
    loss_or_grads : scalar tensor or list of tensors
        A loss, or one gradient per parameter.
    params : list of shared variables
    learning_rate : float or symbolic scalar
    clear_nan : bool
        Replace NaN, +inf and -inf gradient entries with 0 (``dandelion.update.guard``).
        (The old library cleared NaN in the new parameter value instead, which reset a
        parameter to 0.)

    Returns
    -------
    OrderedDict {shared variable: update expression}

    Examples
    --------
    >>> import numpy as np, pytensor
    >>> w = pytensor.shared(np.ones(3, dtype="float32"), name="w")
    >>> updates = sgd((w**2).sum(), [w], learning_rate=0.1)
    """
    params, grads = get_or_compute_grads(loss_or_grads, params, "sgd", clear_nan)
    return descend(params, grads, learning_rate, optimizer="sgd")


def apply_momentum(updates, params=None, momentum=0.9):
    """Add momentum to ``updates``: state ``momentum.velocity@<param>`` per parameter.

    Parameters
    ----------
    updates : OrderedDict {param: update}
    params : list of shared variables, optional
        Parameters to add momentum to; all keys of ``updates`` by default.
    momentum : float or symbolic scalar

    Returns
    -------
    OrderedDict, a copy of ``updates`` with velocity updates.
    """
    params = check_params("apply_momentum", list(updates) if params is None else params)
    return add_velocity("momentum", updates, params, momentum, nesterov=False)


def apply_nesterov_momentum(updates, params=None, momentum=0.9):
    """Add Nesterov momentum to ``updates``: state ``nesterov_momentum.velocity@<param>``.

    Parameters
    ----------
    updates : OrderedDict {param: update}
    params : list of shared variables, optional
    momentum : float or symbolic scalar

    Returns
    -------
    OrderedDict
    """
    params = check_params("apply_nesterov_momentum", list(updates) if params is None else params)
    return add_velocity("nesterov_momentum", updates, params, momentum, nesterov=True)


def momentum(loss_or_grads, params, learning_rate, momentum=0.9, clear_nan=False):
    """SGD with momentum: ``v := momentum * v - lr * g``; ``param := param + v``.

    ``clear_nan`` replaces NaN and ±inf gradient entries with 0 (``dandelion.update.guard``).

    Returns
    -------
    OrderedDict
    """
    params, grads = get_or_compute_grads(loss_or_grads, params, "momentum", clear_nan)
    return add_velocity("momentum", descend(params, grads, learning_rate, optimizer="momentum"), params, momentum, nesterov=False)


def nesterov_momentum(loss_or_grads, params, learning_rate, momentum=0.9, clear_nan=False):
    """SGD with Nesterov momentum (gradient at the current point, pylearn2's form).

    ``clear_nan`` replaces NaN and ±inf gradient entries with 0 (``dandelion.update.guard``).

    Returns
    -------
    OrderedDict
    """
    params, grads = get_or_compute_grads(loss_or_grads, params, "nesterov_momentum", clear_nan)
    return add_velocity(
        "nesterov_momentum", descend(params, grads, learning_rate, optimizer="nesterov_momentum"), params, momentum, nesterov=True
    )
