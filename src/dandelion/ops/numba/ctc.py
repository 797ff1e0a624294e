"""Numba implementations of the CTC Op family (``dandelion.ops.ctc``): one loop per sequence."""

from __future__ import annotations

import numba
import numpy as np

from dandelion.ops.ctc import CTCForwardGradOp, CTCForwardOp
from dandelion.ops.ctc_numpy import LOG_ZERO
from dandelion.ops.numba.source_cache import register_numba_op

CTC_SOURCES = ("dandelion.ops.ctc_numpy", "dandelion.ops.numba.ctc")


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


@register_numba_op(CTCForwardOp, CTC_SOURCES)
def numba_funcify_CTCForwardOp(op, node=None, **kwargs):
    @numba.njit
    def ctc_forward_numba(log_probs, extended, skip_ok, lengths, valid):
        return _alphas_loop(log_probs, extended, skip_ok, lengths, valid)[1]

    return ctc_forward_numba


@register_numba_op(CTCForwardGradOp, CTC_SOURCES)
def numba_funcify_CTCForwardGradOp(op, node=None, **kwargs):
    @numba.njit
    def ctc_forward_grad_numba(log_probs, extended, skip_ok, lengths, valid, output_grad):
        alphas, loglik = _alphas_loop(log_probs, extended, skip_ok, lengths, valid)
        return _gradient_loop(log_probs, extended, skip_ok, lengths, valid, output_grad, alphas, loglik)

    return ctc_forward_grad_numba
