"""CTC best-path decoding."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.config import floatx
from dandelion.objective._checks import as_tensor
from dandelion.objective.ctc import _check_rank, check_mask, compact_to_front


def ctc_best_path_decode(Y, Y_mask=None, blank_symbol=None):
    """Decode network outputs by taking the most likely class of every frame.

    Repeated classes in consecutive frames collapse into one, then blanks are removed
    (Graves et al. 2006, best-path decoding).

    Parameters
    ----------
    Y : (B, T, C+1) tensor
        Class scores or probabilities per frame, blank included.
    Y_mask : (B, T) tensor, optional
        1 for real frames, 0 for padding (wherever it sits: padded frames are skipped,
        so repeats on either side of them still collapse).
    blank_symbol : int or int scalar tensor, optional
        Blank class; ``C`` (the last class) by default.

    Returns
    -------
    resultseq : (T, B) int64 tensor
        Decoded labels of each sample at the front of its column, -1 after them.
    resultseq_mask : (T, B) floatX tensor
        1 where ``resultseq`` holds a label.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> labels, mask = ctc_best_path_decode(pt.tensor3("probs", dtype="float32"))
    """
    where = "ctc_best_path_decode"
    Y = as_tensor(where, "Y", Y)
    _check_rank(where, "Y", Y, 3, "(B, T, C+1)")
    best = pt.argmax(Y, axis=2)
    if blank_symbol is None:
        blank_symbol = Y.shape[2] - 1
    blank = pt.cast(blank_symbol, best.dtype)
    positions = pt.arange(Y.shape[1])[None, :]
    if Y_mask is not None:
        Y_mask = check_mask(where, "Y", Y, "Y_mask", Y_mask, "(B, T)")
        best, frames = compact_to_front(best, pt.neq(Y_mask, 0))
        valid = pt.lt(positions, frames[:, None])
    else:
        valid = pt.eq(best, best)
    previous = pt.concatenate([pt.zeros_like(best[:, :1]) - 1, best[:, :-1]], axis=1)
    keep = pt.and_(pt.and_(valid, pt.neq(best, blank)), pt.neq(best, previous))
    labels, counts = compact_to_front(best, keep)
    filled = pt.lt(positions, counts[:, None])
    resultseq = pt.switch(filled, labels, -1).T
    return resultseq, filled.astype(floatx()).T
