"""Connectionist temporal classification (CTC) cost, computed in log space.

Reference: A. Graves et al., "Connectionist temporal classification: labelling
unsegmented sequence data with recurrent neural networks", ICML 2006 (the forward
variable alpha, eq. 6-9). The recursion is ``dandelion.ops.ctc``'s ``CTCForwardOp``, with a
native implementation on each backend (C, Numba, JAX) and an exact gradient Op.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from dandelion.objective._checks import as_tensor, check_option
from dandelion.ops.ctc import ctc_forward

CTC_ALIGNS = ("pre", "post")


def _check_rank(where, argument, x, ndim, layout):
    if x.ndim != ndim:
        raise ValueError(
            f"{where}: {argument} must be {layout} (ndim {ndim}), got ndim {x.ndim} (static shape {x.type.shape})"
        )


def _check_same(where, argument_a, a_shape, argument_b, b_shape, meaning):
    if a_shape is not None and b_shape is not None and a_shape != b_shape:
        raise ValueError(f"{where}: {argument_a} and {argument_b} disagree on {meaning}: {a_shape} vs {b_shape}")


def check_mask(where, argument, x, mask_argument, mask, layout):
    """``mask`` as a tensor of ``x``'s 2-D shape (static lengths compared when known)."""
    mask = as_tensor(where, mask_argument, mask)
    _check_rank(where, mask_argument, mask, 2, layout)
    for axis in (0, 1):
        _check_same(where, argument, x.type.shape[axis], mask_argument, mask.type.shape[axis], f"axis {axis}")
    return mask


def as_class_indices(x):
    """Integer labels; Theano-era code passed them as floatX."""
    return x if x.dtype.startswith(("int", "uint")) else pt.cast(pt.round(x), "int64")


def compact_to_front(values, mask):
    """Move the entries of each row of ``values`` (B, N) where ``mask`` is set to the front.

    Order among kept entries is preserved; returns ``(compacted, counts)``. Makes the
    result independent of where padding sits ('pre' or 'post' alignment, or gaps).
    """
    n = values.shape[1]
    positions = pt.arange(n)[None, :]
    # Unique keys: kept entries first, in order, then the rest.
    keys = pt.switch(mask, positions, positions + n)
    order = pt.argsort(keys, axis=1)
    rows = pt.arange(values.shape[0])[:, None]
    return values[rows, order], pt.sum(mask, axis=1, dtype="int64")


def _extend_with_blanks(labels, blank):
    """(B, L) labels -> (B, 2L+1) ``blank, l1, blank, l2, ..., lL, blank``."""
    batch = labels.shape[0]
    blanks = pt.zeros_like(labels) + blank
    interleaved = pt.stack([blanks, labels], axis=2).reshape((batch, -1))
    return pt.concatenate([interleaved, pt.zeros((batch, 1), dtype=labels.dtype) + blank], axis=1)


def ctc_forward_log_likelihood(log_probs, labels, label_lengths, frame_mask=None, blank=None):
    """log p(labels | x) for each batch entry, by the CTC forward recursion.

    Parameters
    ----------
    log_probs : (B, T, C+1) tensor
        Log-probabilities of each class (blank included) at each frame.
    labels : (B, L) int tensor
        Labels at the front of each row; entries past ``label_lengths`` are ignored.
    label_lengths : (B,) int tensor
    frame_mask : (B, T) tensor, optional
        Frames where it is zero are skipped (the forward variable carries over).
    blank : int or int scalar tensor, optional
        Blank class; ``C`` (the last class) by default.

    Returns
    -------
    (B,) tensor of log-likelihoods.
    """
    batch, steps, classes = log_probs.shape[0], log_probs.shape[1], log_probs.shape[2]
    if blank is None:
        blank = classes - 1
    blank = pt.cast(blank, labels.dtype)
    extended = _extend_with_blanks(labels, blank)  # (B, S)

    # A label may be reached from two states back unless it is a blank or repeats the
    # label two states back (which needs a blank between the repeats).
    skip_ok = pt.and_(pt.neq(extended[:, 2:], blank), pt.neq(extended[:, 2:], extended[:, :-2]))
    skip_ok = pt.concatenate([pt.zeros((batch, 2), dtype="int8"), skip_ok.astype("int8")], axis=1)
    if frame_mask is None:
        valid = pt.ones((batch, steps), dtype="int8")
    else:
        valid = pt.neq(frame_mask, 0).astype("int8")
    return ctc_forward(log_probs, extended, skip_ok, pt.cast(label_lengths, "int64"), valid)


def ctc_cost_logscale(seq, sm, seq_mask=None, sm_mask=None, blank_symbol=None, align="pre"):
    """Batch-averaged CTC negative log-likelihood, computed in log space.

    Batch-first, as the Theano-era code was (whatever its docstring said).

    Parameters
    ----------
    seq : (B, L) tensor
        Target label sequences (integer classes; integer-valued floats are accepted).
    sm : (B, T, C+1) tensor
        Score matrix: class probabilities per frame (e.g. softmax outputs), blank
        included. Probabilities are clipped to the dtype's smallest normal number
        before the log.
    seq_mask : (B, L) tensor, optional
        1 for real labels, 0 for padding.
    sm_mask : (B, T) tensor, optional
        1 for real frames, 0 for padding.
    blank_symbol : int or int scalar tensor, optional
        Blank class; ``C`` (the last class) by default.
    align : {'pre', 'post'}
        Where the data of each sample sits in its padded row: 'pre' (at the start,
        padding at the end) or 'post' (at the end). Masked frames are skipped and the
        labels selected by ``seq_mask`` are read in order wherever they sit, so both
        alignments give the exact likelihood. (The old code charged every padded
        frame of a 'post'-aligned batch a constant ``log 1e-12``.)

    Returns
    -------
    scalar tensor: mean over the batch of ``-log p(seq | sm)``. A label sequence that
    needs more frames than a sample has (labels plus a blank between repeats) has
    likelihood zero; its cost is then about ``1e30`` (the log of zero is represented by
    ``-1e30``) rather than ``inf``, which keeps gradients finite. Where the lengths are static, too long labels are an error at
    graph-build time.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> cost = ctc_cost_logscale(pt.lmatrix("labels"), pt.tensor3("probs", dtype="float32"))
    """
    where = "ctc_cost_logscale"
    check_option(where, "align", align, CTC_ALIGNS)
    seq = as_tensor(where, "seq", seq)
    sm = as_tensor(where, "sm", sm)
    _check_rank(where, "seq", seq, 2, "(B, L)")
    _check_rank(where, "sm", sm, 3, "(B, T, C+1)")
    if not sm.dtype.startswith("float"):
        raise TypeError(f"{where}: sm must be a float tensor of probabilities, got dtype {sm.dtype}")
    _check_same(where, "seq", seq.type.shape[0], "sm", sm.type.shape[0], "the batch size")
    label_len, frames = seq.type.shape[1], sm.type.shape[1]
    if seq_mask is None and sm_mask is None and label_len is not None and frames is not None and label_len > frames:
        raise ValueError(
            f"{where}: labels of length {label_len} cannot be aligned to {frames} frames (sm shape {sm.type.shape})"
        )

    labels = as_class_indices(seq)
    if seq_mask is not None:
        seq_mask = check_mask(where, "seq", seq, "seq_mask", seq_mask, "(B, L)")
        labels, lengths = compact_to_front(labels, pt.neq(seq_mask, 0))
    else:
        lengths = pt.zeros((labels.shape[0],), dtype="int64") + labels.shape[1]
    if sm_mask is not None:
        sm_mask = check_mask(where, "sm", sm, "sm_mask", sm_mask, "(B, T)")

    tiny = np.asarray(np.finfo(sm.dtype).tiny, dtype=sm.dtype)
    log_probs = pt.log(pt.maximum(sm, tiny))
    log_likelihood = ctc_forward_log_likelihood(log_probs, labels, lengths, sm_mask, blank_symbol)
    return -pt.mean(log_likelihood)
