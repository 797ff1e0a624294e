"""Objectives: losses, accuracies and CTC."""

from dandelion._compat import after_jax_dispatch_import
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



# Backend kernels register themselves with PyTensor's dispatchers when imported (the
# Numba ones live beside their Ops). The JAX ones import JAX, which is optional and
# which importing dandelion must not do: they register when the JAX backend is first used.
def _register_jax_kernels():
    import importlib

    importlib.import_module("dandelion.objective.jax_kernels")


after_jax_dispatch_import(_register_jax_kernels)

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
