"""``CTCForward`` Op: the CTC forward recursion in log space, and its gradient Op.

An Op rather than a ``scan`` graph: the recursion is a tight loop that each backend
runs natively (a vectorised NumPy loop over frames for the C backend, a Numba kernel,
``jax.lax.scan`` for JAX in ``jax_kernels.py``), and a compiled scan with its gradient costs a minute of
compilation per graph on the C and Numba backends.

Notation (Graves et al. 2006, section 4.1): the extended label sequence ``l'`` has
``S = 2L + 1`` states (blanks around and between labels); ``alpha[t, s]`` is the log
probability of the frames up to ``t`` ending in state ``s``; ``beta[t, s]`` that of the
frames after ``t`` given state ``s`` at ``t``. Then ``d log p / d log y[t, l'_s]`` sums
``exp(alpha[t, s] + beta[t, s] - log p)`` over the states showing that class (eq. 16).
Frames whose ``valid`` flag is 0 are skipped: both variables carry over unchanged.
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from dandelion._compat import ShapeInferringOp

# Log of "impossible": finite, so that log-sum-exp of impossible states never forms inf - inf.
LOG_ZERO = -1e30


# ------------------------------------------------------------------ NumPy (C backend)
def _shift(x, k, fill):
    """``x`` (B, S) moved ``k`` states to the right, ``fill`` entering on the left."""
    out = np.full_like(x, fill)
    out[:, k:] = x[:, : x.shape[1] - k]
    return out


def _unshift(x, k, fill):
    out = np.full_like(x, fill)
    out[:, : x.shape[1] - k] = x[:, k:]
    return out


def _lse3(a, b, c):
    top = np.maximum(np.maximum(a, b), c)
    return top + np.log(np.exp(a - top) + np.exp(b - top) + np.exp(c - top))


def _final_mask(lengths, states):
    """(B, S) True on the states a complete path may end in."""
    s = np.arange(states)[None, :]
    n = lengths[:, None]
    return (s == 2 * n) | ((s == 2 * n - 1) & (n > 0))


def forward_numpy(log_probs, extended, skip_ok, lengths, valid):
    """(alphas (B, T, S), log-likelihoods (B,))."""
    batch, frames, _ = log_probs.shape
    states = extended.shape[1]
    dtype = log_probs.dtype
    neg = dtype.type(LOG_ZERO)
    emissions = np.take_along_axis(log_probs, extended[:, None, :].astype(np.int64), axis=2)
    skip = skip_ok.astype(bool)
    alpha = np.full((batch, states), neg, dtype=dtype)
    alpha[:, 0] = 0
    alphas = np.empty((batch, frames, states), dtype=dtype)
    for t in range(frames):
        advanced = _lse3(alpha, _shift(alpha, 1, neg), np.where(skip, _shift(alpha, 2, neg), neg)) + emissions[:, t]
        alpha = np.where(valid[:, t, None].astype(bool), advanced, alpha)
        alphas[:, t] = alpha
    ends = np.where(_final_mask(lengths, states), alpha, neg)
    top = ends.max(axis=1)
    loglik = top + np.log(np.exp(ends - top[:, None]).sum(axis=1))
    return alphas, loglik.astype(dtype)


def gradient_numpy(log_probs, extended, skip_ok, lengths, valid, output_grad):
    """d (sum_b output_grad[b] * loglik[b]) / d log_probs, (B, T, K)."""
    alphas, loglik = forward_numpy(log_probs, extended, skip_ok, lengths, valid)
    batch, frames, classes = log_probs.shape
    states = extended.shape[1]
    dtype = log_probs.dtype
    neg = dtype.type(LOG_ZERO)
    emissions = np.take_along_axis(log_probs, extended[:, None, :].astype(np.int64), axis=2)
    skip = skip_ok.astype(bool)
    beta = np.where(_final_mask(lengths, states), dtype.type(0), neg).astype(dtype)
    occupancy = np.zeros((batch, frames, states), dtype=dtype)
    for t in range(frames - 1, -1, -1):
        is_valid = valid[:, t, None].astype(bool)
        occupancy[:, t] = np.where(is_valid, np.exp(alphas[:, t] + beta - loglik[:, None]), 0)
        ahead = emissions[:, t] + beta
        earlier = _lse3(ahead, _unshift(ahead, 1, neg), _unshift(np.where(skip, ahead, neg), 2, neg))
        beta = np.where(is_valid, earlier, beta)
    one_hot = extended[:, :, None] == np.arange(classes)[None, None, :]
    grad = np.einsum("bts,bsk->btk", occupancy, one_hot.astype(dtype))
    return (grad * output_grad[:, None, None]).astype(dtype)


# ------------------------------------------------------------------------- Ops
class CTCForward(ShapeInferringOp):
    """(log_probs (B,T,K), extended (B,S) int, skip_ok (B,S) int8, lengths (B,) int, valid (B,T) int8) -> loglik (B,)."""

    __props__ = ()

    def make_node(self, log_probs, extended, skip_ok, lengths, valid):
        inputs = [pt.as_tensor_variable(v) for v in (log_probs, extended, skip_ok, lengths, valid)]
        log_probs = inputs[0]
        return Apply(self, inputs, [pt.tensor(dtype=log_probs.dtype, shape=(log_probs.type.shape[0],))])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = forward_numpy(*inputs)[1]

    def output_shapes(self, node, input_shapes):
        return [(input_shapes[0][0],)]

    def connection_pattern(self, node):
        return [[True], [False], [False], [False], [False]]

    def pullback(self, inputs, outputs, cotangents):
        (g_loglik,) = cotangents
        g_log_probs = ctc_forward_grad(*inputs, g_loglik)
        return [g_log_probs] + [disconnected_type() for _ in inputs[1:]]


class CTCForwardGrad(ShapeInferringOp):
    """Gradient of ``CTCForward``: (its inputs, output cotangent (B,)) -> (B, T, K)."""

    __props__ = ()

    def make_node(self, log_probs, extended, skip_ok, lengths, valid, output_grad):
        inputs = [pt.as_tensor_variable(v) for v in (log_probs, extended, skip_ok, lengths, valid, output_grad)]
        inputs[5] = pt.cast(inputs[5], inputs[0].dtype)
        return Apply(self, inputs, [inputs[0].type()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = gradient_numpy(*inputs)

    def output_shapes(self, node, input_shapes):
        return [input_shapes[0]]


ctc_forward = CTCForward()
ctc_forward_grad = CTCForwardGrad()


# ------------------------------------------------------------------------ Numba
# numba.njit compiles lazily, on the first call from a compiled graph.
@numba.njit
def _lse3_scalar(a, b, c):
    top = max(a, b, c)
    return top + np.log(np.exp(a - top) + np.exp(b - top) + np.exp(c - top))


@numba.njit
def _alphas_loop(log_probs, extended, skip_ok, lengths, valid):
    batch, frames, _ = log_probs.shape
    states = extended.shape[1]
    neg = LOG_ZERO
    alphas = np.empty((batch, frames, states), dtype=log_probs.dtype)
    loglik = np.empty(batch, dtype=log_probs.dtype)
    alpha = np.empty(states, dtype=log_probs.dtype)
    for b in range(batch):
        alpha[:] = neg
        alpha[0] = 0.0
        for t in range(frames):
            if valid[b, t]:
                # Right to left, so alpha[s - 1] and alpha[s - 2] still hold frame t - 1.
                for s in range(states - 1, -1, -1):
                    prev1 = alpha[s - 1] if s >= 1 else neg
                    prev2 = alpha[s - 2] if s >= 2 and skip_ok[b, s] else neg
                    alpha[s] = _lse3_scalar(alpha[s], prev1, prev2) + log_probs[b, t, extended[b, s]]
            alphas[b, t, :] = alpha
        n = lengths[b]
        if n > 0:
            loglik[b] = _lse3_scalar(alpha[2 * n], alpha[2 * n - 1], neg)
        else:
            loglik[b] = alpha[0]
    return alphas, loglik


@numba.njit
def _gradient_loop(log_probs, extended, skip_ok, lengths, valid, output_grad, alphas, loglik):
    batch, frames, _ = log_probs.shape
    states = extended.shape[1]
    neg = LOG_ZERO
    grad = np.zeros(log_probs.shape, dtype=log_probs.dtype)
    beta = np.empty(states, dtype=log_probs.dtype)
    for b in range(batch):
        n = lengths[b]
        beta[:] = neg
        beta[2 * n] = 0.0
        if n > 0:
            beta[2 * n - 1] = 0.0
        for t in range(frames - 1, -1, -1):
            if not valid[b, t]:
                continue
            for s in range(states):
                grad[b, t, extended[b, s]] += np.exp(alphas[b, t, s] + beta[s] - loglik[b]) * output_grad[b]
            # Left to right, so beta[s + 1] and beta[s + 2] still hold frame t.
            for s in range(states):
                stay = log_probs[b, t, extended[b, s]] + beta[s]
                next1 = log_probs[b, t, extended[b, s + 1]] + beta[s + 1] if s + 1 < states else neg
                next2 = (
                    log_probs[b, t, extended[b, s + 2]] + beta[s + 2] if s + 2 < states and skip_ok[b, s + 2] else neg
                )
                beta[s] = _lse3_scalar(stay, next1, next2)
    return grad


@register_funcify_default_op_cache_key(CTCForward)
def _numba_ctc_forward(op, node=None, **kwargs):
    @numba.njit
    def ctc_forward_numba(log_probs, extended, skip_ok, lengths, valid):
        return _alphas_loop(log_probs, extended, skip_ok, lengths, valid)[1]

    return ctc_forward_numba


@register_funcify_default_op_cache_key(CTCForwardGrad)
def _numba_ctc_forward_grad(op, node=None, **kwargs):
    @numba.njit
    def ctc_forward_grad_numba(log_probs, extended, skip_ok, lengths, valid, output_grad):
        alphas, loglik = _alphas_loop(log_probs, extended, skip_ok, lengths, valid)
        return _gradient_loop(log_probs, extended, skip_ok, lengths, valid, output_grad, alphas, loglik)

    return ctc_forward_grad_numba
