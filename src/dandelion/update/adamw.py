"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019)."""

from __future__ import annotations

from dandelion.update.gradients import get_or_compute_grads
from dandelion.update.transforms import descend, scale_by_adam


def _decay_flags(params, decay_mask):
    """One bool per parameter: whether weight decay applies to it."""
    if decay_mask is None:
        return [True] * len(params)
    if callable(decay_mask):
        return [bool(decay_mask(p)) for p in params]
    flags = [bool(f) for f in decay_mask]
    if len(flags) != len(params):
        raise ValueError(f"adamw: decay_mask must have one entry per parameter ({len(params)}), got {len(flags)}")
    return flags


def adamw(
    loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01, decay_mask=None,
    clear_nan=False,
):
    """AdamW: ``param -= lr * (adam_direction + weight_decay * param)``.

    The decay is decoupled from the gradient (it never enters Adam's moments), and,
    as in PyTorch and optax, scaled by the (possibly scheduled) learning rate. The
    Adam direction is ``adam``'s own (Lasagne's folded bias correction), so
    ``weight_decay=0`` is exactly ``adam``; in the paper's notation its epsilon is
    ``epsilon / sqrt(1 - beta2^t)``.

    Parameters
    ----------
    loss_or_grads : scalar tensor or list of tensors
    params : list of shared variables
    learning_rate : float, symbolic scalar or ``Schedule``
    beta1, beta2, epsilon : float
    weight_decay : float or symbolic scalar
    decay_mask : None, callable or sequence of bool
        Which parameters decay: all (None), those for which ``decay_mask(param)`` is
        true, or one flag per parameter (e.g. ``[p.ndim > 1 for p in params]`` to leave
        biases and norm scales alone).
    clear_nan : bool
        Replace NaN gradient entries with 0.

    Returns
    -------
    OrderedDict; state ``adamw.m@<param>``, ``adamw.v@<param>``, ``adamw.t``.

    Examples
    --------
    >>> import numpy as np, pytensor
    >>> w = pytensor.shared(np.ones(3, dtype="float32"), name="w")
    >>> sorted(v.name for v in adamw((w**2).sum(), [w], weight_decay=0.1))
    ['adamw.m@w', 'adamw.t', 'adamw.v@w', 'w']
    """
    params, grads = get_or_compute_grads(loss_or_grads, params, "adamw", clear_nan)
    flags = _decay_flags(params, decay_mask)
    directions, state = scale_by_adam("adamw", params, grads, beta1, beta2, epsilon)
    directions = [d + weight_decay * p if decays else d for d, p, decays in zip(directions, params, flags)]
    return descend(params, directions, learning_rate, state, optimizer="adamw")
