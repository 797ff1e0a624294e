"""Weight files and checkpoints under kills, corruption, lossy dtypes, umasks and crafted pickles."""

import gzip
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction

import numpy as np
import pytensor
import pytest

from dandelion.module import Dense, Module
from dandelion.update import adam
from dandelion.util import CheckpointError, gpickle, load_checkpoint, read_checkpoint, save_checkpoint
from dandelion.util.casting import checked_cast

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


class Net(Module):
    def __init__(self, seed):
        super().__init__(name="net")
        np.random.seed(seed)
        self.d = Dense(3, 2)


def build(seed):
    net = Net(seed)
    updates = adam(sum((p**2).sum() for p in net.collect_params()), net.collect_params(), 0.1)
    return net, updates


def snapshot(net, updates):
    return [np.array(v.get_value(), copy=True) for v in list(net.collect_params()) + list(updates)]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


def temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------ atomic writes (items 3, 6)

CHILD = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {src!r})
    import numpy as np
    from dandelion.util import gpickle, save_checkpoint

    signal_file, target, kind = sys.argv[1:4]

    def stall():
        open(signal_file, "w").close()
        time.sleep(120)  # killed here, half way through the write

    class Stall:
        def __reduce__(self):
            stall()

    if kind == "gpickle":
        gpickle.dump([np.random.rand(50000), Stall()], target)
    else:
        real = np.savez
        def half_savez(file, **arrays):
            file.write(b"PK" + os.urandom(5000))
            file.flush()
            stall()
        np.savez = half_savez
        save_checkpoint(target, None, None, user_data={{"epoch": 2}})
    """
)


def save_good(kind, path):
    if kind == "gpickle":
        gpickle.dump([[np.arange(4.0), "W"]], path)
    else:
        save_checkpoint(path, None, None, user_data={"epoch": 1})


def load_good(kind, path):
    if kind == "gpickle":
        value = gpickle.load(path)
        np.testing.assert_array_equal(value[0][0], np.arange(4.0))
        assert value[0][1] == "W"
    else:
        assert read_checkpoint(path)["user_data"] == {"epoch": 1}


@pytest.mark.parametrize("kind", ["gpickle", "checkpoint"])
def test_a_save_killed_half_way_keeps_the_old_file_and_the_next_save_cleans_up(kind, tmp_path):
    target = tmp_path / "weights.gz"
    save_good(kind, target)
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(src=SRC))
    signal_file = tmp_path / "writing"
    child = subprocess.Popen([sys.executable, str(script), str(signal_file), str(target), kind])
    try:
        deadline = time.monotonic() + 60
        while not signal_file.exists():
            assert child.poll() is None, "the child ended before writing"
            assert time.monotonic() < deadline, "the child never started writing"
            time.sleep(0.05)
        assert temporaries(tmp_path), "the child writes to a temporary file"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    load_good(kind, target)
    assert temporaries(tmp_path)  # the killed writer's temporary file is left behind ...
    save_good(kind, target)
    assert temporaries(tmp_path) == []  # ... and the next save removes it
    load_good(kind, target)


def test_gpickle_dump_that_fails_to_pickle_keeps_the_old_file(tmp_path):
    target = tmp_path / "weights.gz"
    save_good("gpickle", target)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        gpickle.dump([np.zeros(10), lambda: None], target)
    load_good("gpickle", target)
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_mode_a_plain_open_gives(umask, tmp_path):
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain", "wb"):
            pass
        gpickle.dump([1], tmp_path / "w.gz")
        save_checkpoint(tmp_path / "c.ckpt", None, None, user_data=1)
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert (tmp_path / "plain").stat().st_mode & 0o777 == expected
    assert (tmp_path / "w.gz").stat().st_mode & 0o777 == expected
    assert (tmp_path / "c.ckpt").stat().st_mode & 0o777 == expected


# ------------------------------------------------------------ reading (item 4)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    net, updates = build(1)
    path = tmp_path_factory.mktemp("ckpt") / "small.ckpt"
    save_checkpoint(path, net, updates, user_data={"epoch": 3, "curve": np.arange(3.0)})
    return path, snapshot(net, updates)


def test_a_plain_npy_file_is_refused_by_name(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros(3))
    with open(path, "rb") as source, open(tmp_path / "weights.ckpt", "wb") as renamed:
        renamed.write(source.read())
    with pytest.raises(CheckpointError, match=r"'.*weights.ckpt' is not a dandelion checkpoint \(a single .npy array"):
        read_checkpoint(tmp_path / "weights.ckpt")


def rewrite_metadata(source, target, change):
    import json

    with np.load(source) as archive:
        arrays = {key: archive[key] for key in archive.files}
    metadata = json.loads(arrays["__metadata__"].tobytes())
    change(metadata)
    arrays["__metadata__"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    with open(target, "wb") as file:
        np.savez(file, **arrays)


METADATA_CHANGES = {
    "no sha256": lambda m: m["arrays"]["model/0"].pop("sha256"),
    "arrays a list": lambda m: m.update(arrays=[]),
    "model of strings": lambda m: m.update(model=["W"]),
    "model entry without key": lambda m: m["model"][0].pop("key"),
    "unknown key": lambda m: m["optimizer"][0].update(key="nowhere"),
    "user_data unhashable ref": lambda m: m.update(user_data={"__ndarray__": ["x"]}),
    "model not a list": lambda m: m.update(model=7),
}


@pytest.mark.parametrize("change", list(METADATA_CHANGES))
def test_hand_made_metadata_gives_a_checkpoint_error_and_loads_nothing(small_checkpoint, tmp_path, change):
    source, _ = small_checkpoint
    path = tmp_path / "edited.ckpt"
    rewrite_metadata(source, path, METADATA_CHANGES[change])
    net, updates = build(2)
    before = snapshot(net, updates)
    with pytest.raises(CheckpointError, match=r"'.*edited.ckpt'"):
        load_checkpoint(path, net, updates)
    assert_same(snapshot(net, updates), before)


def test_fuzzed_checkpoints_either_raise_checkpoint_error_or_load_exactly(small_checkpoint, tmp_path):
    source, saved = small_checkpoint
    raw = source.read_bytes()
    rng = np.random.default_rng(0)
    net, updates = build(2)
    untouched = snapshot(net, updates)
    path = tmp_path / "fuzzed.ckpt"
    cases = [("flip", int(i)) for i in rng.integers(0, len(raw), 300)] + [
        ("truncate", int(n)) for n in rng.integers(0, len(raw), 60)
    ]
    outcomes = {"error": 0, "exact": 0}
    for kind, at in cases:
        data = bytearray(raw)
        if kind == "flip":
            data[at] ^= int(rng.integers(1, 256))
        else:
            del data[at:]
        path.write_bytes(bytes(data))
        try:
            load_checkpoint(path, net, updates)
        except CheckpointError as error:
            assert "fuzzed.ckpt" in str(error)
            assert_same(snapshot(net, updates), untouched)
            outcomes["error"] += 1
        else:
            assert_same(snapshot(net, updates), saved)  # an exact load
            outcomes["exact"] += 1
            for variable, value in zip(list(net.collect_params()) + list(updates), untouched):
                variable.set_value(value.copy())
    assert outcomes["error"] > 0


# ------------------------------------------------------------ dtypes (item 5)


def test_lossy_casts_are_refused_by_name_and_nothing_is_loaded(tmp_path):
    path = tmp_path / "state.ckpt"
    save_checkpoint(path, None, {"s": pytensor.shared(np.array([0.75, 2.0], "float32"), name="s")})
    into_int = pytensor.shared(np.array([5, 6], "int32"), name="s")
    with pytest.raises(TypeError, match=r"'s' has dtype float32 with values that a variable of dtype int32 cannot hold"):
        load_checkpoint(path, None, {"s": into_int})
    np.testing.assert_array_equal(into_int.get_value(), [5, 6])

    exact = tmp_path / "exact.ckpt"
    save_checkpoint(exact, None, {"s": pytensor.shared(np.array([0.5, -3.0]), name="s")})  # float64, float32-exact
    into_float = pytensor.shared(np.zeros(2, "float32"), name="s")
    load_checkpoint(exact, None, {"s": into_float})
    np.testing.assert_array_equal(into_float.get_value(), [0.5, -3.0])

    rounding = tmp_path / "rounding.ckpt"
    save_checkpoint(rounding, None, {"s": pytensor.shared(np.array([0.1, 1.0]), name="s")})
    with pytest.raises(TypeError, match=r"'s' has dtype float64 .* dtype float32 .*allow_downcast=True"):
        load_checkpoint(rounding, None, {"s": into_float})
    np.testing.assert_array_equal(into_float.get_value(), [0.5, -3.0])
    load_checkpoint(rounding, None, {"s": into_float}, allow_downcast=True)
    np.testing.assert_array_equal(into_float.get_value(), np.array([0.1, 1.0], "float32"))


@pytest.mark.parametrize(
    "value, dtype, message",
    [
        (np.array([1 + 2j]), "float32", "dtype complex128 with values"),
        (np.array(["0.5"]), "float32", "dtype <U3, which cannot be stored"),
        (np.array([1e300]), "float32", "dtype float64 with values .*; values overflow to inf"),
        (np.array([3.5], "float32"), "int64", "dtype float32 with values"),
    ],
)
def test_checked_cast_refuses_what_a_cast_would_change(value, dtype, message):
    with pytest.raises(TypeError, match=r"set_weights: 'W' has " + message):
        checked_cast(value, dtype, "W", "set_weights", allow_downcast=True)


def test_checked_cast_accepts_safe_and_exact_casts():
    assert checked_cast(np.array([1, 2], "int16"), "float32", "W", "f").dtype == np.float32
    assert checked_cast(np.array([3.0, -1.0]), "int32", "W", "f").tolist() == [3, -1]
    assert checked_cast(np.array([1 + 0j]), "float64", "W", "f").tolist() == [1.0]
    assert np.isnan(checked_cast(np.array([np.nan]), "float32", "W", "f")).all()


# ------------------------------------------------------------ restricted unpickler (item 7)


def write_pickle(path, data, protocol):
    with gzip.open(path, "wb") as file:
        pickle.dump(data, file, protocol=protocol)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_old_weight_files_load_with_the_restricted_unpickler(tmp_path, protocol):
    weights = [[np.arange(6, dtype="float32").reshape(2, 3), "W@Dense"], [np.float64(0.5), "scale"], [np.arange(2), "b"]]
    path = tmp_path / "old.gpkl"
    write_pickle(path, weights, protocol)
    loaded = gpickle.load(path)
    assert [name for _, name in loaded] == ["W@Dense", "scale", "b"]
    for (a, _), (b, _) in zip(loaded, weights):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)


class Payload:
    def __reduce__(self):
        return (os.system, ("touch should-not-exist",))


def test_a_crafted_pickle_is_refused_before_it_runs_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "crafted.gpkl"
    write_pickle(path, [[np.zeros(2), "W"], Payload()], 4)
    with pytest.raises(gpickle.UnsafePickleError, match=r"'.*crafted.gpkl' names (posix|nt)\.system.*trusted=True"):
        gpickle.load(path)
    assert not (tmp_path / "should-not-exist").exists()


def test_trusted_true_loads_arbitrary_objects(tmp_path):
    path = tmp_path / "mine.gpkl"
    write_pickle(path, {"ratio": Fraction(1, 3)}, 4)
    with pytest.raises(gpickle.UnsafePickleError, match="fractions.Fraction"):
        gpickle.load(path)
    assert gpickle.load(path, trusted=True) == {"ratio": Fraction(1, 3)}
