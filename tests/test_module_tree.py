"""The module tree: containers, path names at any depth, shared modules, the summary and
weight substitution."""

import numpy as np
import pytensor.tensor as pt
import pytest

import dandelion
from dandelion.model import model_VGG16
from dandelion.module import BatchNorm, Dense, Dropout, Module, ModuleDict, ModuleList, functional_call
from dandelion.update import adam
from dandelion.util import load_checkpoint, read_checkpoint, save_checkpoint
from tests.helpers import assert_close, ftensor, randn


class Block(Module):
    """A user block whose sub-module has the same attribute name in every instance."""

    def __init__(self, n_in, n_out, name=None):
        super().__init__(name=name)
        self.fc = Dense(n_in, n_out)

    def forward(self, x):
        return pt.tanh(self.fc.forward(x))


class Outer(Module):
    def __init__(self):
        super().__init__()
        self.block1 = Block(3, 4)
        self.block2 = Block(4, 2)

    def forward(self, x):
        return self.block2.forward(self.block1.forward(x))


class Stacked(Module):
    """Lists, tuples and dicts of modules as plain attributes."""

    def __init__(self):
        super().__init__()
        self.blocks = [Dense(3, 4), Dense(4, 4)]
        self.pair = (Dense(4, 4), Dense(4, 4))
        self.heads = {"left": Dense(4, 2), "right": Dense(4, 2)}

    def forward(self, x):
        for module in [*self.blocks, *self.pair]:
            x = pt.tanh(module.forward(x))
        return self.heads["left"].forward(x) + self.heads["right"].forward(x)


def test_nested_modules_get_unique_path_and_theano_era_names():
    model = Outer()
    assert [p for p, _ in model.named_params()] == ["block1.fc.W", "block1.fc.b", "block2.fc.W", "block2.fc.b"]
    # The old rule: an automatically named module passes its name on to its sub-modules.
    assert [v.name for v in model.collect_params()] == [
        "W@Dense|fc@Block|block1", "b@Dense|fc@Block|block1", "W@Dense|fc@Block|block2", "b@Dense|fc@Block|block2",
    ]
    assert [p for p, _ in model.named_modules()] == ["", "block1", "block1.fc", "block2", "block2.fc"]
    # A block named by the user does not (as Dense(..., name=...) inside a model never did).
    assert Block(2, 2, name="mine").fc.W.name == "W@Dense|fc"


def test_nested_names_round_trip_through_checkpoints_and_set_weights_by_name(tmp_path):
    source, target = Outer(), Outer()
    for _, variable in source.named_params():
        variable.set_value(randn(*variable.get_value().shape))
    path = tmp_path / "outer.ckpt"
    save_checkpoint(path, source)
    assert [name for name, _ in read_checkpoint(path)["model"]] == [p for p, _ in source.named_weights()]
    load_checkpoint(path, target)
    for (a, _), (b, _) in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Either form of name, in any order.
    by_path = [[v.get_value() * 2, p] for p, v in source.named_weights()][::-1]
    target.set_weights_by_name(by_path)
    assert_close(target.block2.fc.b.get_value(), 2 * source.block2.fc.b.get_value())
    target.set_weights_by_name(source.get_weights()[::-1])
    assert_close(target.block2.fc.b.get_value(), source.block2.fc.b.get_value())


def test_same_theano_era_names_are_told_apart_by_path():
    model = Module()
    model.a = Block(2, 2, name="same")
    model.b = Block(2, 2, name="same")
    assert model.a.fc.W.name == model.b.fc.W.name == "W@Dense|fc"
    weights = [[np.full((2, 2), 3.0), "b.fc.W"]]
    model.set_weights_by_name(weights, unmatched="ignore")
    assert np.all(model.b.fc.W.get_value() == 3.0) and not np.all(model.a.fc.W.get_value() == 3.0)
    with pytest.raises(ValueError, match=r"2 variables are named 'W@Dense\|fc' \(\['a.fc.W', 'b.fc.W'\]\)"):
        model.set_weights_by_name([[np.zeros((2, 2)), "W@Dense|fc"]], unmatched="ignore")


def test_lists_tuples_and_dicts_of_modules_are_collected_in_assignment_order():
    model = Stacked()
    assert isinstance(model.blocks, ModuleList) and isinstance(model.heads, ModuleDict)
    paths = [p for p, _ in model.named_params()]
    assert paths == [
        "blocks.0.W", "blocks.0.b", "blocks.1.W", "blocks.1.b", "pair.0.W", "pair.0.b", "pair.1.W", "pair.1.b",
        "heads.left.W", "heads.left.b", "heads.right.W", "heads.right.b",
    ]
    # Theano-era names: list members as Sequential's (attribute_i), dict members by key.
    assert model.blocks[1].W.name == "W@Dense|blocks_1"
    assert model.heads["left"].W.name == "W@Dense|left"
    assert len(model.collect_params()) == 12 == len(model.get_weights())
    assert model.collect_params(include=["heads"]) == [v for p, v in model.named_params() if p.startswith("heads.")]
    model.blocks.append(Dense(4, 4))  # appended later: still part of the tree
    assert "blocks.2.W" in [p for p, _ in model.named_params()]


def test_container_training_lowers_the_loss_on_every_backend(backend, tmp_path):
    np.random.seed(0)
    model = Stacked()
    x, y = ftensor("x", (8, 3)), ftensor("y", (8, 2))
    loss = ((model.forward(x) - y) ** 2).mean()
    train = dandelion.function([x, y], loss, updates=adam(loss, model.collect_params(), learning_rate=0.02), mode=backend)
    initial = [v.get_value().copy() for _, v in model.named_params()]
    xs, ys = randn(8, 3), randn(8, 2)
    first = float(train(xs, ys))
    for _ in range(30):
        last = float(train(xs, ys))
    assert last < 0.5 * first
    # Every member was trained, the dict's and the tuple's included.
    unchanged = [p for (p, v), w in zip(model.named_params(), initial) if np.array_equal(np.asarray(v.get_value()), w)]
    assert unchanged == []
    # ... and saved: a fresh model loads every member back.
    path = tmp_path / "stacked.ckpt"
    save_checkpoint(path, model)
    fresh = Stacked()
    load_checkpoint(path, fresh)
    for (a, _), (b, _) in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_shared_module_is_collected_once():
    class Tied(Module):
        def __init__(self):
            super().__init__()
            self.encoder = Dense(3, 3)
            self.decoder = self.encoder  # the same weights twice
            self.stack = [self.encoder, Dense(3, 3)]

    model = Tied()
    assert [p for p, _ in model.named_params()] == ["encoder.W", "encoder.b", "stack.1.W", "stack.1.b"]
    assert len(model.collect_params()) == 4 and len(model.get_weights()) == 4
    assert model.encoder.name == "encoder"
    assert model.count_params() == 2 * (9 + 3)


def test_modules_of_another_model_are_refused():
    first, second = Module(), Module()
    first.d = Dense(2, 2)
    with pytest.raises(ValueError, match=r"module Dense\('d'\) assigned to 'e' already belongs to Module"):
        second.e = first.d
    with pytest.raises(ValueError, match="already belongs to Module"):
        second.stack = [Dense(2, 2), first.d]
    late = ModuleList([first.d])  # a container being filled has no owner yet...
    with pytest.raises(ValueError, match="already belongs to Module"):
        second.late = late  # ...and is checked when it joins one


def test_bad_assignments_get_clear_errors():
    class Early(Module):
        def __init__(self):
            self.fc = Dense(2, 2)
            super().__init__()

    with pytest.raises(AttributeError, match=r"Early: cannot assign 'fc' before Module.__init__ ran; call super\(\).__init__\(\) first"):
        Early()

    class EarlyParam(Module):
        def __init__(self):
            self.W = self.register_param(np.zeros(2))

    with pytest.raises(AttributeError, match="EarlyParam: cannot register a variable before Module.__init__ ran"):
        EarlyParam()
    model = Module()
    with pytest.raises(TypeError, match=r"'mixed' mixes modules with other values \[\(1, 'int'\)\]"):
        model.mixed = [Dense(2, 2), 3]
    with pytest.raises(KeyError, match="ModuleDict: keys must be non-empty str without '.'"):
        ModuleDict({"a.b": Dense(2, 2)})
    with pytest.raises(TypeError, match=r"ModuleList\[0\] must be a Module, got int"):
        ModuleList([1])
    with pytest.raises(IndexError, match="ModuleList: index 5 out of range for 1 modules"):
        ModuleList([Dense(1, 1)])[5]
    with pytest.raises(KeyError, match=r"ModuleDict: no module 'z'; keys: \['a'\]"):
        ModuleDict({"a": Dense(1, 1)})["z"]
    with pytest.raises(NotImplementedError, match="ModuleList only holds modules"):
        ModuleList().forward(1)


def test_replacing_and_deleting_sub_modules_updates_the_tree():
    model = Module()
    model.fc = Dense(2, 2)
    old = model.fc
    model.fc = Dense(2, 3)
    assert [p for p, _ in model.named_params()] == ["fc.W", "fc.b"]
    assert model.fc.W.get_value().shape == (2, 3)
    other = Module()
    other.fc = old  # released by its former parent: free to join another model
    del model.fc
    assert model.collect_params() == []


def _hand_count(model):
    return sum(int(np.prod(v.get_value().shape)) for v in model.collect_params())


def test_summary_lists_modules_and_totals():
    model = Stacked()
    model.bn = BatchNorm(input_shape=(None, 4))
    model.drop = Dropout()
    text = model.summary()
    assert str(model) == text
    lines = text.splitlines()
    assert lines[0] == "Stacked"
    assert lines[1].split() == ["path", "class", "variables", "trainable", "self-updating"]
    rows = {line.split()[0]: line for line in lines[3:-2]}
    assert set(rows) == {"(root)", "blocks.0", "blocks.1", "pair.0", "pair.1", "heads.left", "heads.right", "bn"}
    assert "W (3, 4), b (4,)" in rows["blocks.0"] and rows["blocks.0"].split()[-2:] == ["16", "0"]
    assert rows["bn"].split()[-2:] == ["8", "8"]  # beta, gamma trainable; mean, inv_std self-updating
    trainable = 16 + 20 + 20 + 20 + 10 + 10 + 8
    nbytes = 4 * (trainable + 8)
    assert lines[-1] == f"total: {trainable:,} trainable, 8 self-updating, {trainable + 8:,} in all, {nbytes:,} bytes"
    assert model.count_params() == trainable == _hand_count(model)
    assert model.count_params(trainable=False, self_updating=True) == 8


def test_vgg16_summary_totals():
    model = model_VGG16()
    # Hand-derived: 13 convolutions 3x3 of configuration D plus fc6 (7*7*512 -> 4096), fc7, fc8.
    widths = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
              (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    convs = sum(9 * a * b + b for a, b in widths)
    dense = (25088 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    assert convs + dense == 138_357_544
    assert model.count_params() == 138_357_544
    assert model.summary().splitlines()[-1].startswith("total: 138,357,544 trainable, 0 self-updating")


@pytest.fixture(scope="module")
def substitution_case():
    np.random.seed(3)
    model = Outer()
    x = ftensor("x", (5, 3))
    W = ftensor("W", (3, 4))
    b = ftensor("b", (2,))
    substituted = functional_call(model, {"block1.fc.W": W, model.block2.fc.b: b}, (x,))
    return model, x, W, b, substituted


def test_substitution_equals_set_weights_on_every_backend(backend, substitution_case):
    model, x, W, b, substituted = substitution_case
    before = [v.get_value().copy() for v in model.collect_params()]
    xs, Ws, bs = randn(5, 3), randn(3, 4), randn(2)
    f = dandelion.function([x, W, b], substituted, mode=backend)
    got = f(xs, Ws, bs)
    for variable, value in zip(model.collect_params(), before):
        np.testing.assert_array_equal(variable.get_value(), value)  # not mutated
    reference = Outer()
    reference.set_weights(model.get_weights())
    reference.block1.fc.W.set_value(Ws)
    reference.block2.fc.b.set_value(bs)
    expected = dandelion.function([x], reference.forward(x), mode=backend)(xs)
    assert_close(got, expected)


def test_substitution_takes_back_recorded_updates_and_checks_replacements():
    bn = BatchNorm(input_shape=(None, 3))
    x = ftensor("x", (4, 3))
    gamma = ftensor("gamma", (3,))
    y, updates = functional_call(bn, {"gamma": gamma}, (x,), return_updates=True)
    assert list(updates) == [bn.mean, bn.inv_std]
    assert bn.collect_self_updates() == {}  # the module records nothing
    with pytest.raises(KeyError, match=r"\['nope'\] name no variable of the module"):
        functional_call(bn, {"nope": gamma}, (x,))
    with pytest.raises(ValueError, match=r"replacement for 'gamma' has shape \(4,\), expected \(3,\)"):
        functional_call(bn, {"gamma": ftensor("g", (4,))}, (x,))
    with pytest.raises(TypeError, match="replacement for 'beta' has dtype float64, expected float32"):
        functional_call(bn, {"beta": pt.dvector("d")}, (x,))
    with pytest.raises(ValueError, match="replacement for 'beta' has 2 dims, expected 1"):
        functional_call(bn, {"beta": np.zeros((1, 3), "float32")}, (x,))
