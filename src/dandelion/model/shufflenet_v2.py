"""ShuffleNet V2 (Ma et al. 2018): units, their stacks and the network."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.activation import relu
from dandelion.functional import channel_shuffle, pool_2d
from dandelion.model._checks import check_batchnorm_mode, check_divisible, check_int_list, check_positive_int
from dandelion.model._stack import UnitStack
from dandelion.model.dsconv import DSConv2D
from dandelion.model.resnet import apply_bn
from dandelion.module import BatchNorm, Conv2D, Module


class ShuffleUnit_v2(Module):
    """ShuffleNet V2 unit.

    Stride 1: the channels are split in halves; one half passes unchanged, the other goes
    through conv1 (1x1), conv2 (3x3 depthwise separable) and conv3 (1x1); the halves are
    concatenated and shuffled (2 groups). ``out_channels`` must equal ``in_channels``,
    which must be even.

    Stride 2: both branches see the whole input. The residual branch (conv1, conv2 of
    stride 2, conv3) makes ``out_channels - out_channels // 2`` channels, the shortcut
    branch (conv4: 3x3 depthwise separable of stride 2, conv5: 1x1) makes
    ``out_channels // 2``; concatenated and shuffled.

    Parameters
    ----------
    in_channels : int
    out_channels : int, optional
        Default ``in_channels`` (the old library crashed on the default).
    border_mode : padding of the 3x3 convolutions ('same' keeps the size)
    batchnorm_mode : {0, 1, 2}
        0 none; 1 after every convolution (bn1..bn3, and bn4, bn5 with stride 2);
        2 only after each branch's last convolution (bn3, and bn5 with stride 2).
    activation : callable
    stride, dilation : int or pair, of the 3x3 convolutions

    ``forward(x)`` / ``predict(x)``: (B, in_channels, H, W) -> (B, out_channels, H', W').
    Weights: conv1, conv2, conv3, [conv4, conv5], bn1, bn2, bn3, [bn4, bn5].
    """

    def __init__(
        self, in_channels, out_channels=None, border_mode="same", batchnorm_mode=1, activation=relu, stride=(1, 1), dilation=(1, 1)
    ):
        super().__init__()
        where = "ShuffleUnit_v2"
        check_positive_int(where, "in_channels", in_channels)
        out_channels = in_channels if out_channels is None else out_channels
        check_positive_int(where, "out_channels", out_channels)
        self.batchnorm_mode = check_batchnorm_mode(where, batchnorm_mode)
        self.stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        self.activation = activation
        self.in_channels, self.out_channels = in_channels, out_channels
        downsample = self.stride != (1, 1)
        if not downsample:
            if out_channels != in_channels:
                raise ValueError(
                    f"{where}: with stride 1, out_channels must equal in_channels ({in_channels}), got out_channels={out_channels}"
                )
            check_divisible(where, "in_channels", in_channels, 2, "2 (the channel split)")
            branch_in = branch_out = in_channels // 2
        else:
            if out_channels < 2:
                raise ValueError(f"{where}: with stride > 1, out_channels must be at least 2 (two branches), got {out_channels}")
            branch_in, branch_out = in_channels, out_channels - out_channels // 2
        self.downsample = downsample
        dw = dict(kernel_size=(3, 3), stride=stride, pad=border_mode, dilation=dilation)
        self.conv1 = Conv2D(branch_in, branch_out, kernel_size=(1, 1))
        self.conv2 = DSConv2D(branch_out, branch_out, **dw)
        self.conv3 = Conv2D(branch_out, branch_out, kernel_size=(1, 1))
        if downsample:
            self.conv4 = DSConv2D(in_channels, in_channels, **dw)
            self.conv5 = Conv2D(in_channels, out_channels // 2, kernel_size=(1, 1))
        wanted = {0: (), 1: (1, 2, 3, 4, 5), 2: (3, 5)}[batchnorm_mode]

        def bn(i, channels):
            exists = i in wanted and (i <= 3 or downsample)
            return BatchNorm(input_shape=(None, channels, None, None)) if exists else None

        self.bn1 = bn(1, branch_out)
        self.bn2 = bn(2, branch_out)
        self.bn3 = bn(3, branch_out)
        self.bn4 = bn(4, in_channels)
        self.bn5 = bn(5, out_channels // 2)

    def _build(self, x, train):
        act = self.activation
        if self.downsample:
            residual_in = x
            shortcut = apply_bn(self.bn4, self.conv4.forward(x), train)
            shortcut = act(apply_bn(self.bn5, self.conv5.forward(shortcut), train))
        else:
            half = self.in_channels // 2
            shortcut, residual_in = x[:, :half], x[:, half:]
        y = act(apply_bn(self.bn1, self.conv1.forward(residual_in), train))
        y = apply_bn(self.bn2, self.conv2.forward(y), train)
        y = act(apply_bn(self.bn3, self.conv3.forward(y), train))
        return channel_shuffle(pt.concatenate([shortcut, y], axis=1), 2)

    def forward(self, x):
        """x : (B, in_channels, H, W); returns (B, out_channels, H', W')."""
        return self._build(x, train=True)

    def predict(self, x):
        """x : (B, in_channels, H, W); returns (B, out_channels, H', W')."""
        return self._build(x, train=False)


class ShuffleUnit_v2_Stack(UnitStack):
    """A ShuffleNet V2 stage: one stride-2 unit (``shuffleunit0``, in -> out channels), then
    ``stack_size`` stride-1 units (``shuffleunit1`` ...).

    ``forward(x)`` / ``predict(x)``: (B, in_channels, H, W) -> (B, out_channels, ceil(H/2), ceil(W/2)).
    """

    def __init__(self, in_channels, out_channels, batchnorm_mode=1, activation=relu, stack_size=3):
        super().__init__()
        self.check_stack_size("ShuffleUnit_v2_Stack", stack_size)
        common = dict(batchnorm_mode=batchnorm_mode, activation=activation)
        units = {"shuffleunit0": ShuffleUnit_v2(in_channels, out_channels, stride=(2, 2), **common)}
        for i in range(1, stack_size + 1):
            units[f"shuffleunit{i}"] = ShuffleUnit_v2(out_channels, out_channels, **common)
        self.units = units


class model_ShuffleNet_v2(Module):
    """ShuffleNet V2 backbone: conv1 (3x3 stride 2) + bn1, 3x3 stride-2 max pooling, stages
    2, 3, 4, then conv5 (1x1) + bn5.

    Parameters
    ----------
    in_channels : int
    stage_channels : five ints: conv1, stages 2-4, conv5 (paper, 1x: 24, 116, 232, 464, 1024)
    stack_size : three ints, stride-1 units after each stage's first unit (paper: 3, 7, 3)
    batchnorm_mode, activation : as ``ShuffleUnit_v2``

    ``forward(x)`` / ``predict(x)``: (B, in_channels, H, W) -> (B, stage_channels[4], H/32, W/32)
    (rounded up). Global pooling and the classifier are left to the user (the old
    library's weights have none).
    """

    def __init__(
        self, in_channels=3, stage_channels=(24, 116, 232, 464, 1024), stack_size=(3, 7, 3), batchnorm_mode=1, activation=relu
    ):
        super().__init__()
        where = "model_ShuffleNet_v2"
        check_positive_int(where, "in_channels", in_channels)
        stage_channels = check_int_list(where, "stage_channels", stage_channels, 5)
        stack_size = check_int_list(where, "stack_size", stack_size, 3)
        self.batchnorm_mode = check_batchnorm_mode(where, batchnorm_mode)
        self.activation = activation
        self.conv1 = Conv2D(in_channels, stage_channels[0], kernel_size=(3, 3), stride=(2, 2), pad="same")
        self.bn1 = None if batchnorm_mode == 0 else BatchNorm(input_shape=(None, stage_channels[0], None, None))
        self.stages = {
            f"stage{i + 2}": ShuffleUnit_v2_Stack(
                stage_channels[i], stage_channels[i + 1], batchnorm_mode=batchnorm_mode, activation=activation, stack_size=stack_size[i]
            )
            for i in range(3)
        }
        self.conv5 = Conv2D(stage_channels[3], stage_channels[4], kernel_size=(1, 1))
        self.bn5 = None if batchnorm_mode == 0 else BatchNorm(input_shape=(None, stage_channels[4], None, None))

    def _build(self, x, train):
        x = self.activation(apply_bn(self.bn1, self.conv1.forward(x), train))
        x = pool_2d(x, ws=(3, 3), stride=(2, 2), pad=(1, 1), mode="max")
        for stage in self.stages.values():
            x = stage.forward(x) if train else stage.predict(x)
        return self.activation(apply_bn(self.bn5, self.conv5.forward(x), train))

    def forward(self, x):
        """x : (B, in_channels, H, W); returns (B, stage_channels[4], H/32, W/32)."""
        return self._build(x, train=True)

    def predict(self, x):
        """x : (B, in_channels, H, W); returns (B, stage_channels[4], H/32, W/32)."""
        return self._build(x, train=False)
