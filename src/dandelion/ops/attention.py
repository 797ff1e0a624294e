"""The fused attention Op family: ``softmax(q k^T * scale) v`` with causal masking and dropout, and its gradient.

``AttentionOp`` takes q (N, Lq, E), k (N, Lk, E), v (N, Lk, Ev) and, with
``has_dropout``, a dropout multiplier (N, Lq, Lk) (the dropout mask over the keep
probability, drawn by the graph); it returns the output (N, Lq, Ev) and the attention
weights (N, Lq, Lk) before dropout, which ``AttentionGradOp`` reuses for dq, dk, dv. N is
the flattened batch (batch * heads). The graph of ``functional.attention`` ran a dozen
nodes per attention forward and more backward (two batched products, a transpose, the
masked softmax's max / exp / sum / divide and their gradients); these run them per
(batch * head) slice with the scores in cache. Kernels at mirrored paths: NumPy in
``attention_numpy`` (``perform``), C in ``c/attention.py``, Numba in
``numba/attention.py``, JAX in ``jax/attention.py``. Users call
``functional.scaled_dot_product_attention``, which picks this family where it applies.
"""

from __future__ import annotations

import numbers

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply

from dandelion._compat import ShapeInferringOp
from dandelion.ops import attention_numpy
from dandelion.ops.c import attention as attention_c


def _check_3d(where, named):
    """``named`` [(argument, variable)] as tensors of ndim 3 and one float dtype, with clear errors."""
    tensors = [pt.as_tensor_variable(x) for _, x in named]
    for (argument, _), t in zip(named, tensors):
        if t.ndim != 3:
            raise ValueError(f"{where}: {argument} must have ndim 3 (N, L, E), got ndim {t.ndim}")
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1 or not tensors[0].dtype.startswith("float"):
        got = ", ".join(f"{argument} {t.dtype}" for (argument, _), t in zip(named, tensors))
        raise TypeError(f"{where}: inputs must share one float dtype, got {got}")
    return tensors


def _check_lengths(where, pairs):
    """Fail on static lengths that disagree: ``pairs`` [(what, a, b)]."""
    for what, a, b in pairs:
        if a is not None and b is not None and a != b:
            raise ValueError(f"{where}: {what} must agree, got {a} and {b}")


class AttentionParams(ShapeInferringOp):
    """Base of the attention Ops: their props and checks."""

    __props__ = ("scale", "causal", "has_dropout")

    def __init__(self, scale, causal=False, has_dropout=False):
        where = type(self).__name__
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not np.isfinite(scale):
            raise TypeError(f"{where}: scale must be a finite real number, got {scale!r}")
        self.scale = float(scale)
        self.causal = bool(causal)
        self.has_dropout = bool(has_dropout)

    def check_qkv(self, where, q, k, v, multiplier=None):
        named = [("q", q), ("k", k), ("v", v)] + ([("dropout multiplier", multiplier)] if self.has_dropout else [])
        if self.has_dropout == (multiplier is None):
            raise ValueError(f"{where}: has_dropout={self.has_dropout} but a dropout multiplier was {'not ' if multiplier is None else ''}given")
        tensors = _check_3d(where, named)
        q, k, v = tensors[:3]
        pairs = [("q's, k's and v's batch lengths", q.type.shape[0], k.type.shape[0]),
                 ("k's and v's batch lengths", k.type.shape[0], v.type.shape[0]),
                 ("q's and k's embedding lengths", q.type.shape[2], k.type.shape[2]),
                 ("k's and v's key lengths", k.type.shape[1], v.type.shape[1])]
        if self.has_dropout:
            expected = (q.type.shape[0], q.type.shape[1], k.type.shape[1])
            pairs += [(f"the dropout multiplier's axis {d} and (N, Lq, Lk)", m, e) for d, (m, e) in enumerate(zip(tensors[3].type.shape, expected))]
        _check_lengths(where, pairs)
        return tensors

    def related(self):
        """``(AttentionOp, AttentionGradOp)`` with these props."""
        props = self._props_dict()
        return AttentionOp(**props), AttentionGradOp(**props)


class AttentionOp(AttentionParams, attention_c.AttentionCOp):
    """q (N, Lq, E), k (N, Lk, E), v (N, Lk, Ev)[, multiplier (N, Lq, Lk)] -> out (N, Lq, Ev), weights (N, Lq, Lk).

    ``weights = softmax(scale q k^T)`` over keys (``causal``: query i sees keys j <= i),
    ``out = (weights * multiplier) v``. Rows with nothing kept give zeros.
    """

    def make_node(self, q, k, v, multiplier=None):
        tensors = self.check_qkv("attention", q, k, v, multiplier)
        q, k, v = tensors[:3]
        out = pt.tensor(dtype=q.dtype, shape=(q.type.shape[0], q.type.shape[1], v.type.shape[2]))
        weights = pt.tensor(dtype=q.dtype, shape=(q.type.shape[0], q.type.shape[1], k.type.shape[1]))
        return Apply(self, tensors, [out, weights])

    def perform(self, node, inputs, output_storage):
        q, k, v, *rest = inputs
        out, weights = attention_numpy.attention_forward(q, k, v, self.scale, self.causal, rest[0] if rest else None)
        output_storage[0][0] = np.asarray(out, dtype=node.outputs[0].dtype)
        output_storage[1][0] = np.asarray(weights, dtype=node.outputs[1].dtype)

    def c_code(self, node, name, inputs, outputs, sub):
        return attention_c.forward_c_code(self, "attention", node, inputs, outputs, sub)

    def output_shapes(self, node, input_shapes):
        q, k, v = input_shapes[:3]
        return [(q[0], q[1], v[2]), (q[0], q[1], k[1])]

    def pullback(self, inputs, outputs, cotangents):
        q, k, v, *rest = inputs
        multiplier = rest[0] if rest else None
        out, weights = outputs
        d_out, d_weights = cotangents
        if isinstance(d_out.type, DisconnectedType):
            d_out = pt.zeros_like(out)
        _, grad = self.related()
        dq, dk, dv = grad(q, k, v, weights, *rest, d_out)
        if not isinstance(d_weights.type, DisconnectedType):
            # a use of the weights themselves: the softmax's Jacobian, dS = scale P (dP - rowsum(dP P))
            d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True)) * np.asarray(self.scale, q.dtype)
            dq = dq + pt.matmul(d_scores, k)
            dk = dk + pt.matmul(d_scores.swapaxes(-1, -2), q)
        grads = [dq, dk, dv]
        if multiplier is not None:
            grads.append(weights * pt.matmul(d_out, v.swapaxes(-1, -2)))
        return grads


class AttentionGradOp(AttentionParams, attention_c.AttentionCOp):
    """q, k, v, weights (``AttentionOp``'s), [multiplier], output_grad (N, Lq, Ev) -> dq, dk, dv.

    Second derivatives are not implemented (PyTensor raises on a gradient through it).
    """

    def make_node(self, q, k, v, weights, *rest):
        multiplier, d_out = (rest[0], rest[1]) if len(rest) == 2 else (None, rest[0] if rest else None)
        if d_out is None or len(rest) > 2:
            raise TypeError(f"attention_grad: takes q, k, v, weights, [multiplier,] output_grad, got {4 + len(rest)} inputs")
        q, k, v, *mult = self.check_qkv("attention_grad", q, k, v, multiplier)
        weights, d_out = _check_3d("attention_grad", [("weights", weights), ("output_grad", d_out)])
        for d, (a, b) in enumerate(zip(weights.type.shape, (q.type.shape[0], q.type.shape[1], k.type.shape[1]))):
            _check_lengths("attention_grad", [(f"weights' axis {d} and (N, Lq, Lk)", a, b)])
        for d, (a, b) in enumerate(zip(d_out.type.shape, (q.type.shape[0], q.type.shape[1], v.type.shape[2]))):
            _check_lengths("attention_grad", [(f"output_grad's axis {d} and (N, Lq, Ev)", a, b)])
        if weights.dtype != q.dtype or d_out.dtype != q.dtype:
            raise TypeError(f"attention_grad: weights and output_grad must have q's dtype {q.dtype}, got {weights.dtype} and {d_out.dtype}")
        outputs = [pt.tensor(dtype=q.dtype, shape=x.type.shape) for x in (q, k, v)]
        return Apply(self, [q, k, v, weights, *mult, d_out], outputs)

    def perform(self, node, inputs, output_storage):
        q, k, v, weights, *rest = inputs
        multiplier = rest[0] if len(rest) == 2 else None
        grads = attention_numpy.attention_backward(q, k, v, weights, rest[-1], self.scale, multiplier)
        for storage, g, var in zip(output_storage, grads, node.outputs):
            storage[0] = np.asarray(g, dtype=var.dtype)

    def c_code(self, node, name, inputs, outputs, sub):
        return attention_c.backward_c_code(self, "attention_grad", node, inputs, outputs, sub)

    def output_shapes(self, node, input_shapes):
        return list(input_shapes[:3])


def attention(q, k, v, scale, causal=False, multiplier=None):
    """``(out (N, Lq, Ev), weights (N, Lq, Lk))`` of the fused Op; see ``AttentionOp``."""
    op = AttentionOp(scale, causal, multiplier is not None)
    return op(q, k, v) if multiplier is None else op(q, k, v, multiplier)
