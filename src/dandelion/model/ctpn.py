"""CTPN, the connectionist text proposal network (Tian et al. 2016)."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.activation import relu, softmax
from dandelion.functional import pool_2d
from dandelion.model._checks import check_batchnorm_mode, check_positive_int
from dandelion.model.resnet import apply_bn
from dandelion.model.vgg import vgg16_convolutions
from dandelion.module import LSTM, BatchNorm, Conv2D, Module


class model_CTPN(Module):
    """CTPN: VGG-16 convolutions up to conv5_3 (stride 16), a 3x3 ``conv_rpn``, a
    bidirectional LSTM along every feature-map row, and 1x1 convolutions for the text /
    non-text scores and the vertical box regression of ``k`` anchors per position.

    Parameters
    ----------
    k : int
        Anchors per position.
    channel : int
        Input channels.
    base_n_filters : int
        Width of the first VGG block (paper 64); blocks 1-5 have b, 2b, 4b, 8b, 8b.
    rpn_channels : int, optional
        Width of ``conv_rpn``; default 8b (512 in the paper).
    hidden_dim : int
        Hidden size of each LSTM direction (paper 128).
    batchnorm_mode : {0, 1}
        1 normalises after the last convolution of every VGG block (bn1..bn5).
    flip_filters : bool, as ``Conv2D`` (False for Caffe-trained VGG weights)

    ``forward(x)`` / ``predict(x)``: x (B, channel, H, W), H and W divisible by 16;
    returns ``(cls_prob, bbox_pred)``: cls_prob (B, H/16, W/16, k, 2) text / non-text
    probabilities (softmax over the last axis) and bbox_pred (B, H/16, W/16, k, 2),
    the vertical centre and height offsets.
    """

    def __init__(self, k=10, channel=3, base_n_filters=64, rpn_channels=None, hidden_dim=128, batchnorm_mode=1, flip_filters=False):
        super().__init__()
        where = "model_CTPN"
        for argument, value in (("k", k), ("channel", channel), ("base_n_filters", base_n_filters), ("hidden_dim", hidden_dim)):
            check_positive_int(where, argument, value)
        if check_batchnorm_mode(where, batchnorm_mode) == 2:
            raise ValueError(f"{where}: batchnorm_mode must be 0 or 1 (CTPN has no 'last convolution' mode), got 2")
        b = base_n_filters
        rpn_channels = 8 * b if rpn_channels is None else check_positive_int(where, "rpn_channels", rpn_channels)
        self.k = k
        widths = (b, 2 * b, 4 * b, 8 * b, 8 * b)
        self.blocks = vgg16_convolutions(self, channel, 3, (1, 1), flip_filters, widths=widths)
        self.bns = {} if batchnorm_mode == 0 else {
            f"bn{i}": BatchNorm(input_shape=(None, width, None, None)) for i, width in enumerate(widths, start=1)
        }
        self.conv_rpn = Conv2D(widths[-1], rpn_channels, kernel_size=(3, 3), pad="same", flip_filters=flip_filters)
        self.lstm_f = LSTM(rpn_channels, hidden_dim)
        self.lstm_b = LSTM(rpn_channels, hidden_dim)
        self.conv_cls_score = Conv2D(2 * hidden_dim, 2 * k, kernel_size=(1, 1), flip_filters=flip_filters)
        self.conv_bbox_pred = Conv2D(2 * hidden_dim, 2 * k, kernel_size=(1, 1), flip_filters=flip_filters)

    def _build(self, x, train):
        for block, names in self.blocks:
            bn = self.bns.get(f"bn{block}")
            for name in names[:-1]:
                x = relu(getattr(self, name).forward(x))
            x = relu(apply_bn(bn, getattr(self, names[-1]).forward(x), train))
            if block < 5:
                x = pool_2d(x, ws=(2, 2), mode="max")
        x = relu(self.conv_rpn.forward(x))
        B, C, H, W = x.shape
        # Every row of the feature map is a sequence along the width: (W, B*H, C).
        seq = x.dimshuffle(3, 0, 2, 1).reshape((W, B * H, C))
        h = pt.concatenate([self.lstm_f.forward(seq), self.lstm_b.forward(seq, backward=True)], axis=2)
        h = h.reshape((W, B, H, h.shape[2])).dimshuffle(1, 3, 2, 0)
        k = self.k

        def per_anchor(y):
            # (B, 2k, H, W) -> (B, H, W, k, 2)
            return y.dimshuffle(0, 2, 3, 1).reshape((B, H, W, k, 2))

        cls_prob = softmax(per_anchor(self.conv_cls_score.forward(h)))
        bbox_pred = per_anchor(self.conv_bbox_pred.forward(h))
        return cls_prob, bbox_pred

    def forward(self, x):
        """x : (B, channel, H, W); returns (cls_prob, bbox_pred), each (B, H/16, W/16, k, 2)."""
        return self._build(x, train=True)

    def predict(self, x):
        """x : (B, channel, H, W); returns (cls_prob, bbox_pred), each (B, H/16, W/16, k, 2)."""
        return self._build(x, train=False)
