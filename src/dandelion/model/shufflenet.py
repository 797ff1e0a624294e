"""ShuffleNet (Zhang et al. 2018): shuffle units, their stacks and the network.

Wired as the Theano-era zoo wired them (its saved weights only mean something in that
wiring), where it differs from the paper: activations after every convolution of a unit,
fusion with nothing after it, the activation applied by the stack, stage 2 ungrouped.
"""

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

    Residual branch: ``act(bn1(conv1))``, channel shuffle, ``act(bn2(conv2))``,
    ``act(bn3(conv3))``; fused by ``branch + shortcut`` ('add') or
    ``concatenate([shortcut, branch])`` ('concat') with no activation after the fusion
    (``ShuffleUnit_Stack`` applies one). The old library's wiring; the paper has no
    activation after the depthwise convolution nor after the last 1x1, and applies one
    after the fusion.

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
        shortcut is 3x3 average pooling of the same stride and padding 1, the padding
        counted in the average ('average_inc_pad', as the old library pooled).
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
        x = self.activation(apply_bn(self.bn2, self.conv2.forward(x), train))
        x = self.activation(apply_bn(self.bn3, self.conv3.forward(x), train))
        if self.stride != (1, 1):
            shortcut = pool_2d(shortcut, ws=(3, 3), stride=self.stride, pad=(1, 1), mode="average_inc_pad")
        if self.fusion_mode == "add":
            return x + shortcut
        return pt.concatenate([shortcut, x], axis=1)

    def forward(self, x):
        """x : (B, in_channels, H, W); returns (B, out_channels, H', W')."""
        return self._build(x, train=True)

    def predict(self, x):
        """x : (B, in_channels, H, W); returns (B, out_channels, H', W')."""
        return self._build(x, train=False)


class ShuffleUnit_Stack(UnitStack):
    """A ShuffleNet stage: one stride-2 'concat' unit (``shuffleunit0``), then
    ``stack_size`` stride-1 'add' units (``shuffleunit1`` ...), each unit's output passed
    through ReLU (the old library's stage applied ReLU whatever ``activation`` was).

    Parameters
    ----------
    in_channels, out_channels : int (out_channels > in_channels)
    inner_channels : int, optional
        Bottleneck width of every unit; by default each unit's own ``in_channels // 4``
        (``in_channels // 4`` for ``shuffleunit0``, ``out_channels // 4`` for the others).
    group_num, batchnorm_mode : as ``ShuffleUnit``
    activation : callable, the units' inner activation
    stack_size : int >= 0

    ``forward(x)`` / ``predict(x)``: (B, in_channels, H, W) -> (B, out_channels, ceil(H/2), ceil(W/2)).
    """

    def __init__(
        self, in_channels, out_channels, inner_channels=None, group_num=4, batchnorm_mode=1, activation=relu, stack_size=3
    ):
        super().__init__()
        self.check_stack_size("ShuffleUnit_Stack", stack_size)
        common = dict(inner_channels=inner_channels, group_num=group_num, batchnorm_mode=batchnorm_mode, activation=activation)
        units = {"shuffleunit0": ShuffleUnit(in_channels, out_channels=out_channels, stride=(2, 2), fusion_mode="concat", **common)}
        for i in range(1, stack_size + 1):
            units[f"shuffleunit{i}"] = ShuffleUnit(out_channels, out_channels=out_channels, fusion_mode="add", **common)
        self.units = units

    def after_unit(self, x):
        return relu(x)


class model_ShuffleNet(Module):
    """ShuffleNet backbone: 3x3 stride-2 conv (conv1, bn1) and ReLU, 3x3 stride-2 max
    pooling without padding, and stages 2, 3, 4 of shuffle units (``ShuffleUnit_Stack``).

    As in the old library (whose weights were trained so): stage 2 is ungrouped
    (``group_num=1``; the paper leaves only its first 1x1 convolution ungrouped), every
    unit's bottleneck is a quarter of its own input width, bn1 exists whatever
    ``batchnorm_mode`` is, and the ReLUs between units come from the stages.

    Parameters
    ----------
    in_channels : int
    group_num : int, of stages 3 and 4
    stage_channels : four ints: conv1's width, then the widths of stages 2, 3, 4
        (the paper's g=4: 24, 272, 544, 1088).
    stack_size : three ints, the stride-1 units after each stage's first unit (paper: 3, 7, 3)
    batchnorm_mode, activation : the units' (see ``ShuffleUnit``)

    ``forward(x)`` / ``predict(x)``: (B, in_channels, H, W) -> stage 4's feature map
    (B, stage_channels[3], H4, W4), where ``H1 = ceil(H / 2)`` (conv1),
    ``H2 = (H1 - 3) // 2 + 1`` (pooling) and each stage halves, rounding up:
    ``H4 = ceil(H2 / 8)`` (H / 32 for H a multiple of 32). The paper's global pooling and
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
        self.stage_channels = stage_channels
        self.conv1 = Conv2D(in_channels, stage_channels[0], kernel_size=(3, 3), stride=(2, 2), pad="same")
        self.bn1 = BatchNorm(input_shape=(None, stage_channels[0], None, None))
        self.stages = {
            f"stage{i + 2}": ShuffleUnit_Stack(
                stage_channels[i], stage_channels[i + 1], group_num=1 if i == 0 else group_num, batchnorm_mode=batchnorm_mode,
                activation=activation, stack_size=stack_size[i],
            )
            for i in range(3)
        }

    def stage_outputs(self, x, train):
        """The outputs of stages 2, 3 and 4 (for decoders with skip connections)."""
        x = relu(apply_bn(self.bn1, self.conv1.forward(x), train))
        x = pool_2d(x, ws=(3, 3), stride=(2, 2), mode="max")
        # The old model also applied ReLU to the outputs of stages 2 and 3: a repeat of the
        # stage's own last ReLU, which changes nothing.
        outputs = []
        for stage in self.stages.values():
            x = stage.forward(x) if train else stage.predict(x)
            outputs.append(x)
        return outputs

    def forward(self, x):
        """x : (B, in_channels, H, W); returns (B, stage_channels[3], H4, W4)."""
        return self.stage_outputs(x, train=True)[-1]

    def predict(self, x):
        """x : (B, in_channels, H, W); returns (B, stage_channels[3], H4, W4)."""
        return self.stage_outputs(x, train=False)[-1]
