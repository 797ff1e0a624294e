"""Scaled dot-product attention with boolean, additive, causal and key-padding masks."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import zero_grad

from dandelion.ops.attention import attention as attention_op


def _check_qkv(q, k, v):
    q, k, v = (pt.as_tensor_variable(t) for t in (q, k, v))
    for argument, t in (("q", q), ("k", k), ("v", v)):
        if t.ndim < 2:
            raise ValueError(f"scaled_dot_product_attention: {argument} must have ndim >= 2 (..., L, E), got ndim {t.ndim}")
    if not q.ndim == k.ndim == v.ndim:
        raise ValueError(f"scaled_dot_product_attention: q, k and v must have the same ndim, got {q.ndim}, {k.ndim}, {v.ndim}")
    pairs = (("q and k", "embedding", q.type.shape[-1], k.type.shape[-1]), ("k and v", "key", k.type.shape[-2], v.type.shape[-2]))
    for arguments, meaning, a, b in pairs:
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"scaled_dot_product_attention: {arguments} must have the same {meaning} length, got {a} and {b} "
                f"(static shapes q {q.type.shape}, k {k.type.shape}, v {v.type.shape})"
            )
    return q, k, v


def scores_shape(q, k):
    """Static shape of the scores (..., Lq, Lk), batch axes broadcast (None where unknown)."""
    batch = []
    for a, b in zip(q.type.shape[:-2], k.type.shape[:-2]):
        batch.append(b if a == 1 else a if b == 1 or b is None else b)
    return (*batch, q.type.shape[-2], k.type.shape[-2])


def check_mask(where, argument, mask, target):
    """Fail unless ``mask``'s static shape broadcasts to the scores' shape ``target``."""
    mask = pt.as_tensor_variable(mask)
    shape = mask.type.shape
    compatible = mask.ndim <= len(target) and all(
        m is None or m == 1 or t is None or m == t for m, t in zip(shape[::-1], target[::-1])
    )
    if not compatible:
        raise ValueError(
            f"{where}: {argument} must broadcast to the scores' shape "
            f"(batch, heads, query, key) = {target}, got static shape {shape}"
        )
    return mask


def check_key_padding_mask(where, mask, target):
    """Fail unless ``mask`` is (batch, key) for the scores' shape ``target``."""
    mask = pt.as_tensor_variable(mask)
    expected = (target[0], target[-1])
    if mask.ndim != 2 or any(m is not None and t is not None and m != t for m, t in zip(mask.type.shape, expected)):
        raise ValueError(
            f"{where}: key_padding_mask must have shape (batch, key) = {expected}, got static shape {mask.type.shape}"
        )
    return mask


def _key_padding_keep(key_padding_mask, target):
    """(B, Lk) nonzero-where-real mask as booleans broadcastable to (B, ..., Lq, Lk)."""
    mask = check_key_padding_mask("scaled_dot_product_attention", key_padding_mask, target)
    keep = pt.neq(mask, 0)
    return keep.dimshuffle(0, *(["x"] * (len(target) - 2)), 1)


def _causal_keep(q, k):
    """(Lq, Lk) booleans: query i sees keys j <= i (aligned at the first position)."""
    return pt.ge(pt.arange(q.shape[-2])[:, None], pt.arange(k.shape[-2])[None, :])


def masked_softmax(scores, keep=None):
    """Softmax over the last axis where ``keep`` is true; rows with nothing kept give zeros.

    Parameters
    ----------
    scores : (..., N)
    keep : boolean tensor broadcastable to scores, or None

    Returns
    -------
    (..., N): rows sum to one, or to zero where every entry is masked (or -inf).
    """
    scores = pt.as_tensor_variable(scores)
    minus_inf = np.asarray(-np.inf, dtype=scores.dtype)
    if keep is not None:
        scores = pt.switch(keep, scores, minus_inf)
    # the shift guards exp against overflow and cancels (no gradient through it); a row
    # with nothing kept has max -inf, shifted by 0 instead so that exp gives zeros, not NaN
    shift = zero_grad(pt.max(scores, axis=-1, keepdims=True))
    shift = pt.switch(pt.isinf(shift), np.asarray(0, dtype=scores.dtype), shift)
    weights = pt.exp(scores - shift)
    total = pt.sum(weights, axis=-1, keepdims=True)
    return weights / pt.switch(pt.gt(total, 0), total, np.asarray(1, dtype=scores.dtype))


def scaled_dot_product_attention(
    q, k, v, mask=None, causal=False, dropout_p=0.0, scale=None, key_padding_mask=None, dropout=None
):
    """``softmax(q k^T * scale + mask) v`` (Vaswani et al. 2017), numerically stable.

    Parameters
    ----------
    q : (..., Lq, E)
    k : (..., Lk, E)
    v : (..., Lk, Ev)
        The leading axes (typically (B, heads)) broadcast against each other.
    mask : tensor broadcastable to (..., Lq, Lk), optional
        Boolean: True where a query may attend to a key. Floating point: added to the
        scores (``-inf`` masks an entry out).
    causal : bool
        Query i attends only to keys j <= i.
    dropout_p : float
        Probability of dropping an attention weight (training only); needs ``dropout``.
    scale : float, optional
        Defaults to ``1 / sqrt(E)``.
    key_padding_mask : (B, Lk), optional
        Nonzero (or True) for real keys, zero for padding (dandelion's sequence-mask
        convention, 1 = a real step).
    dropout : callable, optional
        ``dropout(weights, p) -> weights``, e.g. a ``Dropout`` module's ``forward``;
        functions hold no random state, so a module that has one supplies it. Where the
        fused kernels (``dandelion.ops.attention``) run, it is applied as the multiplier
        ``dropout(ones, p)``: it must act elementwise and independently of the values
        (a mask times a scale), as ``Dropout.forward`` does.

    Notes
    -----
    Without ``mask`` and ``key_padding_mask``, with a constant scale (a static E or
    ``scale`` given) and equal static batch axes, one fused Op per call
    (``dandelion.ops.attention``) computes the softmax, the products and, in its
    gradient, dq, dk and dv; other calls run as a graph (``graph_attention``).

    Returns
    -------
    (..., Lq, Ev). Queries for which every key is masked give zeros, and no NaN reaches
    the gradient.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.functional import scaled_dot_product_attention
    >>> q = pt.tensor("q", shape=(2, 4, 5, 8))
    >>> kv = pt.tensor("kv", shape=(2, 4, 6, 8))
    >>> scaled_dot_product_attention(q, kv, kv, causal=True).type.shape
    (2, 4, 5, 8)
    """
    q, k, v = _check_qkv(q, k, v)
    target = scores_shape(q, k)
    if dropout_p and dropout is None:
        raise ValueError(
            "scaled_dot_product_attention: dropout_p > 0 needs dropout=, a callable (weights, p) -> weights "
            "such as a Dropout module's forward"
        )
    if mask is None and key_padding_mask is None and _fusable(q, k, v, scale):
        return _fused_attention(q, k, v, causal, dropout_p, scale, dropout, target)
    if scale is None:
        if q.type.shape[-1] is None:
            scale = 1 / pt.sqrt(pt.cast(q.shape[-1], q.dtype))
        else:
            scale = np.asarray(1 / np.sqrt(q.type.shape[-1]), dtype=q.dtype)
    else:
        scale = np.asarray(scale, dtype=q.dtype)
    keep = None
    additive = None
    if mask is not None:
        mask = check_mask("scaled_dot_product_attention", "mask", mask, target)
        if mask.dtype == "bool":
            keep = mask
        elif mask.dtype.startswith("float"):
            additive = mask
        else:
            raise TypeError(f"scaled_dot_product_attention: mask must be boolean or floating point, got dtype {mask.dtype}")
    for extra in (_causal_keep(q, k) if causal else None,
                  None if key_padding_mask is None else _key_padding_keep(key_padding_mask, target)):
        if extra is not None:
            keep = extra if keep is None else pt.and_(keep, extra)
    return graph_attention(q, k, v, scale, keep=keep, additive=additive, dropout_p=dropout_p, dropout=dropout)


def graph_attention(q, k, v, scale, keep=None, additive=None, dropout_p=0.0, dropout=None):
    """``scaled_dot_product_attention`` as a graph of matmuls and ``masked_softmax`` (every mask kind).

    ``scale`` a scalar (tensor or array), ``keep`` booleans and ``additive`` floats
    broadcastable to the scores (..., Lq, Lk), or None.
    """
    scores = pt.matmul(q, k.swapaxes(-1, -2)) * scale
    if additive is not None:
        scores = scores + additive.astype(scores.dtype)
    weights = masked_softmax(scores, keep)
    if dropout_p:
        weights = dropout(weights, dropout_p)
    return pt.matmul(weights, v)


def _fusable(q, k, v, scale):
    """Whether ``ops.attention`` computes this call: a constant scale and equal, static batch axes."""
    batch = q.type.shape[:-2]
    return (
        (scale is not None or q.type.shape[-1] is not None)
        and None not in batch
        and k.type.shape[:-2] == batch == v.type.shape[:-2]
        and q.dtype == k.dtype == v.dtype
        and q.dtype in ("float32", "float64")
    )


def _fused_attention(q, k, v, causal, dropout_p, scale, dropout, target):
    """The fused Op on (batch..., L, E) flattened to (N, L, E).

    Dropout is applied to the weights as the multiplier ``dropout(ones, p)`` (a mask
    over the keep probability for a ``Dropout`` module), drawn by the graph so that the
    masks are the graph path's; the kernels multiply by it.
    """
    batch = q.type.shape[:-2]
    n = int(np.prod(batch, dtype=np.int64))
    scale = 1 / np.sqrt(q.type.shape[-1]) if scale is None else float(scale)
    flat = [t.reshape((n, t.shape[-2], t.shape[-1])) for t in (q, k, v)]
    multiplier = None
    if dropout_p:
        ones = pt.ones(tuple(s if s is not None else d for s, d in zip(target, (*batch, q.shape[-2], k.shape[-2]))), dtype=q.dtype)
        multiplier = dropout(ones, dropout_p).reshape((n, q.shape[-2], k.shape[-2]))
    out, _ = attention_op(*flat, scale, causal, multiplier)
    return out.reshape((*batch, q.shape[-2], v.shape[-1]))
