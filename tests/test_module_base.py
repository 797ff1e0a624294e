"""Module base: registration, naming, collection, weights and their old file format."""

import gzip
import pickle
from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from dandelion import initialization as init
from dandelion.module import Dense, Module, Sequential
from dandelion.util import gpickle


class Pair(Module):
    """Two dense layers and a self-updating counter, as user code would write."""

    def __init__(self, name=None):
        super().__init__(name=name)
        self.scale = self.register_param(init.Constant(2.0), shape=(3,))
        self.count = self.register_self_updating_variable(np.zeros((1,), "float32"))
        self.first = Dense(3, 4)
        self.second = Dense(4, 2)

    def forward(self, x):
        self.count.update = self.count + 1
        return self.second.forward(self.first.forward(x * self.scale))


def test_register_param_accepts_each_kind_and_checks_shape():
    module = Module(name="m")
    from_init = module.register_param(init.Constant(1.5), shape=(2, 3))
    from_array = module.register_param(np.ones((4,), "float64"))
    existing = pytensor.shared(np.zeros((2,), "float32"))
    from_shared = module.register_param(existing, shape=(2,))
    assert from_init.get_value().dtype == np.float32 and np.all(from_init.get_value() == 1.5)
    assert from_array.get_value().dtype == np.float32  # floats become floatX
    assert from_shared is existing
    assert module.params == [from_init, from_array, from_shared]
    expression = 2 * existing
    assert module.register_param(expression) is expression
    assert len(module.params) == 3  # tied expressions are not the module's own variables
    with pytest.raises(ValueError, match=r"expected shape \(3,\), got \(2,\)"):
        module.register_param(existing, shape=(3,))
    with pytest.raises(ValueError, match=r"expected shape \(2, 2\), got \(4,\)"):
        module.register_param(np.ones(4), shape=(2, 2))
    with pytest.raises(ValueError, match="needs a shape"):
        module.register_param(init.Normal())


def test_automatic_names_follow_the_old_scheme_and_follow_renames():
    model = Pair()
    assert model.first.name == "first"
    assert model.first.W.name == "W@Dense|first"
    assert model.scale.name == "scale@Pair"
    model.name = "net"
    assert model.scale.name == "scale@Pair|net"
    model.first.name = "renamed"
    assert model.first.W.name == "W@Dense|renamed"
    named = Dense(2, 2, name="lstm_in")
    assert named.W.name == "W@Dense|lstm_in"
    holder = Module()
    holder.sub = named
    assert named.name == "lstm_in"  # an explicit name is kept
    user_named = pytensor.shared(np.zeros(3, "float32"), name="mine")
    module = Module(name="m")
    module.v = module.register_param(user_named)
    assert module.v.name == "mine"


def test_sequential_names_members_and_refuses_adopted_modules():
    dense = Dense(2, 3)
    seq = Sequential([dense, Dense(3, 1)])
    assert [v.name for v in seq.collect_params()] == [
        "W@Dense|submodule_0",
        "b@Dense|submodule_0",
        "W@Dense|submodule_1",
        "b@Dense|submodule_1",
    ]
    with pytest.raises(ValueError, match="already belongs to Sequential"):
        Sequential([dense])
    with pytest.raises(ValueError, match="activation list must have one entry per module"):
        Sequential([Dense(1, 1), Dense(1, 1)], activation=[np.tanh])
    with pytest.raises(TypeError, match=r"module_list\[0\] must be a Module"):
        Sequential([np.tanh])


def test_collect_params_include_exclude_and_errors():
    model = Pair(name="p")
    own = [model.scale]
    first, second = model.first.params, model.second.params
    assert model.collect_params() == own + first + second
    keys = ["second"]
    assert model.collect_params(include=keys) == own + second
    assert keys == ["second"]  # the caller's list is not mutated
    assert model.collect_params(exclude=keys, include_self=False) == first
    assert keys == ["second"]
    with pytest.raises(KeyError, match=r"unknown sub-module key\(s\) \['third'\] in include; available keys: \['first', 'second'\]"):
        model.collect_params(include=["third"])
    with pytest.raises(KeyError, match="in exclude"):
        model.collect_self_updates(exclude=["nope"])


def test_collect_self_updates_gathers_update_and_user_default_update(backend):
    model = Pair(name="p")
    x = pt.tensor("x", shape=(2, 3), dtype="float32")
    y = model.forward(x)
    updates = model.collect_self_updates()
    assert list(updates) == [model.count]
    # Tutorial II style: a user sets default_update on a registered variable.
    extra = Module(name="extra")
    extra.centre = extra.register_self_updating_variable(np.zeros((2,), "float32"))
    with pytest.warns(DeprecationWarning):
        extra.centre.default_update = extra.centre + 0.5
    assert extra.collect_self_updates()[extra.centre] is extra.centre.default_update
    from tests.helpers import compile_fn

    f = compile_fn([x], y.sum(), backend, updates=updates)
    f(np.ones((2, 3), "float32"))
    f(np.ones((2, 3), "float32"))
    np.testing.assert_array_equal(model.count.get_value(), [2.0])


def test_weights_order_round_trip_and_validation():
    model = Pair(name="p")
    weights = model.get_weights()
    assert [name for _, name in weights] == [
        "scale@Pair|p",
        "count@Pair|p",
        "W@Dense|first",
        "b@Dense|first",
        "W@Dense|second",
        "b@Dense|second",
    ]
    other = Pair(name="p")
    other.set_weights(weights)
    for (a, _), (b, _) in zip(weights, other.get_weights()):
        np.testing.assert_array_equal(a, b)

    before = [v.copy() for v, _ in other.get_weights()]
    broken = [[v, n] for v, n in weights]
    broken[-1] = [np.zeros((3,), "float32"), broken[-1][1]]
    with pytest.raises(ValueError, match=r"'b@Dense\|second' has shape \(3,\), expected \(2,\); nothing was changed"):
        other.set_weights([[v + 1, n] for v, n in broken])
    for b, (a, _) in zip(before, other.get_weights()):
        np.testing.assert_array_equal(a, b)  # validate all, then assign all
    with pytest.raises(ValueError, match="got 5 weights, expected 6"):
        other.set_weights(weights[:5])
    renamed = [[v, "x" + n] for v, n in weights]
    other.set_weights(renamed, check_name="ignore")
    with pytest.warns(UserWarning, match="differs from variable"):
        other.set_weights(renamed, check_name="warn")
    with pytest.raises(ValueError, match="differs from variable"):
        other.set_weights(renamed, check_name="raise")
    with pytest.raises(ValueError, match=r"check_name must be one of \('ignore', 'warn', 'raise'\)"):
        other.set_weights(weights, check_name="loud")


def test_set_weights_by_name_policies_and_name_map():
    model = Pair(name="p")
    saved = [[v * 0 + 3, n] for v, n in model.get_weights()]
    shuffled = saved[::-1]
    model.set_weights_by_name(shuffled)
    assert all(np.all(v == 3) for v, _ in model.get_weights())

    partial = shuffled[1:] + [[np.ones(1), "stranger"]]
    before = [v.copy() for v, _ in model.get_weights()]
    with pytest.raises(ValueError, match=r"saved weights with no variable: \['stranger'\]; variables with no saved weight: \['b@Dense\|second'\]"):
        model.set_weights_by_name([[v + 1, n] for v, n in partial])
    for b, (a, _) in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.warns(UserWarning, match="stranger"):
        model.set_weights_by_name(partial, unmatched="warn")
    model.set_weights_by_name(partial, unmatched="ignore")

    old_names = [[v, n.replace("|first", "|dense_a")] for v, n in saved]
    model.set_weights_by_name(
        old_names, name_map={"W@Dense|dense_a": "W@Dense|first", "b@Dense|dense_a": "b@Dense|first"}
    )


def test_weights_written_by_the_old_library_load(tmp_path):
    """A gzip-pickled list of [array, name] pairs, as the Theano-era util.gpickle wrote."""
    model = Sequential([Dense(3, 2), Dense(2, 2)], name="seq")
    arrays = [np.random.randn(*v.get_value().shape).astype("float32") for v in model.collect_params()]
    names = ["W@Dense|submodule_0", "b@Dense|submodule_0", "W@Dense|submodule_1", "b@Dense|submodule_1"]
    path = tmp_path / "old.gpkl"
    with gzip.open(path, "wb") as file:
        pickle.dump([[a, n] for a, n in zip(arrays, names)], file, protocol=2)
    loaded = gpickle.load(path)
    model.set_weights(loaded, check_name="raise")
    for variable, array in zip(model.collect_params(), arrays):
        np.testing.assert_array_equal(variable.get_value(), array)
    fresh = Sequential([Dense(3, 2), Dense(2, 2)], name="seq")
    fresh.set_weights_by_name(loaded[::-1])
    for variable, array in zip(fresh.collect_params(), arrays):
        np.testing.assert_array_equal(variable.get_value(), array)
    gpickle.dump(model.get_weights(), tmp_path / "new.gpkl")
    assert [n for _, n in gpickle.load(tmp_path / "new.gpkl")] == names


def test_work_mode_dispatch_and_default_predict():
    class Doubler(Module):
        def forward(self, x):
            return 2 * x

    class Switch(Module):
        def forward(self, x):
            return "train"

        def predict(self, x):
            return "inference"

    assert Doubler().predict(3) == 6
    switch = Switch()
    assert switch(0) == "inference"
    switch.work_mode = "train"
    assert switch(0) == "train"
    with pytest.raises(ValueError, match=r"Switch: work_mode must be one of \('train', 'inference'\), got 'test'"):
        switch.work_mode = "test"
    assert switch(0) == "train"  # the refused value changed nothing
    with pytest.raises(ValueError, match=r"Module: work_mode must be one of \('train', 'inference'\), got 'foo'"):
        Module(work_mode="foo")
    with pytest.raises(NotImplementedError, match="Module does not implement forward"):
        Module().forward(1)


def test_lossy_or_meaningless_casts_are_refused_with_the_weights_name():
    model = Pair(name="p")
    weights = model.get_weights()
    before = [v.copy() for v, _ in weights]

    def with_first(value):
        return [[value, weights[0][1]]] + weights[1:]

    with pytest.raises(TypeError, match=r"Pair.set_weights: 'scale@Pair\|p' .*complex"):
        model.set_weights(with_first(np.ones(3, "complex64") * 1j))
    with pytest.raises(TypeError, match=r"Pair.set_weights: 'scale@Pair\|p' has dtype <U1"):
        model.set_weights(with_first(np.array(["a", "b", "c"])))
    rounded = np.full(3, 0.1, "float64")  # not a float32 value
    with pytest.raises(TypeError, match=r"Pair.set_weights_by_name: 'scale' has dtype float64 with values that .* float32 cannot hold exactly"):
        model.set_weights_by_name([[rounded, "scale@Pair|p"]], unmatched="ignore")
    for (a, _), b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)  # nothing was changed
    model.set_weights(with_first(np.full(3, 0.5, "float64")))  # exact in float32: fine
    model.set_weights(with_first(rounded), allow_downcast=True)
    np.testing.assert_array_equal(model.scale.get_value(), np.float32(0.1))


def test_duplicate_variable_names_are_refused_by_name_loading():
    module = Module(name="m")
    module.a = module.register_param(np.zeros(2), name="same")
    module.b = module.register_param(np.zeros(2), name="same")
    with pytest.raises(ValueError, match=r"2 variables are named 'same' \(\['a', 'b'\]\); use their path names"):
        module.set_weights_by_name([[np.zeros(2), "same"]])
    assert isinstance(module.collect_self_updates(), OrderedDict)
