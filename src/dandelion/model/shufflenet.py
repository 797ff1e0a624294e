"""ShuffleNet (Zhang et al. 2018): shuffle units, their stacks and the network."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.activation import relu
from dandelion.functional import channel_shuffle, pool_2d
from dandelion.model._checks import (
    check_batchnorm_mode,
    check_divisible,
    check_int_list,
    check_positive_int,
)
from dandelion.model._stack import UnitStack
from dandelion.model.dsconv import DSConv2D
from dandelion.model.resnet import apply_bn
from dandelion.module import BatchNorm, Conv2D, Module

FUSION_MODES = ("add", "concat")


class ShuffleUnit(Module):
    """ShuffleNet unit: grouped 1x1 conv, channel shuffle, 3x3 depthwise separable conv,
    grouped 1x1 conv, fused with the shortcut.

    Parameters
    ----------
    in_channels : int
    inner_channels : int, optional
        Bottleneck width; default ``in_channels // 4``. Divisible by ``group_num``.
    out_channels : int, optional
        Default ``in_channels``. 'add' fusion needs ``out_channels == in_channels``;
        'concat' fusion needs ``out_channels > in_channels`` (the residual branch makes
        ``out_channels - in_channels`` channels, divisible by ``group_num``).
    group_num : int
    border_mode : padding of the 3x3 convolution ('same' keeps the size)
    batchnorm_mode : {0, 1, 2}
        0 none; 1 after each of the three convolutions (bn1, bn2, bn3); 2 only bn3.
    activation : callable
    stride, dilation : int or pair, of the 3x3 convolution. With stride > 1 the
        shortcut is 3x3 average pooling of the same stride.
    fusion_mode : {'add', 'concat'}

    ``forward(x)`` / ``predict(x)``: (B, in_channels, H, W) -> (B, out_channels, H', W').
    Weights: conv1, conv2 (DSConv2D), conv3, bn1, bn2, bn3.
    """

    def __init__(
        self,
        in_channels=256,
        inner_channels=None,
        out_channels=None,
        group_num=4,
        border_mode="same",
        batchnorm_mode=1,
        activation=relu,
        stride=(1, 1),
        dilation=(1, 1),
        fusion_mode="add",
    ):
        super().__init__()
        where = "ShuffleUnit"
        check_positive_int(where, "in_channels", in_channels)
        check_positive_int(where, "group_num", group_num)
        inner_channels = in_channels // 4 if inner_channels is None else inner_channels
        out_channels = in_channels if out_channels is None else out_channels
        check_positive_int(where, "inner_channels", inner_channels)
        check_positive_int(where, "out_channels", out_channels)
        if fusion_mode not in FUSION_MODES:
            raise ValueError(f"{where}: fusion_mode must be one of {FUSION_MODES}, got {fusion_mode!r}")
        if fusion_mode == "add" and out_channels != in_channels:
            raise ValueError(
                f"{where}: 'add' fusion needs out_channels == in_channels ({in_channels}), got out_channels={out_channels}"
            )
        if fusion_mode == "concat" and out_channels <= in_channels:
            raise ValueError(
                f"{where}: 'concat' fusion needs out_channels larger than in_channels ({in_channels}), "
                f"got out_channels={out_channels}"
            )
        branch_channels = out_channels if fusion_mode == "add" else out_channels - in_channels
        check_divisible(where, "in_channels", in_channels, group_num, "group_num")
        check_divisible(where, "inner_channels", inner_channels, group_num, "group_num")
        check_divisible(where, "out_channels (of the residual branch)", branch_channels, group_num, "group_num")
        self.batchnorm_mode = check_batchnorm_mode(where, batchnorm_mode)
        self.in_channels, self.out_channels, self.group_num = in_channels, out_channels, group_num
        self.activation = activation
        self.fusion_mode = fusion_mode
        self.stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        self.conv1 = Conv2D(in_channels, inner_channels, kernel_size=(1, 1), num_groups=group_num)
        self.conv2 = DSConv2D(inner_channels, inner_channels, kernel_size=(3, 3), stride=stride, pad=border_mode, dilation=dilation)
        self.conv3 = Conv2D(inner_channels, branch_channels, kernel_size=(1, 1), num_groups=group_num)
        self.bn1 = self.bn2 = self.bn3 = None
        if batchnorm_mode == 1:
            self.bn1 = BatchNorm(input_shape=(None, inner_channels, None, None))
            self.bn2 = BatchNorm(input_shape=(None, inner_channels, None, None))
        if batchnorm_mode in (1, 2):
            self.bn3 = BatchNorm(input_shape=(None, branch_channels, None, None))

    def _build(self, x, train):
        shortcut = x
        x = self.activation(apply_bn(self.bn1, self.conv1.forward(x), train))
        x = channel_shuffle(x, self.group_num)
        x = apply_bn(self.bn2, self.conv2.forward(x), train)
        x = apply_bn(self.bn3, self.conv3.forward(x), train)
        if self.stride != (1, 1):
            shortcut = pool_2d(shortcut, ws=(3, 3), stride=self.stride, pad=(1, 1), mode="average_exc_pad")
        if self.fusion_mode == "add":
            return self.activation(x + shortcut)
        return self.activation(pt.concatenate([shortcut, x], axis=1))

    def forward(self, x):
        """x : (B, in_channels, H, W); returns (B, out_channels, H', W')."""
        return self._build(x, train=True)

    def predict(self, x):
        """x : (B, in_channels, H, W); returns (B, out_channels, H', W')."""
        return self._build(x, train=False)


class ShuffleUnit_Stack(UnitStack):
    """A ShuffleNet stage: one stride-2 'concat' unit (``shuffleunit0``), then
    ``stack_size`` stride-1 'add' units (``shuffleunit1`` ...).

    Parameters
    ----------
    in_channels, out_channels : int (out_channels > in_channels)
    inner_channels : int, optional
        Bottleneck width of every unit; default ``out_channels // 4``.
    group_num, batchnorm_mode, activation : as ``ShuffleUnit``
    stack_size : int >= 0

    ``forward(x)`` / ``predict(x)``: (B, in_channels, H, W) -> (B, out_channels, ceil(H/2), ceil(W/2)).
    """

    def __init__(
        self, in_channels, out_channels, inner_channels=None, group_num=4, batchnorm_mode=1, activation=relu, stack_size=3
    ):
        super().__init__()
        self.check_stack_size("ShuffleUnit_Stack", stack_size)
        inner_channels = out_channels // 4 if inner_channels is None else inner_channels
        common = dict(inner_channels=inner_channels, group_num=group_num, batchnorm_mode=batchnorm_mode, activation=activation)
        units = {"shuffleunit0": ShuffleUnit(in_channels, out_channels=out_channels, stride=(2, 2), fusion_mode="concat", **common)}
        for i in range(1, stack_size + 1):
            units[f"shuffleunit{i}"] = ShuffleUnit(out_channels, out_channels=out_channels, fusion_mode="add", **common)
        self.units = units


class model_ShuffleNet(Module):
    """ShuffleNet backbone: 3x3 stride-2 conv (conv1, bn1), 3x3 stride-2 max pooling, and
    stages 2, 3, 4 of shuffle units.

    Parameters
    ----------
    in_channels : int
    group_num : int
    stage_channels : four ints: conv1's width, then the widths of stages 2, 3, 4
        (the paper's g=4: 24, 272, 544, 1088).
    stack_size : three ints, the stride-1 units after each stage's first unit (paper: 3, 7, 3)
    batchnorm_mode, activation : as ``ShuffleUnit`` (bn1 exists unless batchnorm_mode is 0)

    ``forward(x)`` / ``predict(x)``: (B, in_channels, H, W) -> stage 4's feature map
    (B, stage_channels[3], H/32, W/32) (rounded up). The paper's global pooling and
    classifier are left to the user: the old library's weights have no classifier.
    """

    def __init__(
        self,
        in_channels=3,
        group_num=4,
        stage_channels=(24, 272, 544, 1088),
        stack_size=(3, 7, 3),
        batchnorm_mode=1,
        activation=relu,
    ):
        super().__init__()
        where = type(self).__name__
        check_positive_int(where, "in_channels", in_channels)
        stage_channels = check_int_list(where, "stage_channels", stage_channels, 4)
        stack_size = check_int_list(where, "stack_size", stack_size, 3)
        self.batchnorm_mode = check_batchnorm_mode(where, batchnorm_mode)
        self.activation = activation
        self.stage_channels = stage_channels
        self.conv1 = Conv2D(in_channels, stage_channels[0], kernel_size=(3, 3), stride=(2, 2), pad="same")
        self.bn1 = None if batchnorm_mode == 0 else BatchNorm(input_shape=(None, stage_channels[0], None, None))
        self.stages = {
            f"stage{i + 2}": ShuffleUnit_Stack(
                stage_channels[i], stage_channels[i + 1], group_num=group_num, batchnorm_mode=batchnorm_mode,
                activation=activation, stack_size=stack_size[i],
            )
            for i in range(3)
        }

    def stage_outputs(self, x, train):
        """The outputs of stages 2, 3 and 4 (for decoders with skip connections)."""
        x = self.activation(apply_bn(self.bn1, self.conv1.forward(x), train))
        x = pool_2d(x, ws=(3, 3), stride=(2, 2), pad=(1, 1), mode="max")
        outputs = []
        for stage in self.stages.values():
            x = stage.forward(x) if train else stage.predict(x)
            outputs.append(x)
        return outputs

    def forward(self, x):
        """x : (B, in_channels, H, W); returns (B, stage_channels[3], H/32, W/32)."""
        return self.stage_outputs(x, train=True)[-1]

    def predict(self, x):
        """x : (B, in_channels, H, W); returns (B, stage_channels[3], H/32, W/32)."""
        return self.stage_outputs(x, train=False)[-1]
