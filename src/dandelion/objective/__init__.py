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
