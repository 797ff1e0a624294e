"""Feature pyramid network (Lin et al. 2017) on a small residual backbone."""

from __future__ import annotations

from dandelion.activation import relu
from dandelion.functional import align_crop, pool_2d, upsample_2d
from dandelion.model._checks import check_batchnorm_mode, check_positive_int
from dandelion.model.resnet import ResNet_bottleneck, apply_bn
from dandelion.module import BatchNorm, Conv2D, Module


class model_FPN(Module):
    """Feature pyramid network: a bottom-up residual backbone, a top-down pathway with
    lateral 1x1 connections, and 3x3 smoothing of the merged maps.

    Backbone (b = ``base_n_filters``): conv1 3x3 (b) at full size; conv2 3x3 stride 2 (2b)
    + res_block1 -> C2 at 1/2; conv3 stride 2 (4b) + res_block2 -> C3 at 1/4; conv4
    stride 2 (8b) + res_block3 -> C4 at 1/8; 2x2 max pooling + res_block4 -> C5 at 1/16.
    Pyramid (d = 4b channels, 256 for the default b = 64 as in the paper): P5 = conv5(C5);
    P4 = conv9(up(P5) + conv6(C4)); P3 = conv10(up(P4') + conv7(C3));
    P2 = conv11(up(P3') + conv8(C2)), where ``P'`` is the merged map before smoothing.

    Parameters
    ----------
    input_channel : int
    base_n_filters : int
    batchnorm_mode : {0, 1, 2}
        0: no batch normalisation anywhere; 1: bn1..bn4 after the backbone convolutions
        and residual blocks in mode 1; 2: bn1..bn4 kept, residual blocks in mode 2 (only
        after their last convolution).

    ``forward(x)`` / ``predict(x)``: x (B, input_channel, H, W), H and W divisible by 16;
    returns (p2, p3, p4, p5), each (B, 4b, H / 2**k, W / 2**k) for k = 1, 2, 3, 4.
    """

    def __init__(self, input_channel=3, base_n_filters=64, batchnorm_mode=1):
        super().__init__()
        where = "model_FPN"
        check_positive_int(where, "input_channel", input_channel)
        b = check_positive_int(where, "base_n_filters", base_n_filters)
        self.batchnorm_mode = check_batchnorm_mode(where, batchnorm_mode)
        widths = (b, 2 * b, 4 * b, 8 * b)
        self.conv1 = Conv2D(input_channel, widths[0], kernel_size=3, pad="same")
        self.bn1 = self._bn(widths[0])
        self.conv2 = Conv2D(widths[0], widths[1], kernel_size=3, stride=2, pad="same")
        self.bn2 = self._bn(widths[1])
        self.conv3 = Conv2D(widths[1], widths[2], kernel_size=3, stride=2, pad="same")
        self.bn3 = self._bn(widths[2])
        self.conv4 = Conv2D(widths[2], widths[3], kernel_size=3, stride=2, pad="same")
        self.bn4 = self._bn(widths[3])
        self.res_blocks = {
            f"res_block{i}": ResNet_bottleneck(outer_channel=outer, inner_channel=outer // 2, batchnorm_mode=batchnorm_mode)
            for i, outer in enumerate((widths[1], widths[2], widths[3], widths[3]), start=1)
        }
        d = 4 * b
        self.conv5 = Conv2D(widths[3], d, kernel_size=1)
        self.conv6 = Conv2D(widths[3], d, kernel_size=1)
        self.conv7 = Conv2D(widths[2], d, kernel_size=1)
        self.conv8 = Conv2D(widths[1], d, kernel_size=1)
        self.conv9 = Conv2D(d, d, kernel_size=3, pad="same")
        self.conv10 = Conv2D(d, d, kernel_size=3, pad="same")
        self.conv11 = Conv2D(d, d, kernel_size=3, pad="same")

    def _bn(self, channels):
        return None if self.batchnorm_mode == 0 else BatchNorm(input_shape=(None, channels, None, None))

    def _build(self, x, train):
        def stage(conv, bn, x):
            return relu(apply_bn(bn, conv.forward(x), train))

        def block(res, x):
            return res.forward(x) if train else res.predict(x)

        res1, res2, res3, res4 = self.res_blocks.values()
        x = stage(self.conv1, self.bn1, x)
        c2 = block(res1, stage(self.conv2, self.bn2, x))
        c3 = block(res2, stage(self.conv3, self.bn3, c2))
        c4 = block(res3, stage(self.conv4, self.bn4, c3))
        c5 = block(res4, pool_2d(c4, ws=(2, 2), mode="max"))

        def merge(top, lateral):
            up, lateral = align_crop([upsample_2d(top, 2), lateral], [None, None, "lower", "lower"])
            return up + lateral

        p5 = self.conv5.forward(c5)
        m4 = merge(p5, self.conv6.forward(c4))
        m3 = merge(m4, self.conv7.forward(c3))
        m2 = merge(m3, self.conv8.forward(c2))
        return self.conv11.forward(m2), self.conv10.forward(m3), self.conv9.forward(m4), p5

    def forward(self, x):
        """x : (B, input_channel, H, W); returns (p2, p3, p4, p5)."""
        return self._build(x, train=True)

    def predict(self, x):
        """x : (B, input_channel, H, W); returns (p2, p3, p4, p5)."""
        return self._build(x, train=False)
