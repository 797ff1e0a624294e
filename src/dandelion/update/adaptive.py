"""Optimizers with per-coordinate step sizes: Adagrad, RMSProp, Adadelta, Adam, Adamax."""

from __future__ import annotations

from dandelion.update.gradients import get_or_compute_grads
from dandelion.update.transforms import (
    descend,
    scale_by_adam,
    scale_by_adamax,
    scale_by_delta_ratio,
    scale_by_rms,
)


def adagrad(loss_or_grads, params, learning_rate=1.0, epsilon=1e-6, clear_nan=False):
    """Adagrad (Duchi et al. 2011): ``param -= lr * g / sqrt(sum g^2 + epsilon)``.

    State: ``adagrad.accu@<param>``. ``clear_nan`` replaces NaN and ±inf gradient entries with 0 (``dandelion.update.guard``).
    Returns an OrderedDict of updates.
    """
    params, grads = get_or_compute_grads(loss_or_grads, params, "adagrad", clear_nan)
    directions, state = scale_by_rms("adagrad", params, grads, None, epsilon)
    return descend(params, directions, learning_rate, state, optimizer="adagrad")


def rmsprop(loss_or_grads, params, learning_rate=1.0, rho=0.9, epsilon=1e-6, clear_nan=False):
    """RMSProp (Tieleman & Hinton 2012): ``r = rho r + (1-rho) g^2``; ``param -= lr g / sqrt(r + eps)``.

    State: ``rmsprop.accu@<param>``. ``clear_nan`` replaces NaN and ±inf gradient entries with 0 (``dandelion.update.guard``).
    Returns an OrderedDict of updates.
    """
    params, grads = get_or_compute_grads(loss_or_grads, params, "rmsprop", clear_nan)
    directions, state = scale_by_rms("rmsprop", params, grads, rho, epsilon)
    return descend(params, directions, learning_rate, state, optimizer="rmsprop")


def adadelta(loss_or_grads, params, learning_rate=1.0, rho=0.95, epsilon=1e-6, clear_nan=False):
    """Adadelta (Zeiler 2012).

    State: ``adadelta.accu@<param>`` (running mean of g^2) and
    ``adadelta.delta_accu@<param>`` (of squared steps). ``clear_nan`` replaces NaN and ±inf gradient entries with 0 (``dandelion.update.guard``).
    Returns an OrderedDict of updates.
    """
    params, grads = get_or_compute_grads(loss_or_grads, params, "adadelta", clear_nan)
    directions, state = scale_by_delta_ratio("adadelta", params, grads, rho, epsilon)
    return descend(params, directions, learning_rate, state, optimizer="adadelta")


def adam(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, clear_nan=False):
    """Adam (Kingma & Ba 2015).

    State: ``adam.m@<param>``, ``adam.v@<param>`` and the step counter ``adam.t``.
    ``clear_nan`` replaces NaN and ±inf gradient entries with 0 (``dandelion.update.guard``).
    Returns an OrderedDict.

    Examples
    --------
    >>> import numpy as np, pytensor
    >>> w = pytensor.shared(np.ones(3, dtype="float32"), name="w")
    >>> updates = adam((w**2).sum(), [w])
    >>> sorted(v.name for v in updates)
    ['adam.m@w', 'adam.t', 'adam.v@w', 'w']
    """
    params, grads = get_or_compute_grads(loss_or_grads, params, "adam", clear_nan)
    directions, state = scale_by_adam("adam", params, grads, beta1, beta2, epsilon)
    return descend(params, directions, learning_rate, state, optimizer="adam")


def adamax(loss_or_grads, params, learning_rate=0.002, beta1=0.9, beta2=0.999, epsilon=1e-8, clear_nan=False):
    """Adamax (Kingma & Ba 2015, infinity norm).

    State: ``adamax.m@<param>``, ``adamax.u@<param>``, ``adamax.t``. ``clear_nan`` replaces NaN and ±inf gradient entries with 0 (``dandelion.update.guard``).
    Returns an OrderedDict.
    """
    params, grads = get_or_compute_grads(loss_or_grads, params, "adamax", clear_nan)
    directions, state = scale_by_adamax("adamax", params, grads, beta1, beta2, epsilon)
    return descend(params, directions, learning_rate, state, optimizer="adamax")
