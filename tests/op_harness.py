"""One harness for dandelion's Ops: values, gradients, shape inference, every backend.

Every Op test imports its Op classes from here (one place to follow a rename or a move
of ``dandelion.ops``) and checks through four functions:

- ``check_values``: compile once on a backend (Python fallbacks turned into errors),
  compare every output with an independent NumPy reference, dtypes kept;
- ``check_grad``: finite differences (``pytensor.gradient.verify_grad``) in float64;
- ``check_infer_shape``: the shapes come from ``infer_shape`` (no Op left in the shape
  graph) and equal the expected ones;
- ``assert_static_shapes``: the outputs' static shapes where the inputs' are known.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
from pytensor.compile.mode import Mode

from dandelion.ops.axis_sum import SumOver
from dandelion.ops.batch_norm import BatchNormTrainGradOp, BatchNormTrainOp, batch_norm_train
from dandelion.ops.conv import Conv2dGradFiltersOp, Conv2dGradInputOp, Conv2dOp
from dandelion.ops.ctc import CTCForwardGradOp, CTCForwardOp
from dandelion.ops.gru import GRUSequenceGradOp, GRUSequenceOp, gru_sequence
from dandelion.ops.index_bounds import IndexBoundsCheck
from dandelion.ops.lstm import LSTMSequenceGradOp, LSTMSequenceOp, lstm_sequence
from dandelion.ops.pool import MaxPoolGatherOp, PoolGradOp, PoolOp
from tests.helpers import PY_MODE, assert_close, compile_fn, verify_grad

__all__ = [
    "BatchNormTrainOp",
    "BatchNormTrainGradOp",
    "batch_norm_train",
    "CTCForwardOp",
    "CTCForwardGradOp",
    "Conv2dOp",
    "Conv2dGradFiltersOp",
    "Conv2dGradInputOp",
    "GRUSequenceOp",
    "GRUSequenceGradOp",
    "IndexBoundsCheck",
    "LSTMSequenceOp",
    "LSTMSequenceGradOp",
    "MaxPoolGatherOp",
    "PoolOp",
    "PoolGradOp",
    "SumOver",
    "gru_sequence",
    "lstm_sequence",
    "assert_static_shapes",
    "check_grad",
    "check_infer_shape",
    "check_values",
    "compile_strict",
]

# The shape graph is rewritten (fast_run) but run by the Python linker: no compilation.
SHAPE_MODE = Mode(linker="py", optimizer="fast_run")


def compile_strict(inputs, outputs, backend, **kwargs):
    """``dandelion.function`` on ``backend`` with Numba's object-mode fallback as an error.

    The suite's warning filters already do this; the harness does not rely on them, so
    an Op whose Numba kernel silently falls back to Python fails wherever it is checked.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Numba will use object mode", category=UserWarning)
        return compile_fn(inputs, outputs, backend, **kwargs)


def check_values(inputs, outputs, values, expected, backend, rtol=1e-4, atol=1e-4, err_msg=""):
    """Compile ``outputs`` once on ``backend``, run it on ``values``, compare with ``expected``.

    Parameters
    ----------
    inputs, outputs : lists of variables
    values : list of arrays, one per input
    expected : list of arrays, one per output (an independent reference, never the Op)
    backend : 'c', 'numba' or 'jax'
    rtol, atol : float, or one per output

    Returns
    -------
    the list of computed outputs, for checks of their own
    """
    results = compile_strict(inputs, outputs, backend)(*values)
    results = results if isinstance(results, (list, tuple)) else [results]
    assert len(results) == len(expected)
    rtols, atols = _per_output(rtol, len(outputs)), _per_output(atol, len(outputs))
    for index, (output, got, want) in enumerate(zip(outputs, results, expected)):
        assert np.asarray(got).dtype == output.dtype, f"output {index}: dtype {np.asarray(got).dtype}, graph says {output.dtype}"
        assert_close(got, want, rtol=rtols[index], atol=atols[index], err_msg=f"{err_msg} output {index}")
    return results


def _per_output(tolerance, count):
    return list(tolerance) if isinstance(tolerance, (list, tuple)) else [tolerance] * count


def check_grad(fn, values, mode=PY_MODE, **kwargs):
    """Finite differences of ``fn`` at float64 copies of ``values``.

    ``mode`` defaults to the Python linker, which runs the Ops' NumPy kernels: the
    gradient graphs' maths is the same on every backend, and ``check_values`` compares
    the backends' kernels with the references.
    """
    verify_grad(fn, values, mode=mode, **kwargs)


def check_infer_shape(inputs, outputs, values, expected_shapes, op_types):
    """The shapes of ``outputs`` come from ``infer_shape`` and equal ``expected_shapes``.

    Compiles ``[o.shape for o in outputs]`` with the shape rewrites and asserts that no
    node of ``op_types`` is left in it, so nothing is computed to know a shape.
    """
    f = pytensor.function(inputs, [o.shape for o in outputs], mode=SHAPE_MODE, on_unused_input="ignore")
    left = {type(node.op) for node in f.maker.fgraph.apply_nodes} & set(op_types)
    assert not left, f"shape graph still computes {sorted(t.__name__ for t in left)}"
    shapes = [tuple(int(n) for n in s) for s in f(*values)]
    assert shapes == [tuple(s) for s in expected_shapes]


def assert_static_shapes(outputs, expected_shapes):
    """Each output's static shape (``type.shape``) equals the expected one."""
    assert [o.type.shape for o in outputs] == [tuple(s) for s in expected_shapes]
