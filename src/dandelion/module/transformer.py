"""``TransformerEncoderLayer``: self-attention and a feed-forward block, each with a residual."""

from __future__ import annotations

import numbers

from dandelion.activation import gelu, gelu_tanh, relu
from dandelion.module.attention import MultiHeadAttention
from dandelion.module.base import Module
from dandelion.module.dense import Dense
from dandelion.module.dropout import Dropout
from dandelion.module.layernorm import LayerNorm

ACTIVATIONS = {"relu": relu, "gelu": gelu, "gelu_tanh": gelu_tanh}


class TransformerEncoderLayer(Module):
    """One encoder layer of Vaswani et al. (2017) on batch-first input (B, T, model_dim).

    Post-norm (the paper's, ``norm_first=False``)::

        x = norm1(x + dropout(attention(x)));  x = norm2(x + dropout(ff(x)))

    Pre-norm (``norm_first=True``, which trains deep stacks without warm-up)::

        x = x + dropout(attention(norm1(x)));  x = x + dropout(ff(norm2(x)))

    with ``ff(x) = linear2(dropout(activation(linear1(x))))``.

    Parameters
    ----------
    model_dim : int
    num_heads : int
        Must divide ``model_dim``.
    ff_dim : int, optional
        Hidden width of the feed-forward block (default ``4 * model_dim``).
    dropout_p : float
        Dropout on the attention weights, the feed-forward hidden layer and both
        residual branches, in ``forward`` only.
    activation : {'relu', 'gelu', 'gelu_tanh'} or callable
    norm_first : bool
    eps : float
        The layer norms' epsilon.
    seed : int, optional
        Seed of the dropout streams.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import TransformerEncoderLayer
    >>> layer = TransformerEncoderLayer(model_dim=16, num_heads=4, activation="gelu")
    >>> layer.forward(pt.tensor("x", shape=(2, 7, 16))).type.shape
    (2, 7, 16)
    """

    def __init__(
        self, model_dim, num_heads, ff_dim=None, dropout_p=0.1, activation="relu", norm_first=False, eps=1e-5, seed=None, name=None,
    ):
        super().__init__(name=name)
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(f"TransformerEncoderLayer: activation must be one of {tuple(ACTIVATIONS)} or a callable, got {activation!r}")
            activation = ACTIVATIONS[activation]
        elif not callable(activation):
            raise TypeError(f"TransformerEncoderLayer: activation must be a name or a callable, got {type(activation).__name__}")
        ff_dim = 4 * model_dim if ff_dim is None else ff_dim
        if not isinstance(ff_dim, numbers.Integral) or ff_dim < 1:
            raise ValueError(f"TransformerEncoderLayer: ff_dim must be a positive int, got {ff_dim!r}")
        self.model_dim = int(model_dim)
        self.ff_dim = int(ff_dim)
        self.dropout_p = float(dropout_p)
        self.activation = activation
        self.norm_first = bool(norm_first)
        self.self_attention = MultiHeadAttention(model_dim, num_heads, dropout_p=dropout_p, seed=seed)
        self.linear1 = Dense(self.model_dim, self.ff_dim)
        self.linear2 = Dense(self.ff_dim, self.model_dim)
        self.norm1 = LayerNorm(self.model_dim, eps=eps)
        self.norm2 = LayerNorm(self.model_dim, eps=eps)
        if self.dropout_p > 0:
            # one module, three call sites: each forward call is its own mask stream
            self.dropout = Dropout(seed=None if seed is None else seed + 1)

    def _drop(self, x, train):
        return self.dropout.forward(x, p=self.dropout_p) if train and self.dropout_p > 0 else x

    def _attention_block(self, x, mask, key_padding_mask, causal, train):
        attend = self.self_attention.forward if train else self.self_attention.predict
        return self._drop(attend(x, mask=mask, key_padding_mask=key_padding_mask, causal=causal), train)

    def _feed_forward_block(self, x, train):
        hidden = self._drop(self.activation(self.linear1.forward(x)), train)
        return self._drop(self.linear2.forward(hidden), train)

    def _run(self, x, mask, key_padding_mask, causal, train):
        if self.norm_first:
            x = x + self._attention_block(self.norm1.forward(x), mask, key_padding_mask, causal, train)
            return x + self._feed_forward_block(self.norm2.forward(x), train)
        x = self.norm1.forward(x + self._attention_block(x, mask, key_padding_mask, causal, train))
        return self.norm2.forward(x + self._feed_forward_block(x, train))

    def forward(self, x, mask=None, key_padding_mask=None, causal=False):
        """x : (B, T, model_dim) -> (B, T, model_dim); masks as for ``MultiHeadAttention``."""
        return self._run(x, mask, key_padding_mask, causal, train=True)

    def predict(self, x, mask=None, key_padding_mask=None, causal=False):
        """``forward`` without dropout."""
        return self._run(x, mask, key_padding_mask, causal, train=False)


class TransformerEncoder(Module):
    """A stack of ``num_layers`` ``TransformerEncoderLayer`` s, optionally a final LayerNorm.

    Parameters
    ----------
    num_layers : int
    model_dim, num_heads, ff_dim, dropout_p, activation, norm_first, eps
        Passed to every layer.
    final_norm : bool, optional
        A LayerNorm after the last layer; default ``norm_first`` (pre-norm stacks leave
        their residual stream unnormalised otherwise).
    seed : int, optional
        Layer i's dropout streams are seeded from ``seed + 2 i``.

    Sub-modules: ``layers`` (a list: ``layers.0``, ``layers.1``, ...) and ``norm``.

    ``forward(x, mask=None, key_padding_mask=None, causal=False)``: (B, T, model_dim) ->
    (B, T, model_dim); the masks go to every layer.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import TransformerEncoder
    >>> encoder = TransformerEncoder(2, model_dim=16, num_heads=4, norm_first=True)
    >>> encoder.forward(pt.tensor("x", shape=(2, 7, 16))).type.shape
    (2, 7, 16)
    """

    def __init__(
        self, num_layers, model_dim, num_heads, ff_dim=None, dropout_p=0.1, activation="relu", norm_first=False, eps=1e-5,
        final_norm=None, seed=None, name=None,
    ):
        super().__init__(name=name)
        if not isinstance(num_layers, numbers.Integral) or num_layers < 1:
            raise ValueError(f"TransformerEncoder: num_layers must be a positive int, got {num_layers!r}")
        self.layers = [
            TransformerEncoderLayer(
                model_dim, num_heads, ff_dim, dropout_p, activation, norm_first, eps, seed=None if seed is None else seed + 2 * i
            )
            for i in range(num_layers)
        ]
        self.norm = LayerNorm(model_dim, eps=eps) if (norm_first if final_norm is None else final_norm) else None

    def _run(self, x, train, **masks):
        for layer in self.layers:
            x = layer.forward(x, **masks) if train else layer.predict(x, **masks)
        if self.norm is not None:
            x = self.norm.forward(x)
        return x

    def forward(self, x, mask=None, key_padding_mask=None, causal=False):
        return self._run(x, True, mask=mask, key_padding_mask=key_padding_mask, causal=causal)

    def predict(self, x, mask=None, key_padding_mask=None, causal=False):
        """``forward`` without dropout."""
        return self._run(x, False, mask=mask, key_padding_mask=key_padding_mask, causal=causal)
