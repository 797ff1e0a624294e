"""``dandelion.ops.geometry``: the conv and pool output lengths against brute-force window
counts, and proof that the symbolic, Numba and C uses all run that one definition."""

from __future__ import annotations

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from hypothesis import given
from hypothesis import strategies as st

from dandelion.ops import conv as conv_ops
from dandelion.ops import geometry
from dandelion.ops import pool as pool_ops
from dandelion.ops.c import conv as conv_c
from dandelion.ops.c import pool as pool_c
from dandelion.ops.c.expr import CExpr
from dandelion.ops.numba import conv as conv_numba
from dandelion.ops.numba import pool as pool_numba
from tests.helpers import PY_MODE


def brute_conv_windows(length, kernel, stride, pad, dilation):
    """Count the placements of a dilated kernel, stepping by ``stride``, inside the padded input."""
    padded, span = length + 2 * pad, (kernel - 1) * dilation + 1
    count = 0
    while count * stride + span <= padded:
        count += 1
    return count


def brute_pool_windows(length, ws, stride, pad, ignore_border):
    """Theano's windows: whole ones inside the padded input (``ignore_border``); otherwise every
    window that starts inside the input, up to the first one that reaches its end."""
    padded = length + 2 * pad
    count = 0
    if ignore_border:
        while count * stride + ws <= padded:
            count += 1
        return count
    while count * stride < padded and (count == 0 or (count - 1) * stride + ws < padded):
        count += 1
    return count


conv_args = st.tuples(
    st.integers(0, 30), st.integers(1, 6), st.integers(1, 4), st.integers(0, 4), st.integers(1, 3)
)


@st.composite
def pool_args(draw):
    ws = draw(st.integers(1, 5))
    ignore_border = draw(st.booleans())
    pad = draw(st.integers(0, ws - 1)) if ignore_border else 0
    return draw(st.integers(1, 30)), ws, draw(st.integers(1, 6)), pad, ignore_border


@given(conv_args)
def test_conv_output_length_counts_the_windows(args):
    # below one window the formula is not a count (it may be negative): callers reject < 1
    assert max(geometry.conv_output_length(*args), 0) == brute_conv_windows(*args)


@given(pool_args())
def test_pool_output_length_counts_the_windows(args):
    assert geometry.pool_output_length(*args) == brute_pool_windows(*args)


def test_one_definition_behind_every_use():
    """The Ops, the jitted Numba helpers and the C generators hold the geometry functions themselves."""
    assert conv_ops.conv_output_length is geometry.conv_output_length
    assert pool_ops.pool_output_length is geometry.pool_output_length
    assert conv_numba.out_size.py_func is geometry.conv_output_length
    assert pool_numba.pooled_length.py_func is geometry.pool_output_length
    assert conv_c.conv_output_length is geometry.conv_output_length
    assert pool_c.pool_output_length is geometry.pool_output_length


# The kernels' jitted helpers have no CPython wrapper (PyTensor's numba_njit); called
# from an njit function, as the kernels call them.
@numba.njit
def numba_conv_length(n, k, s, p, d):
    return conv_numba.out_size(n, k, s, p, d)


@numba.njit
def numba_pool_length(n, ws, s, p, ignore_border):
    return pool_numba.pooled_length(n, ws, s, p, ignore_border)


@given(conv_args)
def test_numba_conv_length_agrees(args):
    assert numba_conv_length(*args) == geometry.conv_output_length(*args)


@given(pool_args())
def test_numba_pool_length_agrees(args):
    assert numba_pool_length(*args) == brute_pool_windows(*args)


def test_symbolic_lengths_agree():
    """``infer_shape``'s symbolic use on integer vectors of lengths, one graph per pool geometry."""
    n = pt.lvector("n")
    lengths = np.arange(0, 40)
    conv = pytensor.function([n], conv_ops.Conv2dOp(stride=(3, 3), pad=(2, 2), dilation=(2, 2)).output_hw([n], [3])[0], mode=PY_MODE)
    np.testing.assert_array_equal(conv(lengths), [geometry.conv_output_length(v, 3, 3, 2, 2) for v in lengths])
    for ws, stride, pad, ignore_border in ((3, 1, 0, False), (2, 3, 0, False), (3, 2, 1, True), (4, 4, 0, True)):
        op = pool_ops.PoolOp(1, (ws,), (stride,), (pad,), ignore_border)
        pooled = pytensor.function([n], op.pooled_spatial([n])[0], mode=PY_MODE)
        np.testing.assert_array_equal(pooled(lengths[1:]), [brute_pool_windows(v, ws, stride, pad, ignore_border) for v in lengths[1:]])


def _eval_c(expr, **values):
    """A generated C expression evaluated with C's semantics emulated in Python (truncating ``/``)."""

    def floordiv(a, b):
        q = int(a / b)
        return q - 1 if a % b and (a < 0) != (b < 0) else q

    code = str(expr).replace("(npy_intp)", "")
    return eval(code, {"dl_floordiv": floordiv, "dl_abs": abs}, values)


@given(pool_args())
def test_generated_c_lengths_agree(args):
    length, ws, stride, pad, ignore_border = args
    expr = geometry.pool_output_length(CExpr("n"), ws, stride, pad, ignore_border)
    assert _eval_c(expr, n=length) == brute_pool_windows(*args)
    conv = geometry.conv_output_length(CExpr("n"), CExpr("k"), CExpr("s"), CExpr("p"), CExpr("d"))
    assert _eval_c(conv, n=length, k=ws, s=stride, p=pad, d=1) == geometry.conv_output_length(length, ws, stride, pad, 1)
