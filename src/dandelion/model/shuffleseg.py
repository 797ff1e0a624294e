"""ShuffleSeg (Gamal et al. 2018): ShuffleNet encoder, FCN-8s style skip decoder."""

from __future__ import annotations

from dandelion.activation import relu
from dandelion.model._checks import check_positive_int
from dandelion.model.resnet import apply_bn
from dandelion.model.shufflenet import model_ShuffleNet
from dandelion.module import BatchNorm, Conv2D, ConvTransposed2D, Module


class ShuffleNet(model_ShuffleNet):
    """``model_ShuffleNet`` plus a 1x1 class-score convolution ``conv2`` on stage 4: the
    encoder of ``model_ShuffleSeg`` (its class name is part of the saved weight names).

    ``encode(x, train)`` returns (stage 2 output, stage 3 output, class scores of stage 4).
    """

    def __init__(self, Nclass, **kwargs):
        super().__init__(**kwargs)
        self.conv2 = Conv2D(self.stage_channels[3], Nclass, kernel_size=(1, 1))

    def encode(self, x, train):
        s2, s3, s4 = self.stage_outputs(x, train)
        return s2, s3, self.conv2.forward(s4)

    def forward(self, x):
        """x : (B, in_channels, H, W); returns class scores (B, Nclass, H/32, W/32)."""
        return self.encode(x, True)[2]

    def predict(self, x):
        """x : (B, in_channels, H, W); returns class scores (B, Nclass, H/32, W/32)."""
        return self.encode(x, False)[2]


class model_ShuffleSeg(Module):
    """Semantic segmentation with a ShuffleNet encoder and a skip-connection decoder.

    Decoder: stage-4 scores upsampled x2 (convT1, bn1) plus 1x1 scores of stage 3 (conv1,
    bn2); upsampled x2 (convT2, bn3) plus 1x1 scores of stage 2 (conv2, bn4); upsampled
    x8 (convT3) to the input size. No activation in the decoder, as in the paper, and no
    softmax at the end: the model returns convT3's raw class scores, as the old library's
    did (apply ``softmax`` over axis 1, or a loss on logits, yourself). bn1..bn4 exist
    whatever ``SF_batchnorm_mode`` is, as in the old library.

    Parameters
    ----------
    in_channels, Nclass : int
    SF_group_num, SF_stage_channels, SF_stack_size : the encoder's ``group_num``,
        ``stage_channels``, ``stack_size`` (see ``model_ShuffleNet``)
    SF_batchnorm_mode, SF_activation : the encoder's ``batchnorm_mode`` and ``activation``
        (see ``model_ShuffleNet``); the old library's names

    ``forward(x)`` / ``predict(x)``: x (B, in_channels, H, W), H and W divisible by 32;
    returns class scores (B, Nclass, H, W).
    """

    def __init__(
        self,
        in_channels=3,
        Nclass=6,
        SF_group_num=4,
        SF_stage_channels=(24, 272, 544, 1088),
        SF_stack_size=(3, 7, 3),
        SF_batchnorm_mode=1,
        SF_activation=relu,
    ):
        super().__init__()
        check_positive_int("model_ShuffleSeg", "Nclass", Nclass)
        self.encoder = ShuffleNet(
            Nclass, in_channels=in_channels, group_num=SF_group_num, stage_channels=SF_stage_channels,
            stack_size=SF_stack_size, batchnorm_mode=SF_batchnorm_mode, activation=SF_activation,
        )
        stage_channels = self.encoder.stage_channels

        def bn():
            return BatchNorm(input_shape=(None, Nclass, None, None))

        self.convT1 = ConvTransposed2D(Nclass, Nclass, kernel_size=(4, 4), stride=(2, 2), pad=(1, 1))
        self.bn1 = bn()
        self.conv1 = Conv2D(stage_channels[2], Nclass, kernel_size=(1, 1))
        self.bn2 = bn()
        self.convT2 = ConvTransposed2D(Nclass, Nclass, kernel_size=(4, 4), stride=(2, 2), pad=(1, 1))
        self.bn3 = bn()
        self.conv2 = Conv2D(stage_channels[1], Nclass, kernel_size=(1, 1))
        self.bn4 = bn()
        self.convT3 = ConvTransposed2D(Nclass, Nclass, kernel_size=(16, 16), stride=(8, 8), pad=(4, 4))

    def _build(self, x, train):
        s2, s3, scores = self.encoder.encode(x, train)
        y = apply_bn(self.bn1, self.convT1.forward(scores), train) + apply_bn(self.bn2, self.conv1.forward(s3), train)
        y = apply_bn(self.bn3, self.convT2.forward(y), train) + apply_bn(self.bn4, self.conv2.forward(s2), train)
        return self.convT3.forward(y)

    def forward(self, x):
        """x : (B, in_channels, H, W); returns (B, Nclass, H, W) class scores."""
        return self._build(x, train=True)

    def predict(self, x):
        """x : (B, in_channels, H, W); returns (B, Nclass, H, W) class scores."""
        return self._build(x, train=False)
