"""Learning-rate schedules: symbolic functions of the optimizer's step counter.

Pass one as any optimizer's ``learning_rate``. The optimizer evaluates it at its step
counter ``<optimizer>.t`` (the number of updates done so far: 0 for the first), which
is optimizer state, so checkpoints save it and a resumed run continues the schedule
exactly. Each schedule also evaluates on a plain int step, for plotting or checks.
"""

from __future__ import annotations

import numbers

import numpy as np
import pytensor.tensor as pt

from dandelion.config import floatx


class Schedule:
    """A learning rate as a function of the step count; build one with the functions below."""

    def __init__(self, where, function):
        self.where = where
        self._function = function

    def __call__(self, step):
        """The learning rate at ``step`` (an int >= 0 or a symbolic scalar) as a floatX scalar."""
        if isinstance(step, numbers.Number) and step < 0:
            raise ValueError(f"{self.where}: step must be >= 0, got {step}")
        step = pt.as_tensor_variable(np.asarray(step, dtype=floatx()) if isinstance(step, numbers.Number) else step)
        return pt.cast(self._function(step.astype(floatx())), floatx())

    def __repr__(self):
        return f"Schedule({self.where})"


def _count(where, argument, value, minimum):
    if not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{where}: {argument} must be an int >= {minimum} (a step count), got {value!r}")
    return int(value)


def _const(value):
    return np.asarray(value, dtype=floatx())


def constant_schedule(value):
    """``value`` at every step."""
    return Schedule("constant_schedule", lambda step: pt.zeros_like(step) + _const(value))


def step_schedule(init_value, step_size, gamma=0.1):
    """``init_value * gamma ** floor(step / step_size)``: multiplied by gamma every step_size steps."""
    step_size = _count("step_schedule", "step_size", step_size, 1)
    return Schedule("step_schedule", lambda step: _const(init_value) * _const(gamma) ** pt.floor(step / step_size))


def exponential_schedule(init_value, decay_rate, transition_steps=1, staircase=False):
    """``init_value * decay_rate ** (step / transition_steps)`` (the exponent floored with ``staircase``)."""
    transition_steps = _count("exponential_schedule", "transition_steps", transition_steps, 1)

    def rate(step):
        exponent = step / transition_steps
        return _const(init_value) * _const(decay_rate) ** (pt.floor(exponent) if staircase else exponent)

    return Schedule("exponential_schedule", rate)


def cosine_schedule(init_value, decay_steps, alpha=0.0):
    """Cosine decay (Loshchilov & Hutter 2017, one cycle) from ``init_value`` to ``alpha * init_value``.

    ``init_value * ((1 - alpha) * (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2 + alpha)``.
    """
    decay_steps = _count("cosine_schedule", "decay_steps", decay_steps, 1)

    def rate(step):
        progress = pt.minimum(step, decay_steps) / decay_steps
        cosine = (1 + pt.cos(_const(np.pi) * progress)) / 2
        return _const(init_value) * ((1 - _const(alpha)) * cosine + _const(alpha))

    return Schedule("cosine_schedule", rate)


def linear_schedule(init_value, end_value, transition_steps):
    """From ``init_value`` to ``end_value`` linearly over ``transition_steps``, then constant."""
    transition_steps = _count("linear_schedule", "transition_steps", transition_steps, 0)

    def rate(step):
        if transition_steps == 0:
            return pt.zeros_like(step) + _const(end_value)
        progress = pt.minimum(step, transition_steps) / transition_steps
        return _const(init_value) + (_const(end_value) - _const(init_value)) * progress

    return Schedule("linear_schedule", rate)


def linear_warmup(peak_value, warmup_steps, init_value=0.0):
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then ``peak_value``.

    Join it with a decay: ``join_schedules([linear_warmup(1e-3, 100), cosine_schedule(1e-3, 900)], [100])``.

    Examples
    --------
    >>> import numpy as np
    >>> from dandelion.update import linear_warmup
    >>> warmup = linear_warmup(1.0, 4)
    >>> [round(float(warmup(np.float32(step)).eval()), 2) for step in (0, 2, 4, 8)]
    [0.0, 0.5, 1.0, 1.0]
    """
    _count("linear_warmup", "warmup_steps", warmup_steps, 0)
    schedule = linear_schedule(init_value, peak_value, warmup_steps)
    return Schedule("linear_warmup", schedule._function)


def join_schedules(schedules, boundaries):
    """``schedules[i]`` from ``boundaries[i - 1]`` on, each restarted at step 0 there (optax's join).

    Parameters
    ----------
    schedules : list of Schedule, one more than ``boundaries``
    boundaries : list of int
        Increasing step counts > 0.
    """
    schedules = list(schedules)
    boundaries = [_count("join_schedules", f"boundaries[{i}]", b, 1) for i, b in enumerate(boundaries)]
    if len(schedules) != len(boundaries) + 1:
        raise ValueError(
            f"join_schedules: needs one schedule more than boundaries, got {len(schedules)} schedules and {len(boundaries)} boundaries"
        )
    if any(not isinstance(s, Schedule) for s in schedules):
        raise TypeError("join_schedules: every entry of schedules must be a Schedule")
    if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
        raise ValueError(f"join_schedules: boundaries must increase, got {boundaries}")

    def rate(step):
        value = schedules[0]._function(step)
        for boundary, schedule in zip(boundaries, schedules[1:]):
            value = pt.switch(pt.ge(step, boundary), schedule._function(step - boundary), value)
        return value

    return Schedule("join_schedules", rate)


def scheduled_rate(learning_rate, counter):
    """The learning rate of this step: ``learning_rate(counter)`` for a schedule, else as given."""
    return learning_rate(counter) if isinstance(learning_rate, Schedule) else learning_rate
