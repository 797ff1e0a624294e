"""Optimizers: ``f(loss_or_grads, params, ...) -> OrderedDict`` of updates.

Each optimizer is a composition of the pieces in ``dandelion.update.transforms``;
its state lives in named shared variables among the returned keys
(``optimizer_state(updates)`` lists them for checkpoints).
"""

from dandelion.update.adamw import adamw
from dandelion.update.adaptive import adadelta, adagrad, adam, adamax, rmsprop
from dandelion.update.clipping import clip_by_global_norm, clip_by_value
from dandelion.update.constraints import norm_constraint, total_norm_constraint
from dandelion.update.gradients import get_or_compute_grads
from dandelion.update.schedules import (
    Schedule,
    constant_schedule,
    cosine_schedule,
    exponential_schedule,
    join_schedules,
    linear_schedule,
    linear_warmup,
    step_schedule,
)
from dandelion.update.sgd import apply_momentum, apply_nesterov_momentum, momentum, nesterov_momentum, sgd
from dandelion.update.state import optimizer_state

__all__ = [
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "apply_momentum",
    "apply_nesterov_momentum",
    "get_or_compute_grads",
    "momentum",
    "nesterov_momentum",
    "norm_constraint",
    "optimizer_state",
    "rmsprop",
    "sgd",
    "total_norm_constraint",
]
__all__ += ["adamw", "clip_by_global_norm", "clip_by_value"]
__all__ += [
    "Schedule",
    "constant_schedule",
    "cosine_schedule",
    "exponential_schedule",
    "join_schedules",
    "linear_schedule",
    "linear_warmup",
    "step_schedule",
]
