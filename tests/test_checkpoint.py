"""Checkpoints: round trip, exact resume on every backend, corrupt files, mismatched models."""

import os
import zipfile

import numpy as np
import pytensor.tensor as pt
import pytest

import dandelion
from dandelion.module import Dense, Dropout, Module
from dandelion.update import adam, momentum, optimizer_state
from dandelion.util import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint


class Net(Module):
    def __init__(self, seed, hidden=5, classes=2, dropout=True, extra=False):
        super().__init__(name="net")
        np.random.seed(seed)
        self.d1 = Dense(4, hidden)
        if dropout:
            self.drop = Dropout(seed=seed)
        self.d2 = Dense(hidden, classes)
        if extra:
            self.d3 = Dense(classes, classes)

    def forward(self, x):
        h = self.d1(x)
        if "drop" in self.sub_modules:
            h = self.drop.forward(h, p=0.3)
        y = self.d2(pt.tanh(h))
        return self.d3(y) if "d3" in self.sub_modules else y


def build(seed, dropout=True, **kwargs):
    net = Net(seed, dropout=dropout, **kwargs)
    x = pt.tensor("x", shape=(3, 4), dtype="float32")
    y = pt.tensor("y", shape=(3, net.d2.W.get_value().shape[1]), dtype="float32")
    loss = ((net.forward(x) - y) ** 2).mean()
    return net, adam(loss, net.collect_params(), learning_rate=0.01), (x, y, loss)


def values(variables):
    return [np.asarray(v.get_value()).copy() for v in variables]


def weights(module):
    return [value for value, _ in module.get_weights()]


def test_round_trip_restores_weights_optimizer_state_and_user_data(tmp_path):
    net, updates, _ = build(1)
    for variable in optimizer_state(updates).values():
        variable.set_value(np.random.standard_normal(variable.get_value().shape).astype("float32"))
    user = {"epoch": 7, "lr": 0.5, "history": [1.5, np.arange(3)], "nested": {"best": None, "ok": True}}
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, net, updates, user_data=user)

    net2, updates2, _ = build(2)
    loaded = load_checkpoint(path, net2, optimizer_state(updates2))
    for (a, name_a), (b, name_b) in zip(net.get_weights(), net2.get_weights()):
        assert name_a == name_b
        np.testing.assert_array_equal(a, b)
    for name, variable in optimizer_state(updates).items():
        np.testing.assert_array_equal(variable.get_value(), optimizer_state(updates2)[name].get_value())
    assert loaded["epoch"] == 7 and loaded["lr"] == 0.5 and loaded["nested"] == {"best": None, "ok": True}
    np.testing.assert_array_equal(loaded["history"][1], np.arange(3))
    content = read_checkpoint(path)
    # Path names: unique whatever the Theano-era names.
    assert [name for name, _ in content["model"]] == ["d1.W", "d1.b", "d2.W", "d2.b"]
    assert [path for path, _ in net.named_weights()] == ["d1.W", "d1.b", "d2.W", "d2.b"]
    assert list(content["random_states"]) == [f"drop.{net.drop._variable_keys[id(v)]}" for v in net.drop.random_states]
    assert list(content["optimizer"])[:3] == ["adam.m@d1.W", "adam.v@d1.W", "adam.m@d1.b"]
    assert "adam.t" in content["optimizer"]


def test_resumed_training_matches_the_uninterrupted_run_exactly(backend, tmp_path):
    dropout = True  # the masks' step counter must resume too, on every backend
    rng = np.random.default_rng(0)
    data = [
        (rng.standard_normal((3, 4)).astype("float32"), rng.standard_normal((3, 2)).astype("float32")) for _ in range(6)
    ]
    net, updates, (x, y, loss) = build(1, dropout)
    train = dandelion.function([x, y], loss, updates=updates, mode=backend)
    for batch in data[:3]:
        train(*batch)
    save_checkpoint(tmp_path / "mid.ckpt", net, updates, user_data={"step": 3})
    uninterrupted = [np.asarray(train(*batch)) for batch in data[3:]]
    final = values(updates)

    net2, updates2, (x2, y2, loss2) = build(2, dropout)
    assert load_checkpoint(tmp_path / "mid.ckpt", net2, updates2) == {"step": 3}
    train2 = dandelion.function([x2, y2], loss2, updates=updates2, mode=backend)
    resumed = [np.asarray(train2(*batch)) for batch in data[3:]]
    np.testing.assert_array_equal(resumed, uninterrupted)
    for a, b in zip(final, values(updates2)):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def saved(tmp_path):
    net, updates, _ = build(1)
    path = tmp_path / "good.ckpt"
    save_checkpoint(path, net, updates, user_data={"epoch": 1})
    return path


def corrupt_variants(path, tmp_path):
    raw = path.read_bytes()
    variants = {"truncated": raw[: len(raw) // 2], "empty": b"", "garbage": os.urandom(200)}
    flipped = bytearray(raw)
    flipped[len(raw) // 3] ^= 0xFF
    variants["flipped byte"] = bytes(flipped)
    # A well-formed archive whose array no longer matches its recorded checksum.
    with np.load(path, allow_pickle=False) as archive:
        entries = {k: archive[k] for k in archive.files}
    entries["model/0"] = entries["model/0"] + 1
    tampered = tmp_path / "tampered.npz"
    with open(tampered, "wb") as file:
        np.savez(file, **entries)
    variants["checksum mismatch"] = tampered.read_bytes()
    plain = tmp_path / "plain.npz"
    with open(plain, "wb") as file:
        np.savez(file, a=np.zeros(2))
    variants["not a checkpoint"] = plain.read_bytes()
    return variants


def test_corrupt_or_truncated_files_raise_and_load_nothing(saved, tmp_path):
    net, updates, _ = build(5)
    before, state_before = weights(net), values(optimizer_state(updates).values())
    for label, content in corrupt_variants(saved, tmp_path).items():
        bad = tmp_path / "bad.ckpt"
        bad.write_bytes(content)
        with pytest.raises(
            CheckpointError,
            match="load_checkpoint: .*(truncated or corrupt|fails its checksum|not a dandelion checkpoint)",
        ):
            load_checkpoint(bad, net, updates)
        for a, b in zip(before + state_before, weights(net) + values(optimizer_state(updates).values())):
            np.testing.assert_array_equal(a, b, err_msg=label)


def test_a_different_model_gets_a_report_and_the_unmatched_policy(saved):
    other, updates, _ = build(3, classes=3, extra=True)
    before = weights(other)
    with pytest.raises(ValueError) as error:
        load_checkpoint(saved, other, updates)
    message = str(error.value)
    assert "model weights missing from the checkpoint: ['d3.W', 'd3.b']" in message
    assert "d2.W: saved (5, 2), model (5, 3)" in message and "d2.b: saved (2,), model (3,)" in message
    assert "optimizer state in the checkpoint but not in the model" not in message
    assert "nothing was loaded" in message
    for a, b in zip(before, weights(other)):
        np.testing.assert_array_equal(a, b)

    with pytest.warns(UserWarning, match="checkpoint and model differ"):
        load_checkpoint(saved, other, updates, unmatched="warn")
    saved_weights = dict((name, value) for name, value in read_checkpoint(saved)["model"])
    np.testing.assert_array_equal(other.d1.W.get_value(), saved_weights["d1.W"])
    np.testing.assert_array_equal(other.d2.W.get_value(), before[2])  # shape differs: left alone

    smaller, adam_updates, _ = build(4, dropout=False)
    plain_updates = momentum(sum((p**2).sum() for p in smaller.collect_params()), smaller.collect_params(), 0.1)
    load_checkpoint(saved, smaller, plain_updates, unmatched="ignore")
    with pytest.raises(ValueError, match="optimizer state in the checkpoint but not in the model: .*adam.t"):
        load_checkpoint(saved, smaller, plain_updates)
    with pytest.raises(ValueError, match="random-number states in the checkpoint but not in the model"):
        load_checkpoint(saved, smaller, adam_updates)
    with pytest.raises(ValueError, match=r"unmatched must be one of \('ignore', 'warn', 'raise'\)"):
        load_checkpoint(saved, smaller, unmatched="skip")


def test_failed_save_leaves_the_previous_file_and_no_temporary(saved, tmp_path):
    net, updates, _ = build(1)
    content = saved.read_bytes()
    with pytest.raises(TypeError, match=r"user_data\['when'\] holds a object"):
        save_checkpoint(saved, net, updates, user_data={"when": object()})
    assert saved.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.ckpt"]
    assert zipfile.is_zipfile(saved)


def test_checkpoints_written_with_theano_era_names_still_load(tmp_path):
    """Checkpoints of the first format named entries by Theano-era names; they load by them."""
    net, updates, _ = build(1)
    for variable in optimizer_state(updates).values():
        variable.set_value(np.random.standard_normal(variable.get_value().shape).astype("float32"))
    arrays, metadata = {}, {"format": "dandelion-checkpoint", "version": 1, "model": [], "optimizer": [], "random_states": []}
    entries = [("model", v.name, v) for _, v in net.named_weights()]
    entries += [("optimizer", v.name, v) for v in optimizer_state(updates).values()]
    entries += [("random_states", v.name, v) for v in net.drop.random_states]
    for index, (kind, name, variable) in enumerate(entries):
        arrays[f"{kind}/{index}"] = np.asarray(variable.get_value())
        metadata[kind].append({"name": name, "key": f"{kind}/{index}"})
    metadata["user_data"] = None
    import hashlib
    import json

    metadata["arrays"] = {
        k: {"shape": list(a.shape), "dtype": a.dtype.str, "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}
        for k, a in arrays.items()
    }
    arrays["__metadata__"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    path = tmp_path / "old-names.ckpt"
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    net2, updates2, _ = build(2)
    load_checkpoint(path, net2, updates2)
    for a, b in zip(weights(net) + values(optimizer_state(updates).values()), weights(net2) + values(optimizer_state(updates2).values())):
        np.testing.assert_array_equal(a, b)
