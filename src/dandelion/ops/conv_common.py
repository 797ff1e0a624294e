"""Argument checks and small graph helpers shared by the three convolution Ops."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from dandelion.ops.conv_geometry import as_int_tuple, conv_output_length


def check_conv_params(where, stride, pad, dilation, num_groups, flip):
    stride = as_int_tuple(where, "stride", stride, 2)
    pad = as_int_tuple(where, "pad", pad, 2, minimum=0)
    dilation = as_int_tuple(where, "dilation", dilation, 2)
    if not isinstance(num_groups, (int, np.integer)) or num_groups < 1:
        raise ValueError(f"{where}: num_groups must be a positive int, got {num_groups!r}")
    return stride, pad, dilation, int(num_groups), bool(flip)


def as_float_tensor(where, argument, value, ndim):
    value = pt.as_tensor_variable(value)
    if value.ndim != ndim:
        raise ValueError(f"{where}: {argument} must have ndim {ndim}, got ndim {value.ndim} (static shape {value.type.shape})")
    if not value.dtype.startswith("float"):
        raise TypeError(f"{where}: {argument} must have a float dtype, got {value.dtype}")
    return value


def check_groups(where, channels, out_channels, cg, groups, channel_argument="input"):
    """Static channel bookkeeping shared by the three convolution Ops."""
    if out_channels is not None and out_channels % groups != 0:
        raise ValueError(f"{where}: num_groups={groups} must divide the filters' output channels, got {out_channels}")
    if channels is not None and cg is not None and channels != cg * groups:
        raise ValueError(
            f"{where}: {channel_argument} has {channels} channels, expected filters.shape[1] * num_groups = {cg} * {groups} = {cg * groups}"
        )


def flip_filters(w):
    return w[:, :, ::-1, ::-1]


def static_or_symbolic_hw(var):
    """The last two lengths of ``var``: constants when static, so that shapes stay static."""
    static = var.type.shape[2:]
    if all(n is not None for n in static):
        return pt.as_tensor_variable(np.asarray(static, dtype="int64"))
    return var.shape[2:]


def as_hw_vector(where, argument, hw):
    """``hw`` (a pair of ints, or an int vector variable of length 2) as ``(int64 vector, static pair)``."""
    if isinstance(hw, (tuple, list)) and all(isinstance(v, (int, np.integer)) for v in hw):
        hw = np.asarray(hw, dtype="int64")
    elif isinstance(hw, (tuple, list)):
        hw = pt.stack([pt.as_tensor_variable(v) for v in hw])
    var = pt.as_tensor_variable(hw)
    if var.ndim != 1 or not var.dtype.startswith(("int", "uint")):
        raise TypeError(f"{where}: {argument} must be a pair of ints, got {hw!r}")
    if var.type.shape[0] not in (None, 2):
        raise ValueError(f"{where}: {argument} must have length 2, got {var.type.shape[0]}")
    var = pt.cast(var, "int64")
    data = getattr(var, "data", None)
    static = (None, None) if data is None else tuple(int(v) for v in data)
    return var, static


class ConvParams:
    """Mixin: the props shared by the three convolution Ops and their size check."""

    __props__ = ("stride", "pad", "dilation", "num_groups", "flip")
    op_name = "conv2d"

    def __init__(self, stride=(1, 1), pad=(0, 0), dilation=(1, 1), num_groups=1, flip=True):
        self.stride, self.pad, self.dilation, self.num_groups, self.flip = check_conv_params(
            self.op_name, stride, pad, dilation, num_groups, flip
        )

    def check_sizes(self, in_hw, kernel, out_hw):
        """The convolution of an ``in_hw`` image must give ``out_hw`` (unknown sizes pass)."""
        for n, k, s, p, d, o in zip(in_hw, kernel, self.stride, self.pad, self.dilation, out_hw):
            expected = conv_output_length(n, k, s, p, d)
            if expected is not None and o is not None and expected != o:
                raise ValueError(
                    f"{self.op_name}: an input of size {tuple(in_hw)} convolved with a {tuple(kernel)} filter "
                    f"(stride {self.stride}, pad {self.pad}, dilation {self.dilation}) gives {expected} rows/cols, "
                    f"but the output gradient has {tuple(out_hw)}"
                )
