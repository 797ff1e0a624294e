"""Model zoo: forward and predict compile and run on every backend, on small inputs.

Blocks (DSConv2D, ResNet_bottleneck, ShuffleUnit, ShuffleUnit_v2, Alternate_2D_LSTM) are
checked against NumPy references written here: DSConv2D and Alternate_2D_LSTM from the
papers, the ResNet and ShuffleNet blocks from the wiring the old library used (zoo-weights
spec, "Wiring the old zoo used"; its weights only mean something in that wiring). Whole
networks are checked for output shapes (formulas in the tests), probabilities and
forward/predict agreement.
Each backend compiles one function per group of models (compiling is the cost here).
"""

from __future__ import annotations

import numpy as np
import pytest

from dandelion.model import (
    Alternate_2D_LSTM,
    DSConv2D,
    ResNet_bottleneck,
    ShuffleUnit,
    ShuffleUnit_v2,
    model_CTPN,
    model_FPN,
    model_ShuffleNet,
    model_ShuffleNet_v2,
    model_ShuffleSeg,
    model_Unet,
    model_VGG16,
)
from tests.conv_reference import conv2d_ref
from tests.helpers import PY_MODE, assert_close, compile_fn, ftensor, randn
from tests.pool_reference import pool_ref
from tests.recurrent_reference import lstm_sequence

TOL = dict(rtol=2e-4, atol=2e-4)
EPS = 1e-4  # BatchNorm's default


# ------------------------------------------------------------------ NumPy references
def relu(x):
    return np.maximum(x, 0)


def conv(module, x, groups=1):
    W, b = module.W.get_value(), module.b.get_value()
    y = conv2d_ref(x, W, module.stride, module.pads, module.dilation, groups, module.flip_filters)
    return y + b[None, :, None, None]


def dsconv(module, x):
    return conv(module.conv_pointwise, conv(module.conv_depthwise, x, groups=x.shape[1]))


def bn(module, x, train):
    if module is None:
        return x
    if train:
        mean, inv_std = x.mean(axis=(0, 2, 3)), 1 / np.sqrt(x.var(axis=(0, 2, 3)) + EPS)
    else:
        mean, inv_std = module.mean.get_value(), module.inv_std.get_value()

    def c(v):
        return v[None, :, None, None]

    return c(module.gamma.get_value()) * (x - c(mean)) * c(inv_std) + c(module.beta.get_value())


def resnet_ref(m, x, train):
    """Old wiring: act after every normalisation, then the identity sum, nothing after it."""
    y = relu(bn(m.bn1, conv(m.conv1, x), train))
    y = relu(bn(m.bn2, conv(m.conv2, y), train))
    return relu(bn(m.bn3, conv(m.conv3, y), train)) + x


def shuffle_ref(x, groups):
    b, c, h, w = x.shape
    out = np.empty_like(x)
    for g in range(groups):
        for k in range(c // groups):
            out[:, k * groups + g] = x[:, g * (c // groups) + k]
    return out


def shuffle_branch_ref(m, x):
    """ShuffleUnit's residual branch, inference, old wiring: grouped 1x1, act, shuffle,
    depthwise separable 3x3, act, grouped 1x1, act (an activation after every bn)."""
    y = relu(bn(m.bn1, conv(m.conv1, x, m.group_num), False))
    y = shuffle_ref(y, m.group_num)
    y = relu(bn(m.bn2, dsconv(m.conv2, y), False))
    return relu(bn(m.bn3, conv(m.conv3, y, m.group_num), False))


def shuffleunit_ref(m, x):
    """Stride-1 'add' unit, inference: branch + x, no activation after the sum."""
    return shuffle_branch_ref(m, x) + x


def shuffleunit_concat_ref(m, x):
    """Stride-2 'concat' unit, inference: [3x3 average pooling of x counting the padding,
    branch], nothing after the concatenation."""
    shortcut = pool_ref(x, (3, 3), (2, 2), (1, 1), True, "average_inc_pad")
    return np.concatenate([shortcut, shuffle_branch_ref(m, x)], axis=1)


def v2_branch_ref(m, x, train):
    """ShuffleUnit_v2's residual branch: 1x1, act, depthwise separable 3x3 (no act), 1x1, act."""
    y = relu(bn(m.bn1, conv(m.conv1, x), train))
    y = bn(m.bn2, dsconv(m.conv2, y), train)
    return relu(bn(m.bn3, conv(m.conv3, y), train))


def shuffleunit_v2_ref(m, x, train=False):
    """Stride-1 unit: the second half of the channels through the branch, the first half
    unchanged; shuffle(concatenate([branch, first half])) (old order, branch first)."""
    half = x.shape[1] // 2
    return shuffle_ref(np.concatenate([v2_branch_ref(m, x[:, half:], train), x[:, :half]], axis=1), 2)


def shuffleunit_v2_down_ref(m, x, train):
    """Stride-2 unit: both branches read x; the shortcut is depthwise separable 3x3 of
    stride 2, bn4, 1x1, bn5, act; shuffle(concatenate([branch, shortcut]))."""
    shortcut = relu(bn(m.bn5, conv(m.conv5, bn(m.bn4, dsconv(m.conv4, x), train)), train))
    return shuffle_ref(np.concatenate([v2_branch_ref(m, x, train), shortcut], axis=1), 2)


def lstm_ref(lstm, seq):
    H = lstm.hidden_dim
    peep = [getattr(lstm, k).get_value() for k in ("w_cell_to_igate", "w_cell_to_fgate", "w_cell_to_ogate")]
    zeros = np.zeros((seq.shape[1], H))
    return lstm_sequence(seq, lstm.W_in.get_value(), lstm.b_in.get_value(), lstm.W_hid.get_value(), zeros, zeros, peep)[0]


def alternate_ref(m, x):
    Hh, Ww, B, _ = x.shape
    h = np.stack([lstm_ref(m.lstm_h, x[:, j]) for j in range(Ww)], axis=1)
    w_in = {0: x, 1: h, 2: np.concatenate([x, h], axis=3)}[m.mode]
    w = np.stack([lstm_ref(m.lstm_w, w_in[i]) for i in range(Hh)], axis=0)
    return np.concatenate([h, w], axis=3) if m.mode == 0 else w


def randomize_batchnorms(module, rng):
    """Running statistics and affine parameters away from their identity start."""
    from dandelion.module import BatchNorm

    stack = [module]
    while stack:
        m = stack.pop()
        stack.extend(m.sub_modules.values())
        if isinstance(m, BatchNorm):
            n = m.gamma.get_value().shape
            for var, value in ((m.mean, rng.normal(size=n)), (m.inv_std, rng.uniform(0.5, 2, n)),
                               (m.gamma, rng.uniform(0.5, 2, n)), (m.beta, rng.normal(size=n))):
                var.set_value(value.astype("float32"))


# ---------------------------------------------------------------- compiled groups
_CACHE = {}


def compiled(group, backend):
    """(models, inputs, function) of a group, built and compiled once per backend."""
    key = (group, backend)
    if key not in _CACHE:
        models, inputs, outputs = GROUPS[group]()
        updates = {}
        for name, m in models.items():
            # Unnamed models share layer names (FPN's and ShuffleNet_v2's conv5), and
            # PyTensor 3.0's Numba linker makes W_Conv2D_conv5_1 of the second conv5,
            # colliding with VGG's conv5_1; a name per model keeps the names unique.
            m.name = name
            updates.update(m.collect_self_updates())
        fn = compile_fn(list(inputs.values()), outputs, backend, updates=updates)
        _CACHE[key] = (models, inputs, fn)
    return _CACHE[key]


def build_blocks():
    rng = np.random.default_rng(0)
    models = dict(
        ds=DSConv2D(3, 4, pad="same"),
        ds_strided=DSConv2D(3, 5, kernel_size=3, stride=2, pad=(1, 1)),
        res=ResNet_bottleneck(outer_channel=6, inner_channel=3),
        res2=ResNet_bottleneck(outer_channel=6, inner_channel=3, batchnorm_mode=2),
        su=ShuffleUnit(8, inner_channels=4, group_num=2),
        su_cat=ShuffleUnit(8, inner_channels=4, out_channels=12, group_num=2, stride=2, fusion_mode="concat"),
        v2=ShuffleUnit_v2(6),
        v2_down=ShuffleUnit_v2(6, 10, stride=2),
    )
    for m in models.values():
        randomize_batchnorms(m, rng)
    inputs = dict(x3=ftensor("x3", (2, 3, 5, 5)), x6=ftensor("x6", (2, 6, 5, 5)), x8=ftensor("x8", (2, 8, 5, 5)))
    x3, x6, x8 = inputs.values()
    outputs = [
        models["ds"].predict(x3), models["ds_strided"].forward(x3),
        models["res"].forward(x6), models["res"].predict(x6), models["res2"].predict(x6),
        models["su"].predict(x8), models["su_cat"].predict(x8),
        models["v2"].predict(x6), models["v2"].forward(x6), models["v2_down"].forward(x6),
    ]
    return models, inputs, outputs


def build_nets():
    models = dict(
        vgg=model_VGG16(channel=1, im_height=32, im_width=32, Nclass=3),
        fpn=model_FPN(input_channel=1, base_n_filters=2),
        sn=model_ShuffleNet(in_channels=1, group_num=2, stage_channels=[4, 8, 16, 32], stack_size=[1, 0, 1]),
        sn2=model_ShuffleNet_v2(in_channels=1, stage_channels=[4, 8, 16, 32, 12], stack_size=[1, 0, 1]),
        seg=model_ShuffleSeg(in_channels=1, Nclass=3, SF_group_num=2, SF_stage_channels=[4, 8, 16, 32], SF_stack_size=[0, 1, 0]),
        unet=model_Unet(channel=1, im_height=16, im_width=32, Nclass=2, base_n_filters=2),
    )
    inputs = dict(x32=ftensor("x32", (2, 1, 32, 32)), x16=ftensor("x16", (2, 1, 16, 32)))
    x32, x16 = inputs.values()
    outputs = []
    for key, m in models.items():
        x = x16 if key in ("fpn", "unet") else x32
        for f in (m.forward, m.predict):
            y = f(x)
            outputs.extend(y if isinstance(y, tuple) else [y])
    return models, inputs, outputs


def build_recurrent():
    models = dict(
        ctpn=model_CTPN(k=2, channel=1, base_n_filters=2, rpn_channels=4, hidden_dim=3),
        **{f"a2d{mode}": Alternate_2D_LSTM(2, 3, mode=mode) for mode in (0, 1, 2)},
    )
    inputs = dict(img=ftensor("img", (1, 1, 32, 48)), grid=ftensor("grid", (3, 4, 2, 2)))
    img, grid = inputs.values()
    outputs = [*models["ctpn"].forward(img), *models["ctpn"].predict(img)]
    outputs += [models[f"a2d{mode}"].forward(grid) for mode in (0, 1, 2)]
    return models, inputs, outputs


GROUPS = dict(blocks=build_blocks, nets=build_nets, recurrent=build_recurrent)


# ------------------------------------------------------------------------------ tests
def test_blocks_match_numpy_references(backend):
    models, inputs, fn = compiled("blocks", backend)
    x3, x6, x8 = randn(2, 3, 5, 5), randn(2, 6, 5, 5), randn(2, 8, 5, 5)
    m = models
    # References first: the call applies the running-statistics updates of forward().
    expected = [
        dsconv(m["ds"], x3), dsconv(m["ds_strided"], x3),
        resnet_ref(m["res"], x6, train=True), resnet_ref(m["res"], x6, train=False), resnet_ref(m["res2"], x6, train=False),
        shuffleunit_ref(m["su"], x8), shuffleunit_concat_ref(m["su_cat"], x8),
        shuffleunit_v2_ref(m["v2"], x6), shuffleunit_v2_ref(m["v2"], x6, train=True), shuffleunit_v2_down_ref(m["v2_down"], x6, train=True),
    ]
    outs = fn(x3, x6, x8)
    assert outs[1].shape == (2, 5, 3, 3)
    assert outs[6].shape == (2, 12, 3, 3)
    # downsampling: 10 channels at ceil(5 / 2) = 3
    assert outs[9].shape == (2, 10, 3, 3)
    for i, want in enumerate(expected):
        assert_close(outs[i], want, err_msg=f"output {i}", **TOL)


# Whole networks: minutes of cold compilation per backend (C ~150 s, Numba longer), over
# the suite's budget; run with -m slow. The blocks above cover the arithmetic.
@pytest.mark.slow
def test_networks_shapes_and_probabilities(backend):
    models, inputs, fn = compiled("nets", backend)
    x32, x16 = randn(2, 1, 32, 32), randn(2, 1, 16, 32)
    outs = iter(fn(x32, x16))
    vgg_train, vgg_pred = next(outs), next(outs)
    for p in (vgg_train, vgg_pred):
        assert p.shape == (2, 3)
        assert_close(p.sum(axis=1), np.ones(2))
    # FPN: p2..p5 at 1/2 .. 1/16 of (16, 32), 4 * base channels
    fpn = [next(outs) for _ in range(8)]
    for k, (train, pred) in enumerate(zip(fpn[:4], fpn[4:]), start=1):
        assert train.shape == pred.shape == (2, 8, 16 // 2**k, 32 // 2**k)
    for channels in (32, 12):  # ShuffleNet stage 4; ShuffleNet v2 conv5: (H / 32, W / 32)
        for _ in range(2):
            assert next(outs).shape == (2, channels, 1, 1)
    for _ in range(2):  # ShuffleSeg: raw class scores (B, Nclass, H, W) at the input size
        assert next(outs).shape == (2, 3, 32, 32)
    unet_train, unet_pred = next(outs), next(outs)
    for p in (unet_train, unet_pred):
        assert p.shape == (2, 16, 32, 2)
        assert_close(p.sum(axis=-1), np.ones((2, 16, 32)))
    # Fresh BatchNorms (mean 0, inv_std 1, before this call's update) differ from batch statistics.
    assert not np.allclose(unet_train, unet_pred)


@pytest.mark.slow
def test_recurrent_models(backend):
    models, inputs, fn = compiled("recurrent", backend)
    img, grid = randn(1, 1, 32, 48), randn(3, 4, 2, 2)
    outs = fn(img, grid)
    # CTPN: stride 16 -> (32 / 16, 48 / 16) positions, k = 2 anchors, 2 values each
    for out in outs[:4]:
        assert out.shape == (1, 2, 3, 2, 2)
    assert_close(outs[0].sum(axis=-1), np.ones((1, 2, 3, 2)))
    assert_close(outs[2].sum(axis=-1), np.ones((1, 2, 3, 2)))
    for mode, out in zip((0, 1, 2), outs[4:]):
        assert out.shape == (3, 4, 2, 6 if mode == 0 else 3)
        assert_close(out, alternate_ref(models[f"a2d{mode}"], grid.astype("float64")), **TOL)


# Whole-network wiring (where the ReLUs, the pooling and the groups sit), inference, against
# NumPy compositions of the old wiring. Run once, in PY_MODE (the Ops' NumPy kernels, no
# compilation): compiling whole networks costs minutes per backend, and the blocks test
# above already checks every backend's kernels.
def run_py(model, x):
    import pytensor

    xv = ftensor("x", x.shape)
    out = model.predict(xv)
    outs = list(out) if isinstance(out, tuple) else [out]
    return pytensor.function([xv], outs, mode=PY_MODE)(x)


def upsample_repeat(x):
    return x.repeat(2, axis=2).repeat(2, axis=3)


def fpn_ref(m, x):
    """Old model_FPN: four stride-2 stages relu(res(relu(bn(conv)))), then the pyramid."""
    c = []
    for conv_m, bn_m, res in zip((m.conv1, m.conv2, m.conv3, m.conv4), (m.bn1, m.bn2, m.bn3, m.bn4), m.res_blocks.values()):
        x = relu(resnet_ref(res, relu(bn(bn_m, conv(conv_m, x), False)), False))
        c.append(x)
    p5 = relu(conv(m.conv5, c[3]))
    m4 = relu(conv(m.conv6, c[2])) + upsample_repeat(p5)
    m3 = relu(conv(m.conv7, c[1])) + upsample_repeat(m4)
    m2 = relu(conv(m.conv8, c[0])) + upsample_repeat(m3)
    return [relu(conv(m.conv11, m2)), relu(conv(m.conv10, m3)), relu(conv(m.conv9, m4)), p5]


def shufflenet_ref(m, x):
    """Old model_ShuffleNet: relu(bn1(conv1)), unpadded 3x3 stride-2 max pooling, then per
    stage relu(concat unit), relu(add unit)... Returns the three stage outputs."""
    x = pool_ref(relu(bn(m.bn1, conv(m.conv1, x), False)), (3, 3), (2, 2), (0, 0), True, "max")
    outputs = []
    for stage in m.stages.values():
        units = list(stage.units.values())
        x = relu(shuffleunit_concat_ref(units[0], x))
        for unit in units[1:]:
            x = relu(shuffleunit_ref(unit, x))
        outputs.append(x)
    return outputs


# (model_ShuffleSeg's encoder is model_ShuffleNet; its decoder's transposed convolutions
# are checked in the ConvTransposed2D tests.)
@pytest.mark.parametrize("which", ["fpn", "shufflenet"])
def test_networks_follow_the_old_wiring(which):
    rng = np.random.default_rng(3)
    if which == "fpn":
        m, x = model_FPN(input_channel=1, base_n_filters=2), randn(1, 1, 16, 16)
        want = fpn_ref
    else:
        m, x = model_ShuffleNet(1, group_num=2, stage_channels=(4, 8, 16, 32), stack_size=(1, 1, 1)), randn(1, 1, 32, 32)

        def want(m, x):
            return shufflenet_ref(m, x)[-1:]

    randomize_batchnorms(m, rng)
    outs = run_py(m, x)
    expected = want(m, x.astype("float64"))
    assert len(outs) == len(expected)
    for i, (got, w) in enumerate(zip(outs, expected)):
        assert_close(got, w, err_msg=f"output {i}", **TOL)


# Output shapes from the static shapes of the graphs (nothing compiles). Sizes through the
# ShuffleNet backbones (old wiring): conv1 3x3 stride 2 'same' -> ceil(n / 2); 3x3 stride-2
# max pooling without padding -> (n - 3) // 2 + 1; each stage halves, rounding up.
def shufflenet_size(n):
    n = -(-n // 2)
    n = (n - 3) // 2 + 1
    for _ in range(3):
        n = -(-n // 2)
    return n


@pytest.mark.parametrize("shape", [(2, 3, 64, 96), (1, 3, 50, 37)])
def test_shufflenet_output_shapes(shape):
    b, c, h, w = shape
    x = ftensor("x", shape)
    sn = model_ShuffleNet(c, group_num=2, stage_channels=(8, 16, 32, 64), stack_size=(1, 1, 1))
    sn2 = model_ShuffleNet_v2(c, stage_channels=(8, 16, 32, 64, 12), stack_size=(1, 0, 1))
    for f in (sn.forward, sn.predict):
        assert f(x).type.shape == (b, 64, shufflenet_size(h), shufflenet_size(w))
    for f in (sn2.forward, sn2.predict):
        assert f(x).type.shape == (b, 12, shufflenet_size(h), shufflenet_size(w))
    # 64 -> 32 -> 15 -> 8 -> 4 -> 2 by hand, and 37 -> 19 -> 9 -> 5 -> 3 -> 2
    assert shufflenet_size(64) == 2 and shufflenet_size(37) == 2 and shufflenet_size(224) == 7


@pytest.mark.parametrize("shape, n_class", [((2, 1, 32, 32), 3), ((1, 3, 64, 96), 5)])
def test_shuffleseg_returns_raw_scores_at_the_input_size(shape, n_class):
    # (B, Nclass, H, W) class scores, channel axis second, no softmax: the old library's output.
    b, c, h, w = shape
    seg = model_ShuffleSeg(c, n_class, SF_group_num=2, SF_stage_channels=(8, 16, 32, 64), SF_stack_size=(1, 0, 1))
    x = ftensor("x", shape)
    for f in (seg.forward, seg.predict):
        y = f(x)
        assert y.type.shape == (b, n_class, h, w)
        assert y.owner is not None and "softmax" not in str(y.owner.op).lower()


@pytest.mark.parametrize("shape, base", [((2, 3, 64, 96), 4), ((1, 1, 16, 48), 2)])
def test_fpn_output_shapes(shape, base):
    # p2..p5 at 1/2 .. 1/16 of the input (conv1 has stride 2), 4 * base channels each.
    # predict only: building an FPN graph takes seconds (upsample_2d's repeat infers static
    # shapes over the whole graph below it), and forward has the same shapes.
    b, c, h, w = shape
    fpn = model_FPN(input_channel=c, base_n_filters=base)
    shapes = [p.type.shape for p in fpn.predict(ftensor("x", shape))]
    assert shapes == [(b, 4 * base, h // 2**k, w // 2**k) for k in (1, 2, 3, 4)]


@pytest.mark.parametrize("border_mode, size, out", [("valid", 572, 388), ("same", 48, 48)])
def test_unet_output_size_follows_the_paper(border_mode, size, out):
    # Ronneberger et al. 2015, figure 1: a 572x572 tile gives a 388x388 map (valid convolutions).
    unet = model_Unet(channel=1, im_height=size, im_width=size, base_n_filters=2, border_mode=border_mode)
    assert unet.predict(ftensor("x", (1, 1, size, size))).type.shape == (1, out, out, 2)
