"""``MultiHeadAttention``: projections, heads and the scaled dot-product kernel."""

from __future__ import annotations

import numbers

from dandelion import initialization as init
from dandelion.functional.attention import check_key_padding_mask, check_mask, scaled_dot_product_attention
from dandelion.module.base import Module
from dandelion.module.checks import check_axis_length, check_ndim
from dandelion.module.dense import Dense
from dandelion.module.dropout import Dropout
from dandelion.util.graph import shape_of


class MultiHeadAttention(Module):
    """Multi-head attention (Vaswani et al. 2017) on batch-first sequences.

    Queries, keys and values are projected to ``model_dim``, split into ``num_heads``
    heads of ``model_dim // num_heads``, attended with
    ``functional.scaled_dot_product_attention`` and projected back by ``out_proj``.

    Parameters
    ----------
    model_dim : int
        Query input and output dimension; ``num_heads`` must divide it.
    num_heads : int
    key_dim, value_dim : int, optional
        Dimensions of the key and value inputs (default ``model_dim``).
    bias : bool
        Biases in the four projections.
    dropout_p : float
        Dropout on the attention weights in ``forward`` (never in ``predict``).
    seed : int, optional
        Seed of the attention dropout.
    W : initializer of the projection weights

    Sub-modules ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` (``Dense``), and
    ``dropout`` when ``dropout_p > 0``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import MultiHeadAttention
    >>> mha = MultiHeadAttention(model_dim=16, num_heads=4)
    >>> mha.forward(pt.tensor("x", shape=(2, 7, 16)), causal=True).type.shape
    (2, 7, 16)
    """

    def __init__(
        self, model_dim, num_heads, key_dim=None, value_dim=None, bias=True, dropout_p=0.0, seed=None,
        W=init.GlorotUniform(), name=None,
    ):
        super().__init__(name=name)
        for argument, value in (("model_dim", model_dim), ("num_heads", num_heads), ("key_dim", key_dim), ("value_dim", value_dim)):
            if value is not None and (not isinstance(value, numbers.Integral) or value < 1):
                raise ValueError(f"MultiHeadAttention: {argument} must be a positive int, got {value!r}")
        if model_dim % num_heads:
            raise ValueError(
                f"MultiHeadAttention: num_heads must divide model_dim, got model_dim={model_dim}, num_heads={num_heads} "
                f"(remainder {model_dim % num_heads})"
            )
        if not 0 <= dropout_p < 1:
            raise ValueError(f"MultiHeadAttention: dropout_p must be in [0, 1), got {dropout_p!r}")
        self.model_dim = int(model_dim)
        self.num_heads = int(num_heads)
        self.head_dim = self.model_dim // self.num_heads
        self.key_dim = self.model_dim if key_dim is None else int(key_dim)
        self.value_dim = self.model_dim if value_dim is None else int(value_dim)
        self.dropout_p = float(dropout_p)
        b = init.Constant(0.0) if bias else None
        self.q_proj = Dense(self.model_dim, self.model_dim, W=W, b=b)
        self.k_proj = Dense(self.key_dim, self.model_dim, W=W, b=b)
        self.v_proj = Dense(self.value_dim, self.model_dim, W=W, b=b)
        self.out_proj = Dense(self.model_dim, self.model_dim, W=W, b=b)
        if self.dropout_p > 0:
            self.dropout = Dropout(seed=seed)

    def _split(self, x):
        """(B, L, model_dim) -> (B, heads, L, head_dim)."""
        batch, length, _ = shape_of(x)
        return x.reshape((batch, length, self.num_heads, self.head_dim)).dimshuffle(0, 2, 1, 3)

    def _attend(self, query, key, value, mask, key_padding_mask, causal, train):
        where = f"MultiHeadAttention({self.name!r})"
        key = query if key is None else key
        value = key if value is None else value
        for argument, x, dim, meaning in (
            ("query", query, self.model_dim, "model_dim"), ("key", key, self.key_dim, "key_dim"), ("value", value, self.value_dim, "value_dim"),
        ):
            check_ndim(where, argument, x, 3)
            check_axis_length(where, argument, x, 2, dim, meaning)
        q = self._split(self.q_proj.forward(query))
        k = self._split(self.k_proj.forward(key))
        v = self._split(self.v_proj.forward(value))
        target = (query.type.shape[0], self.num_heads, query.type.shape[1], key.type.shape[1])
        if mask is not None:
            mask = check_mask(where, "mask", mask, target)
        if key_padding_mask is not None:
            key_padding_mask = check_key_padding_mask(where, key_padding_mask, target)
        dropout_p = self.dropout_p if train else 0.0
        heads = scaled_dot_product_attention(
            q, k, v, mask=mask, causal=causal, key_padding_mask=key_padding_mask, dropout_p=dropout_p,
            dropout=self.dropout.forward if dropout_p else None,
        )
        batch, length = shape_of(query)[:2]
        merged = heads.dimshuffle(0, 2, 1, 3).reshape((batch, length, self.model_dim))
        return self.out_proj.forward(merged)

    def forward(self, query, key=None, value=None, mask=None, key_padding_mask=None, causal=False):
        """Attend from ``query`` to ``key`` / ``value`` (self-attention when they are None).

        Parameters
        ----------
        query : (B, Lq, model_dim)
        key : (B, Lk, key_dim), optional (default ``query``)
        value : (B, Lk, value_dim), optional (default ``key``)
        mask : broadcastable to (B, num_heads, Lq, Lk), optional
            Boolean (True = may attend) or additive floating point.
        key_padding_mask : (B, Lk), optional
            Nonzero for real keys, zero for padding.
        causal : bool
            Query i attends to keys j <= i only.

        Returns
        -------
        (B, Lq, model_dim)
        """
        return self._attend(query, key, value, mask, key_padding_mask, causal, train=True)

    def predict(self, query, key=None, value=None, mask=None, key_padding_mask=None, causal=False):
        """``forward`` without attention dropout."""
        return self._attend(query, key, value, mask, key_padding_mask, causal, train=False)
