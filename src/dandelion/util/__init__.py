"""Utilities: graph helpers and the Theano-era gzip-pickle weight format."""

from dandelion.util import gpickle
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
]
