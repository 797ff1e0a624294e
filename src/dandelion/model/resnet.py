"""ResNet bottleneck block (He et al. 2016)."""

from __future__ import annotations

from dandelion.activation import relu
from dandelion.model._checks import check_batchnorm_mode, check_positive_int
from dandelion.module import BatchNorm, Conv2D, Module


def apply_bn(bn, x, train):
    """``bn`` may be None (batch normalisation switched off)."""
    if bn is None:
        return x
    return bn.forward(x) if train else bn.predict(x)


class ResNet_bottleneck(Module):
    """Bottleneck residual block: 1x1 (reduce), 3x3, 1x1 (restore), identity shortcut.

    Parameters
    ----------
    outer_channel : int
        Channels of the input and the output.
    inner_channel : int
        Channels of the 3x3 convolution.
    border_mode : padding of the convolutions, as ``Conv2D``'s ``pad``; must keep the
        image size ('same') for the shortcut sum.
    batchnorm_mode : {0, 1, 2}
        0 no batch normalisation; 1 after every convolution (bn1, bn2, bn3); 2 only
        after the last (bn3).
    activation : callable

    ``forward(x)`` / ``predict(x)``: (B, outer_channel, H, W) -> (B, outer_channel, H, W),
    ``activation(bn3(conv3(...)) + x)``. ``forward`` normalises with batch statistics and
    records the running-statistics updates (``collect_self_updates()``).
    Weights: conv1, conv2, conv3, then bn1, bn2, bn3 (those that exist).
    """

    def __init__(self, outer_channel=256, inner_channel=64, border_mode="same", batchnorm_mode=1, activation=relu):
        super().__init__()
        where = "ResNet_bottleneck"
        check_positive_int(where, "outer_channel", outer_channel)
        check_positive_int(where, "inner_channel", inner_channel)
        self.batchnorm_mode = check_batchnorm_mode(where, batchnorm_mode)
        self.activation = activation
        self.conv1 = Conv2D(outer_channel, inner_channel, kernel_size=(1, 1), pad=border_mode)
        self.conv2 = Conv2D(inner_channel, inner_channel, kernel_size=(3, 3), pad=border_mode)
        self.conv3 = Conv2D(inner_channel, outer_channel, kernel_size=(1, 1), pad=border_mode)
        self.bn1 = self.bn2 = self.bn3 = None
        if batchnorm_mode == 1:
            self.bn1 = BatchNorm(input_shape=(None, inner_channel, None, None))
            self.bn2 = BatchNorm(input_shape=(None, inner_channel, None, None))
        if batchnorm_mode in (1, 2):
            self.bn3 = BatchNorm(input_shape=(None, outer_channel, None, None))

    def _build(self, x, train):
        shortcut = x
        x = self.activation(apply_bn(self.bn1, self.conv1.forward(x), train))
        x = self.activation(apply_bn(self.bn2, self.conv2.forward(x), train))
        x = apply_bn(self.bn3, self.conv3.forward(x), train)
        return self.activation(x + shortcut)

    def forward(self, x):
        """x : (B, outer_channel, H, W); returns the same shape."""
        return self._build(x, train=True)

    def predict(self, x):
        """x : (B, outer_channel, H, W); returns the same shape."""
        return self._build(x, train=False)
