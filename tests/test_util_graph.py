"""Graph helpers of dandelion.util against NumPy."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion import util
from dandelion.activation import relu, tanh
from dandelion.module import Dense, Dropout, Sequential
from tests.helpers import assert_close, compile_fn, ftensor, randn


def test_one_hot_batch_gather_and_unroll_scan(backend):
    labels = pt.tensor("labels", shape=(2, 3), dtype="int32")
    table = ftensor("table", (4, 5, 2))
    index = pt.tensor("index", shape=(4,), dtype="int64")
    seq = ftensor("seq", (5, 3))
    h0 = ftensor("h0", (3,))
    unrolled = util.unroll_scan(lambda s, h: pt.tanh(s + h), [seq], [h0], [], n_steps=5)
    backwards = util.unroll_scan(lambda s, h: s + h, [seq], [h0], [], n_steps=5, go_backwards=True)
    f = compile_fn(
        [labels, table, index, seq, h0],
        [util.one_hot(labels, 6), util.batch_gather(table, index), unrolled, backwards],
        backend,
    )
    lab = np.array([[0, 5, 2], [1, 1, 3]], "int32")
    tab, idx = randn(4, 5, 2), np.array([4, 0, 2, 2])
    sq, h = randn(5, 3), randn(3)
    hot, gathered, unrolled_out, backward_out = f(lab, tab, idx, sq, h)
    assert hot.dtype == np.float32
    np.testing.assert_array_equal(hot, np.eye(6)[lab])
    assert_close(gathered, np.stack([tab[b, idx[b]] for b in range(4)]))
    state, expected = h, []
    for t in range(5):
        state = np.tanh(sq[t] + state)
        expected.append(state)
    assert_close(unrolled_out, np.stack(expected))
    assert_close(backward_out, np.stack([h + sq[::-1][: t + 1].sum(0) for t in range(5)]))


def test_one_hot_infers_width_on_dynamic_backends():
    x = pt.ivector("x")
    out = compile_fn([x], util.one_hot(x), "numba")(np.array([2, 0], "int32"))
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0]])


@given(value=st.one_of(st.integers(1, 5), st.tuples(st.integers(1, 5), st.integers(1, 5))))
def test_as_tuple(value):
    result = util.as_tuple(value, 2, int)
    assert result == (value, value) if isinstance(value, int) else result == value


def test_as_tuple_errors():
    with pytest.raises(ValueError, match="iterable of length 3"):
        util.as_tuple((1, 2), 3)
    with pytest.raises(TypeError, match="elements of type"):
        util.as_tuple((1, 2.5), 2, int)


def test_create_param_and_collect_shared_vars():
    broadcastable = util.create_param(np.ones((1, 4, 1, 1)), (1, 4, 1, 1), name="g", dim_broadcast=(True, False, True, True))
    assert broadcastable.type.shape == (1, 4, 1, 1) and broadcastable.name == "g"
    with pytest.raises(ValueError, match="broadcastable axes must have length 1"):
        util.create_param(np.ones((2, 4)), dim_broadcast=(True, False))
    integer = util.create_param(np.arange(3))
    assert integer.dtype == "int64"
    with pytest.raises(TypeError, match="expected an initializer, ndarray, shared variable or expression, got str"):
        util.create_param("zeros", (2,))
    with pytest.raises(ValueError, match="shape must be positive"):
        util.create_param(np.ones(2), (0,))
    a = pytensor.shared(np.ones(2), name="a")
    b = pytensor.shared(np.ones(2), name="b")
    x = pt.dvector("x")
    assert util.collect_shared_vars([a * x, b + a]) == [a, b]
    assert util.collect_shared_vars(a + 1) == [a]


def test_compute_norms():
    array = np.random.randn(3, 4, 5)
    np.testing.assert_allclose(util.compute_norms(array), np.sqrt((array**2).sum(axis=(1, 2))))
    np.testing.assert_allclose(util.compute_norms(array, norm_axes=(0,)), np.sqrt((array**2).sum(axis=0)))
    np.testing.assert_allclose(util.compute_norms(np.array([3.0, 4.0])), 5.0)


def test_floatx_casts():
    assert util.floatX([1, 2]).dtype == np.float32


def test_sequential_forward_and_predict_on_backend(backend):
    model = Sequential([Dense(3, 4), Dropout(seed=1), Dense(4, 2)], activation=[relu, lambda v: v, tanh])
    x = ftensor("x", (5, 3))
    data = randn(5, 3)
    predict = compile_fn([x], model.predict(x), backend)(data)
    W0, b0, W1, b1 = (v.get_value() for v in model.collect_params())
    assert_close(predict, np.tanh(np.maximum(data @ W0 + b0, 0) @ W1 + b1))
    train = compile_fn([x], model.forward(x), backend)
    assert not np.array_equal(train(data), train(data))  # dropout active in forward
