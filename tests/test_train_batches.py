"""dandelion.train.ArrayBatches and PaddedSequences against plain NumPy indexing (no compiling)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion.train import ArrayBatches, PaddedSequences


def _data(n):
    x = np.arange(n * 3, dtype="float32").reshape(n, 3)
    y = np.arange(n, dtype="int32") * 10
    return x, y


@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), drop_last=st.booleans(), seed=st.integers(0, 5))
def test_every_sample_once_per_epoch_in_step(n, batch_size, drop_last, seed):
    if drop_last and batch_size > n:
        return  # an error, tested below
    x, y = _data(n)
    batches = ArrayBatches(x, y, batch_size=batch_size, seed=seed, drop_last=drop_last)
    full, rest = divmod(n, batch_size)
    expected_sizes = [batch_size] * full + ([rest] if rest and not drop_last else [])
    for epoch in range(2):
        got = list(batches.epoch(epoch))
        assert [len(b_y) for _, b_y in got] == expected_sizes == [batches.batch_length(b) for b in got]
        assert len(batches) == len(expected_sizes)
        seen_y = np.concatenate([b_y for _, b_y in got]) if got else np.zeros(0, "int32")
        seen_x = np.concatenate([b_x for b_x, _ in got]) if got else np.zeros((0, 3), "float32")
        np.testing.assert_array_equal(seen_x, x[seen_y // 10])  # arrays stay in step
        assert len(set(seen_y.tolist())) == len(seen_y) == sum(expected_sizes)  # no sample twice
        # The dropped samples are the tail of this epoch's permutation.
        np.testing.assert_array_equal(seen_y // 10, batches.order(epoch)[: len(seen_y)])


def test_order_depends_on_seed_and_epoch_only():
    x, y = _data(50)
    a, b = ArrayBatches(x, y, batch_size=7, seed=3), ArrayBatches(x, y, batch_size=7, seed=3)
    np.testing.assert_array_equal(a.order(4), b.order(4))  # no earlier epoch replayed
    assert not np.array_equal(a.order(0), a.order(1))
    assert not np.array_equal(a.order(0), ArrayBatches(x, y, batch_size=7, seed=4).order(0))
    np.testing.assert_array_equal(ArrayBatches(x, y, batch_size=7, shuffle=False).order(2), np.arange(50))
    # A resumed epoch skips the batches already done and continues the same order.
    np.testing.assert_array_equal(
        np.concatenate([b_y for _, b_y in a.epoch(2, skip=3)]), np.concatenate([b_y for _, b_y in a.epoch(2)][3:])
    )


def test_last_partial_batch_kept_or_dropped():
    x, y = _data(10)
    kept = list(ArrayBatches(x, y, batch_size=4, shuffle=False))
    dropped = list(ArrayBatches(x, y, batch_size=4, shuffle=False, drop_last=True))
    assert [b_y.tolist() for _, b_y in kept] == [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90]]
    assert [b_y.tolist() for _, b_y in dropped] == [[0, 10, 20, 30], [40, 50, 60, 70]]


def test_sample_axis_per_array():
    words = np.arange(24).reshape(4, 6)  # (T=4, N=6), time-major
    labels = np.arange(6)
    batches = ArrayBatches(words, labels, batch_size=4, shuffle=False, axis=(1, 0))
    (w1, l1), (w2, l2) = batches
    np.testing.assert_array_equal(w1, words[:, :4])
    np.testing.assert_array_equal(w2, words[:, 4:])
    assert l2.tolist() == [4, 5] and batches.batch_length((w2, l2)) == 2


def _pad_reference(sequences, maxlen):
    """Post-padding with zeros, written out element by element."""
    out = np.zeros((len(sequences), maxlen) + sequences[0].shape[1:], dtype=sequences[0].dtype)
    mask = np.zeros((len(sequences), maxlen), dtype=sequences[0].dtype)
    for i, s in enumerate(sequences):
        for t in range(min(len(s), maxlen)):
            out[i, t] = s[t]
            mask[i, t] = 1
    return out, mask


@pytest.mark.parametrize("maxlen", [None, 3])
@pytest.mark.parametrize("time_major", [False, True])
def test_padded_sequences_are_padded_per_batch(maxlen, time_major):
    rng = np.random.default_rng(0)
    lengths = [2, 5, 1, 4, 3]
    sequences = [rng.normal(size=(n, 2)).astype("float32") for n in lengths]
    labels = np.arange(5, dtype="int32")
    batches = ArrayBatches(PaddedSequences(sequences, maxlen=maxlen, time_major=time_major), labels,
                           batch_size=2, seed=1)
    got = list(batches.epoch(0))
    assert len(got) == 3
    for x, mask, y in got:
        chosen = [sequences[i] for i in y]
        expected_x, expected_mask = _pad_reference(chosen, maxlen or max(lengths[i] for i in y))
        if time_major:
            expected_x, expected_mask = expected_x.transpose(1, 0, 2), expected_mask.T
        np.testing.assert_array_equal(x, expected_x)
        np.testing.assert_array_equal(mask, expected_mask)
        assert batches.batch_length((x, mask, y)) == len(y)


def test_errors_name_the_argument():
    x, y = _data(10)
    with pytest.raises(ValueError, match=r"ArrayBatches: arrays\[1\] has 9 samples, arrays\[0\] has 10"):
        ArrayBatches(x, y[:9], batch_size=2)
    with pytest.raises(ValueError, match=r"ArrayBatches: arrays\[1\] has 3 samples.*3 sequences"):
        ArrayBatches(x, PaddedSequences([np.zeros(2)] * 3), batch_size=2)
    with pytest.raises(ValueError, match=r"batch_size=11 is larger than the 10 samples, so drop_last=True"):
        ArrayBatches(x, y, batch_size=11, drop_last=True)
    assert len(ArrayBatches(x, y, batch_size=11)) == 1  # kept: one partial batch
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        ArrayBatches(x, y, batch_size=0)
    with pytest.raises(ValueError, match=r"axis=2 is out of range for arrays\[1\] of shape \(10,\)"):
        ArrayBatches(x, y, batch_size=2, axis=(0, 2))
    with pytest.raises(ValueError, match="axis has 1 entries for 2 arrays"):
        ArrayBatches(x, y, batch_size=2, axis=(0,))
