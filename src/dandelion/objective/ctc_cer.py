"""Character error rate of decoded sequences."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.config import floatx
from dandelion.objective._checks import as_tensor
from dandelion.objective.ctc import _check_rank, _check_same, as_class_indices, check_mask, compact_to_front
from dandelion.ops.edit_distance import edit_distance


def _labels_and_lengths(where, argument, seq, mask):
    seq = as_tensor(where, argument, seq)
    _check_rank(where, argument, seq, 2, "(T, B)")
    labels = as_class_indices(seq).T
    if mask is None:
        return labels, pt.zeros((labels.shape[0],), dtype="int64") + labels.shape[1]
    mask = check_mask(where, argument, seq, f"{argument}_mask", mask, "(T, B)")
    return compact_to_front(labels, pt.neq(mask, 0).T)


def ctc_CER(resultseq, targetseq, resultseq_mask=None, targetseq_mask=None):
    """Character error rate: total edit distance over total target length.

    Parameters
    ----------
    resultseq : (T1, B) tensor
        Decoded sequences, one per column (e.g. from ``ctc_best_path_decode``).
    targetseq : (T2, B) tensor
        Ground-truth sequences, one per column.
    resultseq_mask, targetseq_mask : (T1, B) and (T2, B) tensors, optional
        1 for real entries, 0 for padding (read in order wherever they sit).

    Returns
    -------
    CER : floatX scalar, ``TE / TG`` (inf or nan when all targets are empty)
    TE : int64 scalar, total Levenshtein distance over the batch
    TG : int64 scalar, total target length

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> cer, te, tg = ctc_CER(pt.lmatrix("decoded"), pt.lmatrix("target"))
    """
    where = "ctc_CER"
    result, result_len = _labels_and_lengths(where, "resultseq", resultseq, resultseq_mask)
    target, target_len = _labels_and_lengths(where, "targetseq", targetseq, targetseq_mask)
    _check_same(where, "resultseq", result.type.shape[0], "targetseq", target.type.shape[0], "the batch size (axis 1)")
    total_edits = pt.sum(edit_distance(result, result_len, target, target_len))
    total_length = pt.sum(target_len)
    return pt.true_div(total_edits, total_length).astype(floatx()), total_edits, total_length
