"""Padding variable-length sequences into one array (NumPy, for data pipelines)."""

from __future__ import annotations

import numpy as np

_SIDES = ("pre", "post")


def pad_sequence_into_array(Xs, maxlen=None, truncating="post", padding="post", value=0.0):
    """Pad a list of arrays along their first axis into one array plus a mask.

    Parameters
    ----------
    Xs : list of arrays, each (n_i, ...) with the same trailing shape
    maxlen : int, optional
        Length of the output's second axis; longer arrays are truncated. Default: the
        longest ``n_i``.
    truncating : {'pre', 'post'}
        Drop entries from the start ('pre') or the end ('post') of long arrays.
    padding : {'pre', 'post'}
        Pad at the start ('pre') or the end ('post').
    value : scalar
        Padding value.

    Returns
    -------
    Xout : (len(Xs), maxlen, ...) array of ``Xs[0]``'s dtype
    mask : (len(Xs), maxlen) array of the same dtype, 1 where data is

    Examples
    --------
    >>> import numpy as np
    >>> x, mask = pad_sequence_into_array([np.array([1, 2]), np.array([3])])
    >>> x.tolist(), mask.tolist()
    ([[1, 2], [3, 0]], [[1, 1], [1, 0]])
    """
    where = "pad_sequence_into_array"
    for argument, side in (("truncating", truncating), ("padding", padding)):
        if side not in _SIDES:
            raise ValueError(f"{where}: {argument} must be one of {_SIDES}, got {side!r}")
    arrays = [np.asarray(x) for x in Xs]
    if not arrays:
        raise ValueError(f"{where}: Xs is empty")
    trailing = arrays[0].shape[1:]
    for index, x in enumerate(arrays):
        if x.ndim < 1 or x.shape[1:] != trailing:
            raise ValueError(f"{where}: Xs[{index}] has shape {x.shape}; every array needs shape (n, *{trailing})")
    if maxlen is None:
        maxlen = max(x.shape[0] for x in arrays)
    maxlen = int(maxlen)
    dtype = arrays[0].dtype
    out = np.full((len(arrays), maxlen) + trailing, value, dtype=dtype)
    mask = np.zeros((len(arrays), maxlen), dtype=dtype)
    for i, x in enumerate(arrays):
        kept = x[-maxlen:] if truncating == "pre" else x[:maxlen]
        if maxlen == 0 or len(kept) == 0:
            continue
        span = slice(0, len(kept)) if padding == "post" else slice(maxlen - len(kept), maxlen)
        out[i, span] = kept
        mask[i, span] = 1
    return out, mask
