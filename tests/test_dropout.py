"""Dropout: statistics, shared axes, rescale, seeds, symbolic p and per-call masks."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import dandelion
from dandelion.module import Dropout
from tests.helpers import compile_fn, ftensor

SHAPE = (40, 50)


def test_masks_change_every_call_and_keep_the_expectation(backend):
    dropout = Dropout(seed=3)
    x = ftensor("x", SHAPE)
    f = compile_fn([x], dropout.forward(x, p=0.25), backend)
    ones = np.ones(SHAPE, "float32")
    first, second = f(ones), f(ones)
    assert first.dtype == np.float32
    assert not np.array_equal(first, second)
    for out in (first, second):
        kept = out != 0
        assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)}
        assert abs(kept.mean() - 0.75) < 0.05
    assert abs(np.mean([f(ones).mean() for _ in range(5)]) - 1.0) < 0.03


def test_updates_from_collect_self_updates_work_with_plain_pytensor_function(backend):
    dropout = Dropout(seed=4)
    x = ftensor("x", SHAPE)
    y = dropout.forward(x, p=0.5)
    updates = dropout.collect_self_updates()
    assert len(updates) == 1
    f = pytensor.function([x], y, updates=updates, mode=dandelion.resolve_mode(backend))
    ones = np.ones(SHAPE, "float32")
    assert not np.array_equal(f(ones), f(ones))
    frozen = dandelion.function([x], y, mode=backend, no_default_updates=True)
    np.testing.assert_array_equal(frozen(ones), frozen(ones))


def test_seed_makes_masks_reproducible(backend):
    ones = np.ones(SHAPE, "float32")
    runs = []
    for seed in (5, 5, 6):
        dropout = Dropout(seed=seed)
        x = ftensor("x", SHAPE)
        f = compile_fn([x], dropout.forward(x, p=0.5), backend)
        runs.append([f(ones), f(ones)])
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_two_calls_in_one_graph_draw_independent_masks(backend):
    dropout = Dropout(seed=8)
    x = ftensor("x", SHAPE)
    f = compile_fn([x], [dropout.forward(x), dropout.forward(x)], backend)
    a, b = f(np.ones(SHAPE, "float32"))
    assert not np.array_equal(a, b)


def test_shared_axes_with_negative_indices_and_no_rescale(backend):
    dropout = Dropout(seed=9)
    x = ftensor("x", (6, 4, 5, 7))
    f = compile_fn([x], dropout.forward(x, p=0.5, shared_axes=(0, -1), rescale=False), backend)
    out = f(np.ones((6, 4, 5, 7), "float32"))
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert np.all(out == out[:1, :, :, :1])  # constant along axes 0 and 3
    assert 0 < out.mean() < 1


def test_symbolic_p_including_the_edges(backend):
    dropout = Dropout(seed=10)
    x = ftensor("x", SHAPE)
    p = pt.fscalar("p")
    f = compile_fn([x, p], dropout.forward(x, p=p), backend)
    ones = np.ones(SHAPE, "float32")
    np.testing.assert_array_equal(f(ones, 0.0), ones)
    np.testing.assert_array_equal(f(ones, 1.0), np.zeros(SHAPE))
    half = f(ones, 0.5)
    assert set(np.unique(half)) <= {0.0, 2.0} and abs((half != 0).mean() - 0.5) < 0.05


def test_python_p_edges_predict_and_errors():
    dropout = Dropout(seed=1)
    x = ftensor("x", (2, 3))
    assert dropout.forward(x, p=0.0) is x
    assert dropout.forward(x, p=-0.5) is x
    assert dropout.predict(x) is x
    out = dandelion.function([x], dropout.forward(x, p=1.0), mode="numba")(np.ones((2, 3), "float32"))
    np.testing.assert_array_equal(out, 0)
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], got 1.5"):
        dropout.forward(x, p=1.5)
    with pytest.raises(ValueError, match="Dropout: shared_axes entry 2 is out of range for input of ndim 2"):
        dropout.forward(x, shared_axes=(2,))


def _lowbias32(x):
    """Wellons' lowbias32 integer hash, written from its published definition."""
    x = x.astype(np.uint64)
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x.astype(np.uint32)


def test_hash_matches_its_definition_on_backend(backend):
    from dandelion.functional.random_bits import mix32

    values = np.array([0, 1, 2, 12345, 2**31 - 1, 2**31, 2**32 - 1], "uint32")
    x = pt.tensor("x", shape=values.shape, dtype="uint32")
    np.testing.assert_array_equal(compile_fn([x], mix32(x), backend)(values), _lowbias32(values))


def test_masks_are_identical_across_backends_and_uncorrelated_between_steps():
    shape = (200, 250)  # correlations of 50,000 draws have a standard error of 0.0045
    ones = np.ones(shape, "float32")
    sequences = {}
    for name in ("c", "numba", "jax"):
        dropout = Dropout(seed=21)
        x = ftensor("x", shape)
        f = compile_fn([x], dropout.forward(x, p=0.5), name)
        sequences[name] = [f(ones) != 0 for _ in range(4)]
    for name in ("numba", "jax"):
        for a, b in zip(sequences["c"], sequences[name]):
            np.testing.assert_array_equal(a, b)
    masks = np.array(sequences["c"]).reshape(4, -1).astype("float64")
    correlation = np.corrcoef(masks)
    assert np.all(np.abs(correlation[np.triu_indices(4, 1)]) < 0.025)
    assert np.all(np.abs(masks.mean(axis=1) - 0.5) < 0.01)


def test_theano_idiom_plain_function_without_collected_updates_still_advances(backend):
    dropout = Dropout(seed=12)
    x = ftensor("x", SHAPE)
    f = pytensor.function([x], dropout.forward(x, p=0.5), mode=dandelion.resolve_mode(backend))
    ones = np.ones(SHAPE, "float32")
    assert not np.array_equal(f(ones), f(ones))
    assert int(dropout.counter.get_value()) == 2
