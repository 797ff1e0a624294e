"""Model zoo: weight names and order (Theano-era layouts), parameter counts, bad arguments.

Nothing here compiles: building a module allocates its weights and nothing else.
Expected names are written out from the old library's layouts (zoo-weights spec);
expected parameter counts from the papers' layer tables, and for the ResNet, ShuffleNet and
FPN models from the old library's wiring (zoo-weights spec), whose weight-element totals
(BatchNorm's running statistics included) are quoted there for one configuration each.
"""

from __future__ import annotations

import numpy as np
import pytest

from dandelion.model import (
    Alternate_2D_LSTM,
    DSConv2D,
    ResNet_bottleneck,
    ShuffleUnit,
    ShuffleUnit_Stack,
    ShuffleUnit_v2,
    ShuffleUnit_v2_Stack,
    model_CTPN,
    model_FPN,
    model_ShuffleNet,
    model_ShuffleNet_v2,
    model_ShuffleSeg,
    model_Unet,
    model_VGG16,
)
from dandelion.module import Module

CONV = ("W", "b")
BN = ("beta", "gamma", "mean", "inv_std")
LSTM_VARS = ("W_in", "b_in", "W_hid", "w_cell_to_igate", "w_cell_to_fgate", "w_cell_to_ogate")


def names(module):
    return [name for _, name in module.get_weights()]


def owned(owner, variables):
    return [f"{v}@{owner}" for v in variables]


def n_trainable(module):
    return sum(int(np.prod(p.get_value().shape)) for p in module.collect_params())


def n_weights(module):
    """Elements of everything get_weights() saves (BatchNorm: beta, gamma, mean, inv_std)."""
    return sum(int(np.prod(value.shape)) for value, _ in module.get_weights())


def conv_count(c_in, c_out, k=3, groups=1):
    return c_out * (c_in // groups) * k * k + c_out


BN_WEIGHTS = 4  # per channel: beta, gamma, mean, inv_std


def ds_count(c_in, c_out):
    """DSConv2D 3x3: depthwise (one 3x3 filter and a bias per channel), then pointwise 1x1."""
    return (c_in * 9 + c_in) + conv_count(c_in, c_out, 1)


# ------------------------------------------------------------------ weight names and order
def test_vgg16_names():
    expected = []
    for block, count in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
        for i in range(1, count + 1):
            expected += owned(f"Conv2D|conv{block}_{i}", CONV)
    for fc in ("fc6", "fc7", "fc8"):
        expected += owned(f"Dense|{fc}", CONV)
    assert names(model_VGG16(channel=3, im_height=32, im_width=32, Nclass=5)) == expected


@pytest.mark.parametrize("mode, bns", [(1, ("bn1", "bn2", "bn3")), (2, ("bn3",)), (0, ())])
def test_resnet_bottleneck_names(mode, bns):
    expected = [n for c in ("conv1", "conv2", "conv3") for n in owned(f"Conv2D|{c}", CONV)]
    expected += [n for bn in bns for n in owned(f"BatchNorm|{bn}", BN)]
    assert names(ResNet_bottleneck(outer_channel=8, inner_channel=4, batchnorm_mode=mode)) == expected


def shuffle_v2_names(stride2, suffix=""):
    def ds(key):
        return owned(f"Conv2D|conv_depthwise@DSConv2D|{key}{suffix}", CONV) + owned(
            f"Conv2D|conv_pointwise@DSConv2D|{key}{suffix}", CONV
        )

    expected = owned(f"Conv2D|conv1{suffix}", CONV) + ds("conv2") + owned(f"Conv2D|conv3{suffix}", CONV)
    if stride2:
        expected += ds("conv4") + owned(f"Conv2D|conv5{suffix}", CONV)
    for i in range(1, 6 if stride2 else 4):
        expected += owned(f"BatchNorm|bn{i}{suffix}", BN)
    return expected


def test_shuffleunit_v2_names_default_out_channels():
    unit = ShuffleUnit_v2(in_channels=8)  # out_channels=None crashed in the old library
    assert unit.out_channels == 8
    assert names(unit) == shuffle_v2_names(stride2=False)


def test_shuffleunit_v2_names_stride2():
    assert names(ShuffleUnit_v2(in_channels=8, out_channels=12, stride=2)) == shuffle_v2_names(stride2=True)


def test_shufflenet_v2_names_nest_their_parents():
    model = model_ShuffleNet_v2(in_channels=3, stage_channels=[8, 16, 32, 64, 128], stack_size=[1, 1, 1])
    expected = owned("Conv2D|conv1", CONV) + owned("BatchNorm|bn1", BN)
    for stage in (2, 3, 4):
        for unit in (0, 1):
            expected += shuffle_v2_names(unit == 0, f"@ShuffleUnit_v2|shuffleunit{unit}@ShuffleUnit_v2_Stack|stage{stage}")
    expected += owned("Conv2D|conv5", CONV) + owned("BatchNorm|bn5", BN)
    assert names(model) == expected


def test_unet_names():
    def unit(conv, bn, cls="Conv2D"):
        return owned(f"{cls}|{conv}", CONV) + owned(f"BatchNorm|{bn}", BN)

    expected = []
    for level in range(1, 5):
        expected += unit(f"contr{level}_1", f"bn{level}_1") + unit(f"contr{level}_2", f"bn{level}_2")
    expected += unit("encode_1", "bn_enc_1") + unit("encode_2", "bn_enc_2")
    for level in range(1, 5):
        expected += unit(f"upscale_{level}", f"bn_ups_{level}", "ConvTransposed2D")
        expected += unit(f"expand{level}_1", f"bn_epd{level}_1") + unit(f"expand{level}_2", f"bn_epd{level}_2")
    expected += owned("Conv2D|output", CONV)
    assert names(model_Unet(channel=1, im_height=16, im_width=16, Nclass=2, base_n_filters=4)) == expected


def test_fpn_names():
    expected = []
    for i in range(1, 5):
        expected += owned(f"Conv2D|conv{i}", CONV) + owned(f"BatchNorm|bn{i}", BN)
    for block in range(1, 5):
        owner = f"@ResNet_bottleneck|res_block{block}"
        expected += [n for c in ("conv1", "conv2", "conv3") for n in owned(f"Conv2D|{c}{owner}", CONV)]
        expected += [n for bn in ("bn1", "bn2", "bn3") for n in owned(f"BatchNorm|{bn}{owner}", BN)]
    for i in range(5, 12):
        expected += owned(f"Conv2D|conv{i}", CONV)
    assert names(model_FPN(input_channel=3, base_n_filters=4)) == expected


def test_shuffleseg_names():
    model = model_ShuffleSeg(in_channels=1, Nclass=3, SF_group_num=2, SF_stage_channels=[8, 16, 32, 64], SF_stack_size=[1, 1, 1])
    got = names(model)
    assert got[:2] == owned("Conv2D|conv1@ShuffleNet|encoder", CONV)
    deepest = "W@Conv2D|conv_depthwise@DSConv2D|conv2@ShuffleUnit|shuffleunit1@ShuffleUnit_Stack|stage4@ShuffleNet|encoder"
    assert deepest in got
    decoder = owned("Conv2D|conv2@ShuffleNet|encoder", CONV)
    for conv, bn in (("ConvTransposed2D|convT1", "bn1"), ("Conv2D|conv1", "bn2"), ("ConvTransposed2D|convT2", "bn3"), ("Conv2D|conv2", "bn4")):
        decoder += owned(conv, CONV) + owned(f"BatchNorm|{bn}", BN)
    decoder += owned("ConvTransposed2D|convT3", CONV)
    assert got[-len(decoder):] == decoder
    # encoder: conv1, bn1, then 3 stages x 2 units x (4 convs + 3 BNs), then conv2
    assert len(got) == 2 + 4 + 3 * 2 * (4 * 2 + 3 * 4) + len(decoder)


def test_shuffleseg_takes_the_old_encoder_keywords():
    """The old signature named the encoder's options SF_batchnorm_mode and SF_activation."""
    from dandelion.activation import elu

    kwargs = dict(in_channels=1, Nclass=3, SF_group_num=2, SF_stage_channels=[8, 16, 32, 64], SF_stack_size=[1, 1, 1])
    model = model_ShuffleSeg(**kwargs, SF_batchnorm_mode=0, SF_activation=elu)
    units = [m for _, m in model.named_modules() if hasattr(m, "activation")]
    assert model.encoder.batchnorm_mode == 0 and units and all(m.activation is elu for m in units)
    assert len(names(model)) < len(names(model_ShuffleSeg(**kwargs)))  # the units' BatchNorms are gone


def test_shufflenet_names():
    model = model_ShuffleNet(in_channels=3, group_num=2, stage_channels=[8, 16, 32, 64], stack_size=[1, 1, 1])
    got = names(model)
    assert got[:6] == owned("Conv2D|conv1", CONV) + owned("BatchNorm|bn1", BN)
    assert got[-4:] == owned("BatchNorm|bn3@ShuffleUnit|shuffleunit1@ShuffleUnit_Stack|stage4", BN)
    assert len(got) == 6 + 3 * 2 * (4 * 2 + 3 * 4)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_alternate_2d_lstm_names(mode):
    expected = owned("LSTM|lstm_h", LSTM_VARS) + owned("LSTM|lstm_w", LSTM_VARS)
    assert names(Alternate_2D_LSTM(input_dims=4, hidden_dim=3, mode=mode)) == expected


def test_ctpn_names():
    expected = []
    for block, count in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
        for i in range(1, count + 1):
            expected += owned(f"Conv2D|conv{block}_{i}", CONV)
    for i in range(1, 6):
        expected += owned(f"BatchNorm|bn{i}", BN)
    expected += owned("Conv2D|conv_rpn", CONV) + owned("LSTM|lstm_f", LSTM_VARS) + owned("LSTM|lstm_b", LSTM_VARS)
    expected += owned("Conv2D|conv_cls_score", CONV) + owned("Conv2D|conv_bbox_pred", CONV)
    assert names(model_CTPN(k=2, channel=1, base_n_filters=2, hidden_dim=3)) == expected


def test_nested_names_are_unique_and_load_by_name():
    source = model_FPN(input_channel=1, base_n_filters=2)
    target = model_FPN(input_channel=1, base_n_filters=2)
    saved = source.get_weights()
    assert len({n for _, n in saved}) == len(saved)
    target.set_weights_by_name(saved)
    for (a, _), (b, _) in zip(saved, target.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_zoo_model_inside_a_user_module_is_renamed():
    class Net(Module):
        def __init__(self):
            super().__init__()
            self.block = ResNet_bottleneck(outer_channel=4, inner_channel=2)

    assert "W@Conv2D|conv1@ResNet_bottleneck|block" in names(Net())


# ------------------------------------------------------------------------- parameter counts
VGG16_CONFIG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def test_vgg16_parameter_count_imagenet():
    # The widely quoted figure for VGG-16 on 3x224x224 with 1000 classes.
    assert n_trainable(model_VGG16()) == 138_357_544


def test_vgg16_parameter_count_formula():
    channel, h, w, n_class = 2, 64, 32, 7
    total, c_in = 0, channel
    for width in VGG16_CONFIG_D:
        if width != "M":
            total += conv_count(c_in, width)
            c_in = width
    fc_in = 512 * (h // 32) * (w // 32)
    total += (fc_in + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * n_class
    assert n_trainable(model_VGG16(channel=channel, im_height=h, im_width=w, Nclass=n_class)) == total


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_resnet_bottleneck_parameter_count(mode):
    o, i = 12, 5
    convs = conv_count(o, i, 1) + conv_count(i, i, 3) + conv_count(i, o, 1)
    bns = {0: 0, 1: 2 * (i + i + o), 2: 2 * o}[mode]
    assert n_trainable(ResNet_bottleneck(outer_channel=o, inner_channel=i, batchnorm_mode=mode)) == convs + bns


def test_dsconv_parameter_count():
    assert n_trainable(DSConv2D(4, 6, kernel_size=5)) == (4 * 25 + 4) + (4 * 6 + 6)


def test_shuffleunit_parameter_count():
    c_in, c_out, g = 8, 20, 2
    inner = 6  # explicit, divisible by g
    branch = c_out - c_in
    expected = conv_count(c_in, inner, 1, g) + (inner * 9 + inner) + (inner * inner + inner) + conv_count(inner, branch, 1, g)
    expected += 2 * (inner + inner + branch)
    unit = ShuffleUnit(c_in, inner_channels=inner, out_channels=c_out, group_num=g, stride=2, fusion_mode="concat")
    assert n_trainable(unit) == expected


def test_shuffleunit_v2_parameter_count():
    c_in, c_out = 6, 10
    right, left = c_out - c_out // 2, c_out // 2
    expected = conv_count(c_in, right, 1) + (right * 9 + right) + (right * right + right) + conv_count(right, right, 1)
    expected += (c_in * 9 + c_in) + (c_in * c_in + c_in) + conv_count(c_in, left, 1)
    expected += 2 * (3 * right + c_in + left)
    assert n_trainable(ShuffleUnit_v2(c_in, c_out, stride=2)) == expected
    half = 3
    same = conv_count(half, half, 1) + (half * 9 + half) + (half * half + half) + conv_count(half, half, 1) + 2 * 3 * half
    assert n_trainable(ShuffleUnit_v2(6)) == same


# Old wiring (zoo-weights spec): each unit's bottleneck is its own in_channels // 4; stage 2
# is ungrouped; a 'concat' unit's branch makes out - in channels; bn1 always exists.
def shuffleunit_weights(c_in, c_out, groups, concat):
    inner = c_in // 4
    branch = c_out - c_in if concat else c_out
    convs = conv_count(c_in, inner, 1, groups) + ds_count(inner, inner) + conv_count(inner, branch, 1, groups)
    return convs + BN_WEIGHTS * (inner + inner + branch)


def shufflenet_weights(c_in, groups, stage_channels, stack_size):
    total = conv_count(c_in, stage_channels[0]) + BN_WEIGHTS * stage_channels[0]
    for i in range(3):
        g = 1 if i == 0 else groups
        c, c_next = stage_channels[i], stage_channels[i + 1]
        total += shuffleunit_weights(c, c_next, g, True) + stack_size[i] * shuffleunit_weights(c_next, c_next, g, False)
    return total


def test_shufflenet_weight_count_is_the_old_librarys():
    # zoo-weights spec: 4,116 weight elements in the old library.
    config = dict(in_channels=3, group_num=2, stage_channels=(8, 16, 32, 64), stack_size=(1, 1, 1))
    assert shufflenet_weights(3, 2, (8, 16, 32, 64), (1, 1, 1)) == 4116
    assert n_weights(model_ShuffleNet(**config)) == 4116


def test_shufflenet_weight_count_formula():
    assert n_weights(model_ShuffleNet(1, 3, (12, 24, 48, 96), (2, 0, 1))) == shufflenet_weights(1, 3, (12, 24, 48, 96), (2, 0, 1))


def test_shuffleunit_default_inner_width_is_a_quarter_of_its_input():
    assert n_weights(ShuffleUnit(16, group_num=2)) == shuffleunit_weights(16, 16, 2, False)
    stack = ShuffleUnit_Stack(8, 24, group_num=2, stack_size=1)
    assert n_weights(stack) == shuffleunit_weights(8, 24, 2, True) + shuffleunit_weights(24, 24, 2, False)


def shufflenet_v2_unit_weights(c_in, c_out, down):
    if not down:
        h = c_in // 2
        return conv_count(h, h, 1) + ds_count(h, h) + conv_count(h, h, 1) + BN_WEIGHTS * 3 * h
    h = c_out // 2
    branch = conv_count(c_in, h, 1) + ds_count(h, h) + conv_count(h, h, 1) + BN_WEIGHTS * 3 * h
    shortcut = ds_count(c_in, c_in) + conv_count(c_in, h, 1) + BN_WEIGHTS * (c_in + h)
    return branch + shortcut


@pytest.mark.parametrize("c_in, stage_channels, stack_size", [(3, (8, 16, 32, 64, 128), (1, 1, 1)), (1, (4, 8, 16, 32, 12), (1, 0, 2))])
def test_shufflenet_v2_weight_count(c_in, stage_channels, stack_size):
    total = conv_count(c_in, stage_channels[0]) + BN_WEIGHTS * stage_channels[0]
    for i in range(3):
        c, c_next = stage_channels[i], stage_channels[i + 1]
        total += shufflenet_v2_unit_weights(c, c_next, True) + stack_size[i] * shufflenet_v2_unit_weights(c_next, c_next, False)
    total += conv_count(stage_channels[3], stage_channels[4], 1) + BN_WEIGHTS * stage_channels[4]
    assert n_weights(model_ShuffleNet_v2(c_in, stage_channels, stack_size)) == total


@pytest.mark.parametrize("c_in, n_class, groups, stage_channels, stack_size", [
    (1, 3, 2, (8, 16, 32, 64), (1, 1, 1)),
    (3, 5, 3, (12, 24, 48, 96), (0, 1, 0)),
])
def test_shuffleseg_weight_count(c_in, n_class, groups, stage_channels, stack_size):
    n = n_class
    encoder = shufflenet_weights(c_in, groups, stage_channels, stack_size) + conv_count(stage_channels[3], n, 1)
    up2 = n * n * 4 * 4 + n  # transposed 4x4, W (in, out, 4, 4)
    decoder = 2 * up2 + conv_count(stage_channels[2], n, 1) + conv_count(stage_channels[1], n, 1)
    decoder += BN_WEIGHTS * 4 * n + (n * n * 16 * 16 + n)  # bn1..bn4; convT3 16x16
    model = model_ShuffleSeg(c_in, n, groups, stage_channels, stack_size)
    assert n_weights(model) == encoder + decoder


def fpn_weights(c_in, b, batchnorm_mode):
    """Old wiring: conv1..conv4 (3x3 stride 2) of widths b, 2b, 4b, 8b, each with a bn
    (whatever batchnorm_mode) and a residual block of the same width, inner width half;
    conv5..conv11 1x1 to 4b channels from 8b, 4b, 2b, b, 4b, 4b, 4b."""
    widths = (b, 2 * b, 4 * b, 8 * b)
    total, prev = 0, c_in
    for w in widths:
        total += conv_count(prev, w) + BN_WEIGHTS * w
        h = w // 2
        total += conv_count(w, h, 1) + conv_count(h, h, 3) + conv_count(h, w, 1)
        total += BN_WEIGHTS * {0: 0, 1: h + h + w, 2: w}[batchnorm_mode]
        prev = w
    d = 4 * b
    for c in (8 * b, 4 * b, 2 * b, b, d, d, d):
        total += conv_count(c, d, 1)
    return total


def test_fpn_weight_count_is_the_old_librarys():
    # zoo-weights spec: 13,316 weight elements in the old library.
    assert fpn_weights(3, 4, 1) == 13316
    assert n_weights(model_FPN(input_channel=3, base_n_filters=4)) == 13316


@pytest.mark.parametrize("mode", [0, 2])
def test_fpn_weight_count_formula(mode):
    assert n_weights(model_FPN(input_channel=1, base_n_filters=6, batchnorm_mode=mode)) == fpn_weights(1, 6, mode)


def test_unet_parameter_count():
    c, n, b = 2, 3, 4
    total, c_in = 0, c
    for level in range(4):
        width = b * 2**level
        total += conv_count(c_in, width) + conv_count(width, width) + 4 * width
        c_in = width
    total += conv_count(8 * b, 16 * b) + conv_count(16 * b, 16 * b) + 4 * 16 * b
    c_in = 16 * b
    for level in range(4):
        skip = b * 2 ** (3 - level)
        total += conv_count(c_in, c_in, 2) + 2 * c_in  # transposed 2x2 conv, W (in, out, 2, 2)
        total += conv_count(c_in + skip, skip) + conv_count(skip, skip) + 4 * skip
        c_in = skip
    total += conv_count(b, n, 1)
    assert n_trainable(model_Unet(channel=c, im_height=16, im_width=16, Nclass=n, base_n_filters=b)) == total


def test_alternate_2d_lstm_parameter_count():
    d, h = 4, 3

    def lstm(d_in):
        return d_in * 4 * h + 4 * h + h * 4 * h + 3 * h

    for mode, w_in in ((0, d), (1, h), (2, d + h)):
        assert n_trainable(Alternate_2D_LSTM(d, h, mode=mode)) == lstm(d) + lstm(w_in)


# ---------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: ShuffleUnit(8, out_channels=8, group_num=2, fusion_mode="concat"), ["ShuffleUnit", "out_channels", "larger", "8"]),
        (lambda: ShuffleUnit(8, out_channels=16, group_num=2, fusion_mode="add"), ["ShuffleUnit", "out_channels", "16"]),
        (lambda: ShuffleUnit(8, group_num=2, fusion_mode="sum"), ["ShuffleUnit", "fusion_mode", "'add'", "'sum'"]),
        (lambda: ShuffleUnit(12, group_num=5), ["ShuffleUnit", "in_channels", "group_num", "5"]),
        (lambda: ShuffleUnit_v2(8, 12), ["ShuffleUnit_v2", "out_channels", "12", "stride 1"]),
        (lambda: ShuffleUnit_v2(7), ["ShuffleUnit_v2", "in_channels", "7"]),
        (lambda: ResNet_bottleneck(8, 4, batchnorm_mode=3), ["ResNet_bottleneck", "batchnorm_mode", "(0, 1, 2)", "3"]),
        (lambda: model_FPN(base_n_filters=0), ["model_FPN", "base_n_filters", "0"]),
        (lambda: model_VGG16(im_height=100), ["model_VGG16", "im_height", "32", "100"]),
        (lambda: model_Unet(im_height=20), ["model_Unet", "im_height", "16", "20"]),
        (lambda: model_ShuffleNet(stage_channels=[8, 16]), ["model_ShuffleNet", "stage_channels", "4"]),
        (lambda: model_ShuffleNet_v2(stack_size=[1, 1]), ["model_ShuffleNet_v2", "stack_size", "3"]),
        (lambda: ShuffleUnit_Stack(8, 16, group_num=2, stack_size=-1), ["ShuffleUnit_Stack", "stack_size", "-1"]),
        (lambda: ShuffleUnit_v2_Stack(8, 16, stack_size=1.5), ["ShuffleUnit_v2_Stack", "stack_size", "1.5"]),
        (lambda: Alternate_2D_LSTM(4, 3, mode=3), ["Alternate_2D_LSTM", "mode", "(0, 1, 2)", "3"]),
        (lambda: model_CTPN(batchnorm_mode=2), ["model_CTPN", "batchnorm_mode", "2"]),
        (lambda: DSConv2D(0, 4), ["DSConv2D", "in_channels", "0"]),
    ],
)
def test_bad_arguments_name_class_argument_and_values(build, words):
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
