"""TransformerEncoderLayer and positional embeddings against NumPy, on every backend."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from dandelion.functional import sinusoidal_position_encoding
from dandelion.module import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEmbedding,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from tests import attention_reference as ref
from tests.helpers import PY_MODE, assert_close, compile_fn, verify_grad

SHAPE = (2, 5, 8)
_compiled = {}


def _layer_weights(layer):
    mha = layer.self_attention
    weights = {n: (getattr(mha, n).W.get_value(), getattr(mha, n).b.get_value()) for n in ("q_proj", "k_proj", "v_proj", "out_proj")}
    for name in ("linear1", "linear2"):
        weights[name] = (getattr(layer, name).W.get_value(), getattr(layer, name).b.get_value())
    for name in ("norm1", "norm2"):
        weights[name] = (getattr(layer, name).gamma.get_value(), getattr(layer, name).beta.get_value())
    return weights


def sinusoid_reference(length, dim):
    table = np.zeros((length, dim))
    for t in range(length):
        for i in range(dim):
            angle = t / 10000 ** (2 * (i // 2) / dim)
            table[t, i] = np.sin(angle) if i % 2 == 0 else np.cos(angle)
    return table


def _build(backend):
    """Post-norm ReLU and pre-norm GELU layers, and both positional embeddings, in one
    function (C compiles a layer's graph for minutes on a loaded machine)."""
    if backend not in _compiled:
        rng = np.random.default_rng(0)
        post = TransformerEncoderLayer(8, 2, ff_dim=12, dropout_p=0.3, activation="relu", seed=1)  # predict only here
        pre = TransformerEncoderLayer(8, 4, ff_dim=6, dropout_p=0.0, activation="gelu", norm_first=True)
        learned = LearnedPositionalEmbedding(7, 8)
        for module in (post, pre):
            for p in module.collect_params():
                p.set_value((p.get_value() + rng.normal(scale=0.3, size=p.get_value().shape)).astype("float32"))
        x = pt.tensor("x", shape=SHAPE, dtype="float32")
        padding = pt.tensor("padding", shape=SHAPE[:2], dtype="float32")
        outputs = [
            post.predict(x, key_padding_mask=padding), pre.forward(x, causal=True),
            SinusoidalPositionalEmbedding(8).forward(x), learned.forward(x),
        ]
        fn = compile_fn([x, padding], outputs, backend)
        _compiled[backend] = (fn, post, pre, learned)
    return _compiled[backend]


def test_encoder_layers_and_positions_match_numpy(backend):
    fn, post, pre, learned = _build(backend)
    rng = np.random.default_rng(5)
    x = rng.normal(size=SHAPE).astype("float32")
    padding = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "float32")
    post_predicted, pre_trained, sinusoid, learned_out = fn(x, padding)
    keep = padding[:, None, None, :] != 0
    expected_post = ref.encoder_layer(x.astype("float64"), _layer_weights(post), 2, "relu", False, keep)
    assert_close(post_predicted, expected_post, rtol=1e-4, atol=1e-4)
    causal = np.tril(np.ones((5, 5), bool))
    expected_pre = ref.encoder_layer(x.astype("float64"), _layer_weights(pre), 4, "gelu", True, causal)
    assert_close(pre_trained, expected_pre, rtol=1e-4, atol=1e-4)
    assert_close(sinusoid, x + sinusoid_reference(5, 8)[None], rtol=1e-5, atol=1e-5)
    assert_close(learned_out, x + learned.W.get_value()[:5][None])


def test_encoder_layer_dropout_only_in_forward():
    # One backend: this checks where the layer applies dropout; the Dropout module's
    # masks are checked on every backend in tests/test_dropout.py.
    layer = TransformerEncoderLayer(8, 2, ff_dim=12, dropout_p=0.3, seed=1)
    plain = TransformerEncoderLayer(8, 2, ff_dim=12, dropout_p=0.0)
    x = pt.tensor("x", shape=SHAPE, dtype="float32")
    fn = compile_fn(
        [x], [layer.forward(x), layer.predict(x), plain.forward(x), plain.predict(x)], "jax", updates=layer.collect_self_updates()
    )
    data = np.random.default_rng(0).normal(size=SHAPE).astype("float32")
    trained, predicted, plain_trained, plain_predicted = fn(data)
    assert np.isfinite(trained).all() and not np.allclose(trained, predicted)
    assert not np.allclose(fn(data)[0], trained)  # new masks on every call
    assert_close(plain_trained, plain_predicted)


def test_encoder_layer_gradient_matches_finite_differences():
    layer = TransformerEncoderLayer(4, 2, ff_dim=6, dropout_p=0.0, activation="gelu")
    mask = np.array([[1, 1, 0]], "float64")
    verify_grad(lambda x: layer.forward(x, key_padding_mask=mask), [np.random.default_rng(0).normal(size=(1, 3, 4))])


def test_symbolic_length_sinusoid_matches_the_constant_one():
    length = pt.iscalar("length")
    # JAX needs a constant length for arange; PY_MODE runs the graph without compiling
    out = pytensor.function([length], sinusoidal_position_encoding(length, 7), mode=PY_MODE)(6)
    assert_close(out, sinusoid_reference(6, 7), rtol=1e-5, atol=1e-5)
    assert_close(sinusoidal_position_encoding(6, 7).data, sinusoid_reference(6, 7), rtol=1e-5, atol=1e-6)


def test_bad_encoder_and_position_arguments_are_named():
    with pytest.raises(ValueError, match="MultiHeadAttention: num_heads must divide model_dim, got model_dim=10, num_heads=4"):
        TransformerEncoderLayer(10, 4)
    with pytest.raises(ValueError, match=r"activation must be one of \('relu', 'gelu', 'gelu_tanh'\) or a callable, got 'swish'"):
        TransformerEncoderLayer(8, 2, activation="swish")
    x = pt.tensor("x", shape=(2, 9, 8), dtype="float32")
    with pytest.raises(ValueError, match="LearnedPositionalEmbedding: input length .* must be <= max_length 7, got 9"):
        LearnedPositionalEmbedding(7, 8).forward(x)
    with pytest.raises(ValueError, match=r"SinusoidalPositionalEmbedding: input axis 2 \(dim\) must be 6, got 8"):
        SinusoidalPositionalEmbedding(6).forward(x)


def test_encoder_stack_applies_its_layers_in_order_then_the_final_norm():
    # One backend: the stack composes layers whose numerics are checked on every backend above.
    encoder = TransformerEncoder(2, 8, 2, ff_dim=6, dropout_p=0.2, activation="gelu", norm_first=True, seed=4)
    assert [key for key, _ in encoder.named_modules()][:3] == ["", "layers", "layers.0"]
    assert len(encoder.collect_params()) == 2 * 16 + 2
    x = pt.tensor("x", shape=SHAPE, dtype="float32")
    padding = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], "float32")
    data = np.random.default_rng(6).normal(size=SHAPE).astype("float32")
    out = compile_fn([x], encoder.predict(x, key_padding_mask=padding), "jax")(data)
    expected = data.astype("float64")
    keep = padding[:, None, None, :] != 0
    for layer in encoder.layers:
        expected = ref.encoder_layer(expected, _layer_weights(layer), 2, "gelu", True, keep)
    expected = ref.layer_norm(expected, encoder.norm.gamma.get_value(), encoder.norm.beta.get_value())
    assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert TransformerEncoder(1, 8, 2).norm is None  # post-norm layers end normalised
