"""Objectives: losses, accuracies and CTC."""

from dandelion.objective.accuracy import binary_accuracy, categorical_accuracy
from dandelion.objective.aggregate import aggregate
from dandelion.objective.crossentropy import (
    binary_crossentropy,
    categorical_crossentropy,
    categorical_crossentropy_log,
)
from dandelion.objective.ctc import ctc_cost_logscale
from dandelion.objective.ctc_cer import ctc_CER
from dandelion.objective.ctc_decode import ctc_best_path_decode
from dandelion.objective.hinge import binary_hinge_loss, multiclass_hinge_loss
from dandelion.objective.regression import squared_error

# Backend kernels register themselves with PyTensor's dispatchers when imported
# (the Numba ones live beside their Ops); JAX is optional.
try:
    import jax as _jax  # noqa: F401
except ImportError:  # without JAX the JAX backend is unavailable anyway
    _jax = None
if _jax is not None:
    from dandelion.objective import jax_kernels as _jax_kernels  # noqa: F401

__all__ = [
    "aggregate",
    "binary_accuracy",
    "binary_crossentropy",
    "binary_hinge_loss",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_crossentropy_log",
    "ctc_CER",
    "ctc_best_path_decode",
    "ctc_cost_logscale",
    "multiclass_hinge_loss",
    "squared_error",
]
