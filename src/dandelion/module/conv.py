"""``Conv2D`` and ``ConvTransposed2D`` modules."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion import initialization as init
from dandelion.functional.conv import conv2d, conv2d_transpose
from dandelion.module.base import Module
from dandelion.module.checks import check_axis_length, check_ndim
from dandelion.ops.geometry import (
    as_int_tuple,
    conv_output_length,
    conv_transposed_output_length,
    resolve_conv_pad,
    static_length,
)


class _ConvBase(Module):
    """Argument normalisation and bias handling shared by the two convolution modules."""

    def _setup(self, where, in_channels, out_channels, kernel_size, stride, pad, dilation, num_groups, flip_filters, input_shape):
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        if self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(f"{where}: in_channels and out_channels must be positive, got {in_channels}, {out_channels}")
        self.kernel_size = as_int_tuple(where, "kernel_size", kernel_size, 2)
        self.stride = as_int_tuple(where, "stride", stride, 2)
        self.dilation = as_int_tuple(where, "dilation", dilation, 2)
        if not isinstance(num_groups, int) or num_groups < 1:
            raise ValueError(f"{where}: num_groups must be a positive int, got {num_groups!r}")
        for argument, channels in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if channels % num_groups != 0:
                raise ValueError(f"{where}: num_groups ({num_groups}) must divide {argument} ({channels})")
        self.num_groups = num_groups
        self.pad = pad
        self.pads = resolve_conv_pad(where, pad, self.kernel_size, self.dilation)
        self.flip_filters = bool(flip_filters)
        input_shape = (None, None) if input_shape is None else tuple(input_shape)
        if len(input_shape) != 2:
            raise ValueError(f"{where}: input_shape must be (H_in, W_in), got {input_shape!r}")
        self.input_shape = tuple(None if n is None else int(n) for n in input_shape)

    def _bias_shape(self, where, untie_bias, output_hw):
        if not untie_bias:
            return (self.out_channels,)
        if any(n is None for n in output_hw):
            raise ValueError(f"{where}: untie_bias=True needs input_shape=(H_in, W_in), got {self.input_shape}")
        return (self.out_channels, *output_hw)

    def _check_input(self, where, input):
        input = check_ndim(where, "input", input, 4)
        check_axis_length(where, "input", input, 1, self.in_channels, "in_channels")
        static = input.type.shape[2:]
        for axis, (actual, expected) in enumerate(zip(static, self.input_shape)):
            if actual is not None and expected is not None and actual != expected:
                raise ValueError(f"{where}: input axis {axis + 2} must be {expected} (input_shape), got {actual} (static shape {input.type.shape})")
        if any(n is not None for n in self.input_shape):
            input = pt.specify_shape(input, (None, None, *self.input_shape))
        return input

    def _add_bias(self, output):
        if self.b is None:
            return output
        if self.untie_bias:
            return output + self.b.dimshuffle("x", 0, 1, 2)
        return output + self.b.dimshuffle("x", 0, "x", "x")


class Conv2D(_ConvBase):
    """2-D convolution of (B, in_channels, H_in, W_in) images.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (kh, kw)
    stride, dilation : int or pair of int
    pad : {'valid', 'full', 'same', 'half'} or int or (pad_h, pad_w)
        'same'/'half' pad ``dilated_k // 2`` (same size for odd kernels at stride 1).
    num_groups : int
        Divides in_channels and out_channels; each group convolves separately.
    W : initializer, ndarray or shared variable (out_channels, in_channels // num_groups, kh, kw)
    b : initializer, ndarray, shared variable or None
        (out_channels,), or (out_channels, H_out, W_out) with ``untie_bias``.
    flip_filters : bool
        True: convolution; False: cross-correlation.
    convOP : callable, optional
        Replaces the convolution. Called with Theano's ``tensor.nnet.conv2d`` keywords:
        ``convOP(input=, filters=, input_shape=, filter_shape=, border_mode=(ph, pw),
        subsample=, filter_flip=, filter_dilation=, num_groups=)``.
    input_shape : (H_in, W_in), optional
        Needed for ``untie_bias``; also gives the graph static image sizes.
    untie_bias : bool

    ``forward(input)``: (B, in_channels, H_in, W_in) -> (B, out_channels, H_out, W_out),
    ``H_out = (H_in + 2 pad_h - dilation_h (kh - 1) - 1) // stride_h + 1``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import Conv2D
    >>> conv = Conv2D(in_channels=1, out_channels=3, stride=(2, 2), pad="same")
    >>> conv.forward(pt.tensor("x", shape=(4, 1, 32, 33))).type.shape
    (4, 3, 16, 17)
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=(3, 3),
        stride=(1, 1),
        pad="valid",
        dilation=(1, 1),
        num_groups=1,
        W=init.GlorotUniform(),
        b=init.Constant(0.0),
        flip_filters=True,
        convOP=None,
        input_shape=(None, None),
        untie_bias=False,
        name=None,
    ):
        super().__init__(name=name)
        self._setup("Conv2D", in_channels, out_channels, kernel_size, stride, pad, dilation, num_groups, flip_filters, input_shape)
        if convOP is not None and not callable(convOP):
            raise TypeError(f"Conv2D: convOP must be callable or None, got {type(convOP).__name__}")
        self.convOP = convOP
        self.untie_bias = bool(untie_bias)
        self.output_hw = tuple(
            static_length(conv_output_length, n, k, s, p, d)
            for n, k, s, p, d in zip(self.input_shape, self.kernel_size, self.stride, self.pads, self.dilation)
        )
        if any(n is not None and n < 1 for n in self.output_hw):
            raise ValueError(f"Conv2D: input_shape {self.input_shape} is too small for kernel {self.kernel_size} with pad {self.pads}")
        self.W = self.register_param(W, shape=(self.out_channels, self.in_channels // num_groups, *self.kernel_size))
        self.b = None if b is None else self.register_param(b, shape=self._bias_shape("Conv2D", untie_bias, self.output_hw))

    def forward(self, input):
        input = self._check_input("Conv2D", input)
        if self.convOP is None:
            output = conv2d(input, self.W, self.stride, self.pads, self.dilation, self.num_groups, self.flip_filters)
        else:
            output = self.convOP(
                input=input,
                filters=self.W,
                input_shape=(None, self.in_channels, *self.input_shape),
                filter_shape=(self.out_channels, self.in_channels // self.num_groups, *self.kernel_size),
                border_mode=self.pads,
                subsample=self.stride,
                filter_flip=self.flip_filters,
                filter_dilation=self.dilation,
                num_groups=self.num_groups,
            )
        return self._add_bias(output)


class ConvTransposed2D(_ConvBase):
    """Transposed 2-D convolution (fractionally strided convolution), the adjoint of ``Conv2D``.

    Parameters are those of ``Conv2D`` (no ``convOP``); W has shape
    (in_channels, out_channels // num_groups, kh, kw), b (out_channels,) or
    (out_channels, H_out, W_out) with ``untie_bias``; ``b=None`` disables the bias (the
    old library crashed on it).

    flip_filters : bool, default False
        Meant as for ``Conv2D`` applied to the upsampled (zero-dilated) input, as the old
        library did: True is a true convolution of the upsampled input, i.e. every input
        pixel scatters the kernel as given (PyTorch's ``conv_transpose2d`` with the same
        weight); False scatters the kernel flipped. The old code's default was False
        (its documentation listed True); old weights were trained with False.

    ``forward(input)``: (B, in_channels, H_in, W_in) -> (B, out_channels, H_out, W_out),
    ``H_out = (H_in - 1) * stride_h + dilation_h (kh - 1) + 1 - 2 pad_h``, the size a
    ``Conv2D`` of the same arguments maps back to H_in.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import ConvTransposed2D
    >>> up = ConvTransposed2D(in_channels=3, out_channels=2, kernel_size=4, stride=2, pad=(1, 1))
    >>> up.forward(pt.tensor("x", shape=(4, 3, 8, 8))).type.shape
    (4, 2, 16, 16)
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=(3, 3),
        stride=(1, 1),
        pad="valid",
        dilation=(1, 1),
        num_groups=1,
        W=init.GlorotUniform(),
        b=init.Constant(0.0),
        flip_filters=False,
        input_shape=(None, None),
        untie_bias=False,
        name=None,
    ):
        super().__init__(name=name)
        self._setup(
            "ConvTransposed2D", in_channels, out_channels, kernel_size, stride, pad, dilation, num_groups, flip_filters, input_shape
        )
        self.untie_bias = bool(untie_bias)
        self.output_hw = tuple(
            static_length(conv_transposed_output_length, n, k, s, p, d)
            for n, k, s, p, d in zip(self.input_shape, self.kernel_size, self.stride, self.pads, self.dilation)
        )
        if any(n is not None and n < 1 for n in self.output_hw):
            raise ValueError(f"ConvTransposed2D: output size {self.output_hw} is empty; pad {self.pads} is too large")
        self.W = self.register_param(W, shape=(self.in_channels, self.out_channels // num_groups, *self.kernel_size))
        self.b = None if b is None else self.register_param(b, shape=self._bias_shape("ConvTransposed2D", untie_bias, self.output_hw))

    def forward(self, input):
        input = self._check_input("ConvTransposed2D", input)
        # conv2d_transpose's flag is that of the conv2d it is the adjoint of: scattering the
        # kernel as given is the adjoint of cross-correlation (flip False there)
        output = conv2d_transpose(
            input, self.W, None, self.stride, self.pads, self.dilation, self.num_groups, not self.flip_filters
        )
        return self._add_bias(output)
