"""Linear-chain CRF math: path scores, the log partition function and Viterbi decoding.

Notation: ``x`` (B, T, N) emission scores, ``transitions`` (N, N) with
``transitions[i, j]`` the score of moving from state ``i`` to state ``j``, and optional
``start`` (N,) / ``end`` (N,) scores of the first and last state (the ``<sos>`` row and
``<eos>`` column of a padded transition matrix). The score of a path ``y`` is

    start[y_0] + sum_t x[t, y_t] + sum_t transitions[y_t, y_{t+1}] + end[y_{T-1}]

and ``p(y | x) = exp(score(y)) / sum_{y'} exp(score(y'))`` over all N**T paths.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.gradient import zero_grad

from dandelion._compat import scan

# Lower bound of the Theano-era transition matrix's clip (its entries live in [1e-4, 1]).
TRANSITION_FLOOR = 1e-4


def logsumexp(x, axis):
    """``log(sum(exp(x), axis))``, shifted by the (gradient-free) maximum for stability."""
    peak = zero_grad(pt.max(x, axis=axis, keepdims=True))
    return pt.log(pt.sum(pt.exp(x - peak), axis=axis)) + pt.squeeze(peak, axis=axis)


def padded_transition_scores(transitions, state_pad=True, normalize=True):
    """The score matrix the Theano-era ``ChainCRF`` derives from its parameter.

    Parameters
    ----------
    transitions : (M, M)
        The raw parameter; M = N + 2 with ``state_pad`` (``<sos>`` is state N, ``<eos>``
        state N + 1), else N.
    state_pad : bool
        Zero the transitions into ``<sos>`` and out of ``<eos>``: no path uses them, and
        they then take no share of a row's normalisation.
    normalize : bool
        Divide each row by its sum (the ``<eos>`` row, all zeros, is left at zero).

    Returns
    -------
    (M, M) entries clipped to [1e-4, 1] (before normalisation), used as additive scores.
    """
    scores = pt.clip(transitions, TRANSITION_FLOOR, 1.0)
    if state_pad:
        scores = pt.set_subtensor(scores[:, -2], 0)
        scores = pt.set_subtensor(scores[-1, :], 0)
    if normalize:
        row_sum = pt.sum(scores, axis=1, keepdims=True)
        scores = scores / pt.switch(pt.gt(row_sum, 0), row_sum, 1)
    return scores


def split_padded(scores, state_pad):
    """``(transitions (N, N), start (N,) or None, end (N,) or None)`` from an (M, M) matrix."""
    if not state_pad:
        return scores, None, None
    sos, eos = -2, -1
    return scores[:-2, :-2], scores[sos, :-2], scores[:-2, eos]


def crf_path_score(x, y, transitions, start=None, end=None):
    """Score of the label path ``y``.

    Parameters
    ----------
    x : (B, T, N) emission scores
    y : (B, T) int labels in [0, N)
    transitions : (N, N)
    start, end : (N,) or None

    Returns
    -------
    (B,)
    """
    x, y = pt.as_tensor_variable(x), pt.as_tensor_variable(y)
    n_states = transitions.shape[0]
    emission = pt.sum(x * pt.eq(y[:, :, None], pt.arange(x.shape[2])).astype(x.dtype), axis=(1, 2))
    # Flat 1-d gathers (AdvancedSubtensor1) compile natively on every backend.
    pair_index = (y[:, :-1] * n_states + y[:, 1:]).flatten()
    pairs = transitions.flatten()[pair_index].reshape((y.shape[0], y.shape[1] - 1))
    score = emission + pt.sum(pairs, axis=1)
    if start is not None:
        score = score + start[y[:, 0]]
    if end is not None:
        score = score + end[y[:, -1]]
    return score


def _keep_type(new, like):
    return new if new.type == like.type else pt.specify_shape(new, like.type.shape)


def _first_step_flags(x):
    """(T,) true at t = 0; lets every scan run all T steps (see ``crf_log_partition``)."""
    return pt.eq(pt.arange(x.shape[1]), 0)


def _start_scores(x, start):
    return pt.zeros_like(x[0, 0, :]) if start is None else start


def crf_log_partition(x, transitions, start=None, end=None):
    """``log sum_{y'} exp(score(y'))`` over all N**T paths, by the forward recursion.

    x : (B, T, N); transitions : (N, N); start, end : (N,) or None. Returns (B,).
    """
    x = pt.as_tensor_variable(x)
    dtype = (x[0, 0, 0] + transitions[0, 0]).dtype
    # The first step is taken inside the scan (switching to the start scores) rather
    # than before it: _workarounds.ZERO_STEP_SCAN_GRADIENT (a zero-step scan at T = 1).
    initial = pt.zeros_like(x[:, 0, :], dtype=dtype)

    def step(x_t, first, alpha_prev, trans, start_scores):
        moved = logsumexp(alpha_prev[:, :, None] + trans[None, :, :], axis=1)
        # A blend, not a switch: Numba cannot cache the gradient of a switch in a scan.
        return _keep_type(first * start_scores[None, :] + (1 - first) * moved + x_t, alpha_prev)

    alphas = scan(
        step,
        sequences=[x.dimshuffle(1, 0, 2), _first_step_flags(x).astype(dtype)],
        outputs_info=[initial],
        non_sequences=[transitions, _start_scores(x, start).astype(dtype)],
        strict=True,
    )
    final = alphas[-1]
    if end is not None:
        final = final + end
    return logsumexp(final, axis=1)


def crf_nll(x, y, transitions, start=None, end=None):
    """Negative log-likelihood ``log Z(x) - score(y)`` per sequence, (B,).

    x : (B, T, N); y : (B, T) int; transitions : (N, N); start, end : (N,) or None.
    """
    return crf_log_partition(x, transitions, start, end) - crf_path_score(x, y, transitions, start, end)


def crf_viterbi(x, transitions, start=None, end=None):
    """The highest-scoring path for each sequence.

    x : (B, T, N); transitions : (N, N); start, end : (N,) or None.
    Returns (B, T) int32 labels in [0, N).
    """
    x = pt.as_tensor_variable(x)
    dtype = (x[0, 0, 0] + transitions[0, 0]).dtype
    initial = pt.zeros_like(x[:, 0, :], dtype=dtype)

    def forward_step(x_t, first, score_prev, trans, start_scores):
        candidates = score_prev[:, :, None] + trans[None, :, :]
        best = pt.switch(first, start_scores[None, :], pt.max(candidates, axis=1))
        return _keep_type(best + x_t, score_prev), pt.argmax(candidates, axis=1)

    scores, backpointers = scan(
        forward_step,
        sequences=[x.dimshuffle(1, 0, 2), _first_step_flags(x)],
        outputs_info=[initial, None],
        non_sequences=[transitions, _start_scores(x, start).astype(dtype)],
        strict=True,
    )
    final = scores[-1]
    if end is not None:
        final = final + end
    last = pt.argmax(final, axis=1)
    states = pt.arange(x.shape[2])

    def back_step(pointers_t, next_label, states):
        # pointers_t[b, next_label[b]], as a one-hot sum (no 2-index gather needed).
        return pt.sum(pointers_t * pt.eq(states[None, :], next_label[:, None]), axis=1).astype(next_label.dtype)

    earlier = scan(
        back_step,
        sequences=[backpointers[1:]],
        outputs_info=[last],
        non_sequences=[states],
        go_backwards=True,
        strict=True,
    )
    path = pt.concatenate([earlier[::-1], last[None]], axis=0)
    return path.T.astype("int32")
