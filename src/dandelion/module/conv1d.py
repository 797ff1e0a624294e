"""``Conv1D``: 1-D convolution of (B, in_channels, L) sequences."""

from __future__ import annotations

from dandelion import initialization as init
from dandelion.functional.conv1d import conv1d, conv1d_pad
from dandelion.module.base import Module
from dandelion.module.checks import check_axis_length, check_ndim
from dandelion.ops.geometry import as_int_tuple


class Conv1D(Module):
    """1-D convolution, with ``Conv2D``'s arguments on one axis.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int
    pad : {'valid', 'full', 'same', 'half'} or int
        'same'/'half' pad ``dilation * (kernel_size - 1) // 2`` at both ends.
    num_groups : int
        Divides in_channels and out_channels.
    W : initializer, ndarray or shared variable (out_channels, in_channels // num_groups, kernel_size)
    b : initializer, ndarray, shared variable or None (out_channels,)
    flip_filters : bool
        True: convolution; False: cross-correlation (PyTorch's ``Conv1d``).

    ``forward(input)``: (B, in_channels, L) -> (B, out_channels, L_out),
    ``L_out = (L + 2 pad - dilation (kernel_size - 1) - 1) // stride + 1``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import Conv1D
    >>> Conv1D(2, 5, kernel_size=3, stride=2, pad="same").forward(pt.tensor("x", shape=(4, 2, 9))).type.shape
    (4, 5, 5)
    """

    def __init__(
        self, in_channels, out_channels, kernel_size=3, stride=1, pad="valid", dilation=1, num_groups=1,
        W=init.GlorotUniform(), b=init.Constant(0.0), flip_filters=True, name=None,
    ):
        super().__init__(name=name)
        where = "Conv1D"
        self.in_channels, self.out_channels = (as_int_tuple(where, a, v, 1)[0] for a, v in (("in_channels", in_channels), ("out_channels", out_channels)))
        self.kernel_size = as_int_tuple(where, "kernel_size", kernel_size, 1)[0]
        self.stride = as_int_tuple(where, "stride", stride, 1)[0]
        self.dilation = as_int_tuple(where, "dilation", dilation, 1)[0]
        if not isinstance(num_groups, int) or num_groups < 1:
            raise ValueError(f"{where}: num_groups must be a positive int, got {num_groups!r}")
        for argument, channels in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if channels % num_groups:
                raise ValueError(f"{where}: num_groups ({num_groups}) must divide {argument} ({channels})")
        self.num_groups = num_groups
        self.pad = pad
        self.padding = conv1d_pad(where, pad, self.kernel_size, self.dilation)
        self.flip_filters = bool(flip_filters)
        self.W = self.register_param(W, shape=(self.out_channels, self.in_channels // num_groups, self.kernel_size))
        self.b = None if b is None else self.register_param(b, shape=(self.out_channels,))

    def forward(self, input):
        input = check_ndim("Conv1D", "input", input, 3)
        check_axis_length("Conv1D", "input", input, 1, self.in_channels, "in_channels")
        output = conv1d(input, self.W, self.stride, self.padding, self.dilation, self.num_groups, self.flip_filters)
        return output if self.b is None else output + self.b.dimshuffle("x", 0, "x")
