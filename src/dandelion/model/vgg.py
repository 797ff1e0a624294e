"""VGG-16 (Simonyan & Zisserman 2015, configuration D)."""

from __future__ import annotations

from dandelion.activation import relu, softmax
from dandelion.functional import pool_2d
from dandelion.model._checks import check_positive_int
from dandelion.module import Conv2D, Dense, Dropout, Module

# (block, number of convolutions, output channels): configuration D of the paper.
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


def vgg16_convolutions(module, channel, kernel_size, border_mode, flip_filters, widths=None):
    """Assign the 13 convolutions ``conv1_1 ... conv5_3`` to ``module`` in weight order.

    widths : five output channel counts, one per block (default the paper's).
    Returns the list of (block, [attribute names]).
    """
    widths = [c for _, _, c in VGG16_BLOCKS] if widths is None else list(widths)
    blocks = []
    in_channels = channel
    for (block, count, _), out_channels in zip(VGG16_BLOCKS, widths):
        names = []
        for i in range(1, count + 1):
            name = f"conv{block}_{i}"
            conv = Conv2D(
                in_channels, out_channels, kernel_size=kernel_size, pad=border_mode, flip_filters=flip_filters
            )
            setattr(module, name, conv)
            names.append(name)
            in_channels = out_channels
        blocks.append((block, names))
    return blocks


class model_VGG16(Module):
    """VGG-16 image classifier: 13 3x3 convolutions in 5 blocks, each block max-pooled, then
    fully connected layers of 4096, 4096 and ``Nclass`` units.

    Parameters
    ----------
    channel, im_height, im_width : int
        Input image layout (B, channel, im_height, im_width); height and width must be
        divisible by 32 (five 2x2 poolings).
    Nclass : int
    kernel_size : int or pair
    border_mode : padding of every convolution, as ``Conv2D``'s ``pad``
    flip_filters : bool
        False (cross-correlation) matches weights trained with Caffe/Lasagne.

    ``forward(x)`` (B, channel, im_height, im_width) -> class probabilities (B, Nclass),
    with dropout 0.5 after fc6 and fc7 as in the paper; ``predict(x)`` without dropout.
    Weights: ``conv1_1 ... conv5_3`` then ``fc6, fc7, fc8`` (the dropout modules hold no
    weights).
    """

    def __init__(
        self, channel=3, im_height=224, im_width=224, Nclass=1000, kernel_size=3, border_mode=(1, 1), flip_filters=False
    ):
        super().__init__()
        where = "model_VGG16"
        for argument, value in (("channel", channel), ("im_height", im_height), ("im_width", im_width), ("Nclass", Nclass)):
            check_positive_int(where, argument, value)
        for argument, value in (("im_height", im_height), ("im_width", im_width)):
            if value % 32 != 0:
                raise ValueError(f"{where}: {argument} must be divisible by 32 (five 2x2 poolings), got {value}")
        self.blocks = vgg16_convolutions(self, channel, kernel_size, border_mode, flip_filters)
        fc_in = 512 * (im_height // 32) * (im_width // 32)
        self.fc6 = Dense(input_dims=fc_in, output_dim=4096)
        self.fc7 = Dense(input_dims=4096, output_dim=4096)
        self.fc8 = Dense(input_dims=4096, output_dim=Nclass)
        self.dropout6 = Dropout()
        self.dropout7 = Dropout()

    def _features(self, x):
        for _, names in self.blocks:
            for name in names:
                x = relu(getattr(self, name).forward(x))
            x = pool_2d(x, ws=(2, 2), mode="max")
        return x.flatten(2)

    def forward(self, x):
        """x : (B, channel, im_height, im_width); returns (B, Nclass) probabilities."""
        x = self._features(x)
        x = self.dropout6.forward(relu(self.fc6.forward(x)), p=0.5)
        x = self.dropout7.forward(relu(self.fc7.forward(x)), p=0.5)
        return softmax(self.fc8.forward(x))

    def predict(self, x):
        """x : (B, channel, im_height, im_width); returns (B, Nclass) probabilities."""
        x = self._features(x)
        x = relu(self.fc7.forward(relu(self.fc6.forward(x))))
        return softmax(self.fc8.forward(x))
