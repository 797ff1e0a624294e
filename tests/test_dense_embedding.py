"""Dense and Embedding against NumPy, every backend; uneven init; build-time errors."""

import numpy as np
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion import initialization as init
from dandelion.module import Dense, Embedding
from tests.helpers import assert_close, compile_fn, ftensor, randn, verify_grad

_compiled = {}


def _dense_fn(backend, lead_shape, input_dim, output_dim, bias):
    """One compiled function per static configuration; weights are passed as inputs."""
    key = (backend, lead_shape, input_dim, output_dim, bias)
    if key not in _compiled:
        dense = Dense(input_dim, output_dim, b=init.Constant(0.0) if bias else None)
        x = ftensor("x", lead_shape + (input_dim,))
        _compiled[key] = (dense, compile_fn([x], dense.forward(x), backend))
    return _compiled[key]


@given(
    lead_shape=st.sampled_from([(3,), (2, 3), (2, 1, 3)]),
    dims=st.sampled_from([(4, 5), (1, 2)]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_dense_matches_numpy_for_any_ndim(backend, lead_shape, dims, bias, seed):
    dense, f = _dense_fn(backend, lead_shape, dims[0], dims[1], bias)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal(dims).astype("float32")
    dense.W.set_value(W)
    data = rng.standard_normal(lead_shape + (dims[0],)).astype("float32")
    expected = np.tensordot(data, W, axes=([-1], [0]))
    if bias:
        b = rng.standard_normal(dims[1]).astype("float32")
        dense.b.set_value(b)
        expected = expected + b
    out = f(data)
    assert out.dtype == np.float32 and out.shape == lead_shape + (dims[1],)
    assert_close(out, expected)


def test_dense_parameters_and_uneven_init():
    dense = Dense([3, 5], 4, name="d")
    assert [v.name for v in dense.params] == ["W@Dense|d", "b@Dense|d"]
    assert dense.W.get_value().shape == (8, 4) and dense.b.get_value().shape == (4,)
    np.random.seed(11)
    uneven = Dense([3, 5], 4, W=init.Constant(1.0)).W.get_value()
    np.testing.assert_array_equal(uneven, np.full((8, 4), 0.5))  # each part divided by 2 parts
    np.random.seed(11)
    even = Dense(8, 4, W=init.Constant(1.0)).W.get_value()
    np.testing.assert_array_equal(even, np.ones((8, 4)))
    assert Dense(2, 2, b=None).params[-1].name.startswith("W@")


def test_dense_gradient_matches_finite_differences():
    dense = Dense(3, 2)
    W = dense.W.get_value().astype("float64")
    b = np.random.randn(2)

    def graph(x, W_, b_):
        return pt.tanh(x @ W_ + b_)

    verify_grad(graph, [np.random.randn(4, 3), W, b])
    x = pt.dmatrix("x")
    dense64 = Dense(3, 2, W=W, b=b)
    assert dense64.forward(x).dtype == "float64"


def test_dense_gradients_on_sequences_match_numpy(backend):
    """(B, T, D) inputs, static and free leading axes: one product over B * T rows, same gradients."""
    rng = np.random.default_rng(3)
    data = rng.standard_normal((2, 3, 4)).astype("float32")
    upstream = rng.standard_normal((2, 3, 5)).astype("float32")
    for shape in ((2, 3, 4), (None, None, 4)):
        dense = Dense(4, 5, b=init.Constant(0.5))
        x = ftensor("x", shape)
        y = dense.forward(x)
        assert y.type.shape == shape[:-1] + (5,)
        g = pt.tensor("g", shape=y.type.shape, dtype="float32")
        W, b = dense.params
        f = compile_fn([x, g], [y, *pt.grad((y * g).sum(), [x, W, b])], backend)
        out, dx, dW, db = f(data, upstream)
        W_value = dense.W.get_value()
        assert_close(out, data @ W_value + 0.5)
        assert_close(dx, upstream @ W_value.T)
        assert_close(dW, data.reshape(-1, 4).T @ upstream.reshape(-1, 5))
        assert_close(db, upstream.sum(axis=(0, 1)))


def test_dense_rejects_wrong_feature_size_at_build_time():
    dense = Dense(4, 2)
    with pytest.raises(ValueError, match=r"Dense: input axis -1 \(input_dims\) must be 4, got 5"):
        dense.forward(ftensor("x", (2, 5)))
    with pytest.raises(ValueError, match="Dense: input must have ndim >= 1"):
        dense.forward(pt.fscalar())
    with pytest.raises(ValueError, match=r"Dense: input_dims must be a positive int or a list of positive ints, got \[3, 0\]"):
        Dense([3, 0], 2)


def test_embedding_looks_up_rows(backend):
    table = randn(7, 3)
    embedding = Embedding(7, 3, W=table, name="emb")
    assert embedding.W.name == "W@Embedding|emb"
    index = pt.tensor("i", shape=(2, 4), dtype="int32")
    f = compile_fn([index], embedding.forward(index), backend)
    idx = np.random.randint(0, 7, size=(2, 4)).astype("int32")
    out = f(idx)
    assert out.shape == (2, 4, 3)
    assert_close(out, table[idx])
    with pytest.raises(TypeError, match="Embedding: index_input must be an integer tensor, got dtype float32"):
        embedding.forward(ftensor("x", (2,)))
    with pytest.raises(ValueError, match=r"expected shape \(7, 3\), got \(3, 3\)"):
        Embedding(7, 3, W=randn(3, 3))
