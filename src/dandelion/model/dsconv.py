"""Depthwise separable convolution (Howard et al. 2017, MobileNets)."""

from __future__ import annotations

from dandelion import initialization as init
from dandelion.model._checks import check_positive_int
from dandelion.module import Conv2D, Module


class DSConv2D(Module):
    """Depthwise convolution (one filter per input channel) followed by a 1x1 pointwise
    convolution.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or pair
        Of the depthwise convolution.
    pad : padding of the depthwise convolution, as ``Conv2D``'s ``pad``
    W, b : initializers of both convolutions (``b=None`` for no bias)

    ``forward(x)``: (B, in_channels, H, W) -> (B, out_channels, H_out, W_out), sizes as a
    ``Conv2D`` of the same kernel, stride, pad and dilation. Weights: conv_depthwise
    (W (in_channels, 1, kh, kw), b), conv_pointwise (W (out_channels, in_channels, 1, 1), b).
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=(3, 3),
        stride=(1, 1),
        pad="valid",
        dilation=(1, 1),
        W=init.GlorotUniform(),
        b=init.Constant(0.0),
        name=None,
    ):
        super().__init__(name=name)
        check_positive_int("DSConv2D", "in_channels", in_channels)
        check_positive_int("DSConv2D", "out_channels", out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv_depthwise = Conv2D(
            in_channels, in_channels, kernel_size=kernel_size, stride=stride, pad=pad, dilation=dilation,
            num_groups=in_channels, W=W, b=b,
        )
        self.conv_pointwise = Conv2D(in_channels, out_channels, kernel_size=(1, 1), W=W, b=b)

    def forward(self, x):
        """x : (B, in_channels, H, W); returns (B, out_channels, H_out, W_out)."""
        return self.conv_pointwise.forward(self.conv_depthwise.forward(x))
