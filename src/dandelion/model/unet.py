"""U-Net (Ronneberger et al. 2015) with batch normalisation after every convolution."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.activation import relu, softmax
from dandelion.functional import align_crop, pool_2d
from dandelion.model._checks import check_positive_int
from dandelion.model.resnet import apply_bn
from dandelion.module import BatchNorm, Conv2D, ConvTransposed2D, Module


class model_Unet(Module):
    """U-Net: four contracting levels (two convolutions each, then 2x2 max pooling), two
    encoding convolutions, four expanding levels (2x2 stride-2 transposed convolution,
    concatenation with the contracting level's output, two convolutions), a 1x1 output
    convolution. Level k (1-based) has ``base_n_filters * 2**(k-1)`` filters, the
    encoding ``base_n_filters * 16``. Every convolution is followed by batch
    normalisation and ReLU.

    Parameters
    ----------
    channel, im_height, im_width : int
        Input layout (B, channel, im_height, im_width). With border_mode 'same' the
        sizes must be divisible by 16; other border modes crop the skip connections at
        the centre, as in the paper, and the output is smaller than the input.
    Nclass : int
    kernel_size : int or pair
    border_mode : padding of the convolutions, as ``Conv2D``'s ``pad``
    base_n_filters : int
    output_activation : callable applied to the (B, H, W, Nclass) scores (last axis)

    ``forward(x)`` / ``predict(x)``: (B, channel, H, W) -> (B, H_out, W_out, Nclass).
    """

    def __init__(
        self,
        channel=1,
        im_height=128,
        im_width=128,
        Nclass=2,
        kernel_size=3,
        border_mode="same",
        base_n_filters=64,
        output_activation=softmax,
    ):
        super().__init__()
        where = "model_Unet"
        for argument, value in (
            ("channel", channel), ("im_height", im_height), ("im_width", im_width), ("Nclass", Nclass), ("base_n_filters", base_n_filters)
        ):
            check_positive_int(where, argument, value)
        if border_mode == "same":
            for argument, value in (("im_height", im_height), ("im_width", im_width)):
                if value % 16 != 0:
                    raise ValueError(f"{where}: {argument} must be divisible by 16 (four 2x2 poolings), got {value}")
        self.output_activation = output_activation
        b = base_n_filters

        def conv(name, bn_name, c_in, c_out):
            setattr(self, name, Conv2D(c_in, c_out, kernel_size=kernel_size, pad=border_mode))
            setattr(self, bn_name, BatchNorm(input_shape=(None, c_out, None, None)))

        c_in = channel
        for level in range(1, 5):
            width = b * 2 ** (level - 1)
            conv(f"contr{level}_1", f"bn{level}_1", c_in, width)
            conv(f"contr{level}_2", f"bn{level}_2", width, width)
            c_in = width
        conv("encode_1", "bn_enc_1", c_in, 16 * b)
        conv("encode_2", "bn_enc_2", 16 * b, 16 * b)
        c_in = 16 * b
        for level in range(1, 5):
            skip = b * 2 ** (4 - level)
            self.__setattr__(f"upscale_{level}", ConvTransposed2D(c_in, c_in, kernel_size=(2, 2), stride=(2, 2)))
            self.__setattr__(f"bn_ups_{level}", BatchNorm(input_shape=(None, c_in, None, None)))
            conv(f"expand{level}_1", f"bn_epd{level}_1", c_in + skip, skip)
            conv(f"expand{level}_2", f"bn_epd{level}_2", skip, skip)
            c_in = skip
        self.output = Conv2D(b, Nclass, kernel_size=(1, 1))

    def _build(self, x, train):
        def unit(conv, bn, x):
            return relu(apply_bn(getattr(self, bn), getattr(self, conv).forward(x), train))

        skips = []
        for level in range(1, 5):
            x = unit(f"contr{level}_1", f"bn{level}_1", x)
            x = unit(f"contr{level}_2", f"bn{level}_2", x)
            skips.append(x)
            x = pool_2d(x, ws=(2, 2), mode="max")
        x = unit("encode_1", "bn_enc_1", x)
        x = unit("encode_2", "bn_enc_2", x)
        for level in range(1, 5):
            x = unit(f"upscale_{level}", f"bn_ups_{level}", x)
            skip, x = align_crop([skips[4 - level], x], [None, None, "center", "center"])
            x = pt.concatenate([x, skip], axis=1)
            x = unit(f"expand{level}_1", f"bn_epd{level}_1", x)
            x = unit(f"expand{level}_2", f"bn_epd{level}_2", x)
        x = self.output.forward(x)
        return self.output_activation(x.dimshuffle(0, 2, 3, 1))

    def forward(self, x):
        """x : (B, channel, H, W); returns (B, H_out, W_out, Nclass)."""
        return self._build(x, train=True)

    def predict(self, x):
        """x : (B, channel, H, W); returns (B, H_out, W_out, Nclass)."""
        return self._build(x, train=False)
