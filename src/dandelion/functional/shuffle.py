"""Channel shuffle (ShuffleNet)."""

from __future__ import annotations

import pytensor.tensor as pt


def channel_shuffle(x, group_num):
    """Interleave the channels of x (B, C, H, W) across ``group_num`` groups.

    Channel ``g * (C // group_num) + k`` moves to ``k * group_num + g``. C must be static
    or divisible by ``group_num`` at run time. Output (B, C, H, W).

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> from dandelion.functional import channel_shuffle
    >>> x = pt.tensor("x", shape=(1, 6, 1, 1))
    >>> f = pytensor.function([x], channel_shuffle(x, 2))
    >>> f(np.arange(6, dtype=x.dtype).reshape(1, 6, 1, 1)).ravel().tolist()
    [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """
    x = pt.as_tensor_variable(x)
    if x.ndim != 4:
        raise ValueError(f"channel_shuffle: input must be 4-D (B, C, H, W), got ndim {x.ndim}")
    if not isinstance(group_num, int) or group_num < 1:
        raise ValueError(f"channel_shuffle: group_num must be a positive int, got {group_num!r}")
    channels = x.type.shape[1]
    if channels is not None and channels % group_num != 0:
        raise ValueError(f"channel_shuffle: channels ({channels}) must be divisible by group_num ({group_num})")
    b, c, h, w = x.shape
    grouped = x.reshape((b, group_num, c // group_num, h, w))
    return grouped.transpose(0, 2, 1, 3, 4).reshape((b, c, h, w))
