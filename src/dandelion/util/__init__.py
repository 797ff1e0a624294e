"""Utilities: graph helpers and the Theano-era gzip-pickle weight format."""

from dandelion.util import gpickle
from dandelion.util.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from dandelion.util.graph import (
    as_tuple,
    batch_gather,
    collect_shared_vars,
    compute_norms,
    create_param,
    floatX,
    one_hot,
    shape_of,
    unroll_scan,
)
from dandelion.util.memory import Finite_Memory_Array, finite_memory_array
from dandelion.util.misc import get_time_stamp, get_weight_by_name, safe_run, theano_safe_run
from dandelion.util.sequence import pad_sequence_into_array
from dandelion.util.stdio import sys_output_tap

__all__ = [
    "as_tuple",
    "batch_gather",
    "collect_shared_vars",
    "compute_norms",
    "create_param",
    "floatX",
    "gpickle",
    "one_hot",
    "shape_of",
    "unroll_scan",
    "CheckpointError",
    "Finite_Memory_Array",
    "finite_memory_array",
    "get_time_stamp",
    "get_weight_by_name",
    "load_checkpoint",
    "pad_sequence_into_array",
    "read_checkpoint",
    "safe_run",
    "save_checkpoint",
    "sys_output_tap",
    "theano_safe_run",
]
