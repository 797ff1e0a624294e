"""1-D convolution of sequences (B, C, L), run as a 2-D convolution of height 1."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.ops.conv import Conv2dOp
from dandelion.ops.geometry import as_int_tuple, resolve_conv_pad


def conv1d_pad(where, pad, kernel_size, dilation):
    """Explicit padding of both ends for a pad mode or an int (as ``conv2d``'s, one axis)."""
    if isinstance(pad, str):
        return resolve_conv_pad(where, pad, (1, kernel_size), (1, dilation))[1]
    return as_int_tuple(where, "pad", pad, 1, minimum=0)[0]


def conv1d(input, filters, stride=1, pad="valid", dilation=1, num_groups=1, flip_filters=True):
    """Grouped, strided, dilated 1-D convolution.

    The 2-D convolution Op (and its gradients on every backend) over a height-1 image.

    Parameters
    ----------
    input : (B, C, L)
    filters : (O, C // num_groups, k), with a static k when ``pad`` is a mode
    stride, dilation : int
    pad : {'valid', 'full', 'half', 'same'} or int
        As for ``conv2d``: 'same' pads ``dilation * (k - 1) // 2`` at both ends.
    num_groups : int
    flip_filters : bool
        True: convolution; False: cross-correlation.

    Returns
    -------
    (B, O, L_out), ``L_out = (L + 2 pad - dilation (k - 1) - 1) // stride + 1``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.functional import conv1d
    >>> conv1d(pt.tensor("x", shape=(2, 3, 10)), pt.tensor("w", shape=(4, 3, 3)), pad="same").type.shape
    (2, 4, 10)
    """
    input = pt.as_tensor_variable(input)
    filters = pt.as_tensor_variable(filters)
    for argument, value in (("input", input), ("filters", filters)):
        if value.ndim != 3:
            raise ValueError(f"conv1d: {argument} must be 3-D, got ndim {value.ndim} (static shape {value.type.shape})")
    stride = as_int_tuple("conv1d", "stride", stride, 1)[0]
    dilation = as_int_tuple("conv1d", "dilation", dilation, 1)[0]
    padding = conv1d_pad("conv1d", pad, filters.type.shape[2], dilation)
    op = Conv2dOp((1, stride), (0, padding), (1, dilation), num_groups, flip_filters)
    return op(input[:, :, None, :], filters[:, :, None, :])[:, :, 0, :]
