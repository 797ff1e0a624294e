"""Small pieces the optimizers are composed of (optax-style, on symbolic graphs).

A transform maps per-parameter gradients (or directions) to new directions and
returns the state updates it needs; ``descend`` turns directions into parameter
updates. Each named optimizer is a short chain of these.
"""

from __future__ import annotations

from collections import OrderedDict

import pytensor.tensor as pt

from dandelion._scalars import scalar_like
from dandelion.update.schedules import Schedule, scheduled_rate
from dandelion.update.state import param_label, step_counter, zeros_like_param


def descend(params, directions, learning_rate, state_updates=(), optimizer=None):
    """``param - learning_rate * direction`` for each pair, after ``state_updates``.

    A ``Schedule`` learning rate is evaluated at the optimizer's step counter
    ``<optimizer>.t``: the one among ``state_updates`` (Adam's), or a new one counting
    the updates.

    Returns the optimizer's ``OrderedDict``: parameters first, in order, then the
    state variables' updates.
    """
    state_updates = OrderedDict(state_updates)
    if isinstance(learning_rate, Schedule):
        if optimizer is None:
            raise ValueError("descend: a Schedule learning rate needs the optimizer's name for its step counter")
        counter = next((v for v in state_updates if v.name == f"{optimizer}.t"), None)
        if counter is None:
            counter = step_counter(optimizer)
            state_updates[counter] = _as_dtype(counter + 1, counter)
        learning_rate = scheduled_rate(learning_rate, counter)
    updates = OrderedDict()
    for param, direction in zip(params, directions):
        updates[param] = pt.cast(param - scalar_like(learning_rate, param.dtype) * direction, param.dtype)
    updates.update(state_updates)
    return updates


def _as_dtype(expression, variable):
    # Also for Python floats raised to the step counter: PyTensor makes them floatX
    # constants (float64 by default), which would turn a float32 model's step float64.
    return pt.cast(expression, variable.dtype)


def _weights(coefficient, variable):
    """``coefficient`` and ``1 - coefficient`` (a moving average's weights) in ``variable``'s dtype."""
    return scalar_like(coefficient, variable.dtype), scalar_like(1 - coefficient, variable.dtype)


def scale_by_rms(optimizer, params, grads, rho, epsilon):
    """``g / sqrt(r + epsilon)`` with r a running average of g^2 (RMSProp), or their sum (Adagrad, ``rho=None``)."""
    directions, updates = [], OrderedDict()
    for index, (param, grad) in enumerate(zip(params, grads)):
        accu = zeros_like_param(optimizer, "accu", param, index)
        if rho is None:
            accu_new = accu + grad**2
        else:
            keep, take = _weights(rho, accu)
            accu_new = keep * accu + take * grad**2
        updates[accu] = _as_dtype(accu_new, accu)
        directions.append(grad / pt.sqrt(accu_new + scalar_like(epsilon, accu.dtype)))
    return directions, updates


def scale_by_delta_ratio(optimizer, params, grads, rho, epsilon):
    """Adadelta: ``g * sqrt(s + eps) / sqrt(r + eps)`` with running averages r of g^2, s of steps^2."""
    directions, updates = [], OrderedDict()
    for index, (param, grad) in enumerate(zip(params, grads)):
        accu = zeros_like_param(optimizer, "accu", param, index)
        delta_accu = zeros_like_param(optimizer, "delta_accu", param, index)
        keep, take = _weights(rho, accu)
        eps = scalar_like(epsilon, accu.dtype)
        accu_new = keep * accu + take * grad**2
        direction = grad * pt.sqrt(delta_accu + eps) / pt.sqrt(accu_new + eps)
        updates[accu] = _as_dtype(accu_new, accu)
        updates[delta_accu] = _as_dtype(keep * delta_accu + take * direction**2, delta_accu)
        directions.append(direction)
    return directions, updates


def scale_by_adam(optimizer, params, grads, beta1, beta2, epsilon):
    """Adam (Kingma & Ba 2015, Algorithm 1, with the bias correction folded into the step size).

    ``sqrt(1 - beta2^t) / (1 - beta1^t) * m_t / (sqrt(v_t) + epsilon)``, as Lasagne and
    the Theano-era library computed it.
    """
    counter = step_counter(optimizer)
    t = counter + 1
    correction = pt.sqrt(1 - _as_dtype(beta2, counter) ** t) / (1 - _as_dtype(beta1, counter) ** t)
    directions, updates = [], OrderedDict()
    for index, (param, grad) in enumerate(zip(params, grads)):
        m = zeros_like_param(optimizer, "m", param, index)
        v = zeros_like_param(optimizer, "v", param, index)
        (keep1, take1), (keep2, take2) = _weights(beta1, m), _weights(beta2, v)
        m_t = keep1 * m + take1 * grad
        v_t = keep2 * v + take2 * grad**2
        updates[m] = _as_dtype(m_t, m)
        updates[v] = _as_dtype(v_t, v)
        directions.append(_as_dtype(correction, m) * m_t / (pt.sqrt(v_t) + scalar_like(epsilon, v.dtype)))
    updates[counter] = _as_dtype(t, counter)
    return directions, updates


def scale_by_adamax(optimizer, params, grads, beta1, beta2, epsilon):
    """Adamax (Kingma & Ba 2015, Algorithm 2): ``m_t / (1 - beta1^t) / (u_t + epsilon)``."""
    counter = step_counter(optimizer)
    t = counter + 1
    correction = 1 / (1 - _as_dtype(beta1, counter) ** t)
    directions, updates = [], OrderedDict()
    for index, (param, grad) in enumerate(zip(params, grads)):
        m = zeros_like_param(optimizer, "m", param, index)
        u = zeros_like_param(optimizer, "u", param, index)
        keep1, take1 = _weights(beta1, m)
        m_t = keep1 * m + take1 * grad
        u_t = pt.maximum(scalar_like(beta2, u.dtype) * u, pt.abs(grad))
        updates[m] = _as_dtype(m_t, m)
        updates[u] = _as_dtype(u_t, u)
        directions.append(_as_dtype(correction, m) * m_t / (u_t + scalar_like(epsilon, u.dtype)))
    updates[counter] = _as_dtype(t, counter)
    return directions, updates


def add_velocity(optimizer, updates, params, momentum, nesterov):
    """Momentum on top of any updates (Lasagne's ``apply_momentum`` formulation).

    Classic: ``x = momentum * v + updates[p]``; ``v := x - p``; ``p := x``.
    Nesterov (the pylearn2 reformulation, gradient at the current point):
    ``x = momentum * v + updates[p] - p``; ``v := x``; ``p := momentum * x + updates[p]``.
    """
    result = OrderedDict(updates)
    for index, param in enumerate(params):
        if param not in result:
            raise KeyError(f"{optimizer}: parameter {param_label(param, index)!r} has no update to add momentum to")
        velocity = zeros_like_param(optimizer, "velocity", param, index)
        mu = scalar_like(momentum, velocity.dtype)
        if nesterov:
            x = mu * velocity + result[param] - param
            result[velocity] = _as_dtype(x, velocity)
            result[param] = _as_dtype(mu * x + result[param], param)
        else:
            x = mu * velocity + result[param]
            result[velocity] = _as_dtype(x - param, velocity)
            result[param] = _as_dtype(x, param)
    return result
