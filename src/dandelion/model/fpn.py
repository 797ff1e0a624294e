"""Feature pyramid network (Lin et al. 2017) on a small residual backbone, wired as the
Theano-era zoo wired it (its saved weights only mean something in that wiring)."""

from __future__ import annotations

from dandelion.activation import relu
from dandelion.functional import align_crop, upsample_2d
from dandelion.model._checks import check_batchnorm_mode, check_positive_int
from dandelion.model.resnet import ResNet_bottleneck, apply_bn
from dandelion.module import BatchNorm, Conv2D, Module


class model_FPN(Module):
    """Feature pyramid network: a bottom-up residual backbone, a top-down pathway with
    lateral 1x1 connections, and 1x1 smoothing of the merged maps.

    Backbone (b = ``base_n_filters``): four stages, each a 3x3 stride-2 convolution with
    batch normalisation and ReLU followed by a residual block of the same width and ReLU:
    C2 = relu(res_block1(relu(bn1(conv1(x))))) with b channels at 1/2 of the input,
    C3 (conv2, bn2, res_block2) with 2b at 1/4, C4 (conv3, bn3, res_block3) with 4b at
    1/8, C5 (conv4, bn4, res_block4) with 8b at 1/16. Each res_block's inner width is half
    of its width.

    Pyramid (4b channels): P5 = relu(conv5(C5)); M4 = relu(conv6(C4)) + up(P5);
    M3 = relu(conv7(C3)) + up(M4); M2 = relu(conv8(C2)) + up(M3), ``up`` repeating each
    pixel 2x2; P4, P3, P2 = relu(conv9(M4)), relu(conv10(M3)), relu(conv11(M2)). conv5..11
    are 1x1.

    This is the old library's network, not the paper's (a ResNet backbone with C2 at 1/4,
    3x3 smoothing, no non-linearities in the pyramid): its saved weights were trained
    with it.

    Parameters
    ----------
    input_channel : int
    base_n_filters : int
    batchnorm_mode : {0, 1, 2}
        The residual blocks' (see ``ResNet_bottleneck``); bn1..bn4 exist whatever it is,
        as in the old library.

    ``forward(x)`` / ``predict(x)``: x (B, input_channel, H, W), H and W divisible by 16;
    returns (p2, p3, p4, p5), each (B, 4b, H / 2**k, W / 2**k) for k = 1, 2, 3, 4.
    """

    def __init__(self, input_channel=3, base_n_filters=64, batchnorm_mode=1):
        super().__init__()
        where = "model_FPN"
        check_positive_int(where, "input_channel", input_channel)
        b = check_positive_int(where, "base_n_filters", base_n_filters)
        if b < 2:
            raise ValueError(f"{where}: base_n_filters must be at least 2 (res_block1's inner width is base_n_filters // 2), got {b}")
        self.batchnorm_mode = check_batchnorm_mode(where, batchnorm_mode)
        widths = (b, 2 * b, 4 * b, 8 * b)
        self.conv1 = Conv2D(input_channel, widths[0], kernel_size=3, stride=2, pad="same")
        self.bn1 = self._bn(widths[0])
        self.conv2 = Conv2D(widths[0], widths[1], kernel_size=3, stride=2, pad="same")
        self.bn2 = self._bn(widths[1])
        self.conv3 = Conv2D(widths[1], widths[2], kernel_size=3, stride=2, pad="same")
        self.bn3 = self._bn(widths[2])
        self.conv4 = Conv2D(widths[2], widths[3], kernel_size=3, stride=2, pad="same")
        self.bn4 = self._bn(widths[3])
        self.res_blocks = {
            f"res_block{i}": ResNet_bottleneck(outer_channel=width, inner_channel=width // 2, batchnorm_mode=batchnorm_mode)
            for i, width in enumerate(widths, start=1)
        }
        d = 4 * b
        self.conv5 = Conv2D(widths[3], d, kernel_size=1)
        self.conv6 = Conv2D(widths[2], d, kernel_size=1)
        self.conv7 = Conv2D(widths[1], d, kernel_size=1)
        self.conv8 = Conv2D(widths[0], d, kernel_size=1)
        self.conv9 = Conv2D(d, d, kernel_size=1)
        self.conv10 = Conv2D(d, d, kernel_size=1)
        self.conv11 = Conv2D(d, d, kernel_size=1)

    @staticmethod
    def _bn(channels):
        return BatchNorm(input_shape=(None, channels, None, None))

    def _build(self, x, train):
        def block(res, x):
            return relu(res.forward(x) if train else res.predict(x))

        stages = zip((self.conv1, self.conv2, self.conv3, self.conv4), (self.bn1, self.bn2, self.bn3, self.bn4), self.res_blocks.values())
        c = []
        for conv, bn, res in stages:
            x = block(res, relu(apply_bn(bn, conv.forward(x), train)))
            c.append(x)
        c2, c3, c4, c5 = c

        def merge(top, lateral):
            up, lateral = align_crop([upsample_2d(top, 2), relu(lateral)], [None, None, "lower", "lower"])
            return lateral + up

        p5 = relu(self.conv5.forward(c5))
        m4 = merge(p5, self.conv6.forward(c4))
        m3 = merge(m4, self.conv7.forward(c3))
        m2 = merge(m3, self.conv8.forward(c2))
        return relu(self.conv11.forward(m2)), relu(self.conv10.forward(m3)), relu(self.conv9.forward(m4)), p5

    def forward(self, x):
        """x : (B, input_channel, H, W); returns (p2, p3, p4, p5)."""
        return self._build(x, train=True)

    def predict(self, x):
        """x : (B, input_channel, H, W); returns (p2, p3, p4, p5)."""
        return self._build(x, train=False)
