"""Minibatches of in-memory arrays, in a seeded order that a resumed run can rebuild."""

from __future__ import annotations

import numpy as np

from dandelion.util.sequence import pad_sequence_into_array


class PaddedSequences:
    """Variable-length sequences that ``ArrayBatches`` pads batch by batch.

    In a batch they become two arrays, the padded sequences and their mask, made by
    ``dandelion.util.pad_sequence_into_array``.

    Parameters
    ----------
    sequences : list of arrays, each (n_i, ...) with the same trailing shape
    maxlen : int, optional
        Pad (and truncate) every batch to this length, so every batch has the same
        shape (JAX needs static shapes). Default: the longest sequence of each batch.
    padding, truncating : {'post', 'pre'}
        As in ``pad_sequence_into_array``.
    value : scalar
        Padding value.
    time_major : bool
        Give the batch as (maxlen, B, ...) and its mask as (maxlen, B), the layout of
        dandelion's recurrent modules, instead of (B, maxlen, ...) and (B, maxlen).
    """

    def __init__(self, sequences, maxlen=None, padding="post", truncating="post", value=0.0, time_major=False):
        self.sequences = list(sequences)
        self.maxlen, self.padding, self.truncating, self.value = maxlen, padding, truncating, value
        self.time_major = bool(time_major)

    def __len__(self):
        return len(self.sequences)

    def take(self, indices):
        """(x, mask) for the sequences at ``indices``."""
        x, mask = pad_sequence_into_array(
            [self.sequences[i] for i in indices],
            maxlen=self.maxlen,
            truncating=self.truncating,
            padding=self.padding,
            value=self.value,
        )
        if self.time_major:
            x, mask = np.swapaxes(x, 0, 1), mask.T
        return x, mask


class ArrayBatches:
    """Minibatches of several arrays taken in step, for ``dandelion.train.fit``.

    Iterating gives one epoch of batches, each a tuple with one array per input (two,
    sequences and mask, for a ``PaddedSequences``). The order of epoch ``e`` depends
    only on ``seed`` and ``e``, so a resumed run rebuilds it without replaying earlier
    epochs.

    Parameters
    ----------
    *arrays : arrays (N, ...) or ``PaddedSequences`` of N sequences
        The same N samples each, along each array's ``axis``.
    batch_size : int
    shuffle : bool
        A new permutation of the samples every epoch; otherwise their order.
    seed : int
        Seed of the permutations.
    drop_last : bool
        Drop the last batch when it is smaller than ``batch_size`` (static shapes on
        JAX need it); otherwise it is kept.
    axis : int or sequence of int
        The sample axis, for all arrays or one per array, e.g. ``axis=(1, 0)`` for
        time-major sequences (T, N) with labels (N,). Ignored for ``PaddedSequences``.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [len(b) for _, b in ArrayBatches(x, y, batch_size=2, shuffle=False)]
    [2, 2, 1]
    >>> len(ArrayBatches(x, y, batch_size=2, drop_last=True))
    2
    """

    def __init__(self, *arrays, batch_size, shuffle=True, seed=0, drop_last=False, axis=0):
        where = "ArrayBatches"
        if not arrays:
            raise ValueError(f"{where}: arrays is empty; pass at least one array")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"{where}: batch_size must be a positive integer, got {batch_size!r}")
        axes = (axis,) * len(arrays) if isinstance(axis, (int, np.integer)) else tuple(axis)
        if len(axes) != len(arrays):
            raise ValueError(f"{where}: axis has {len(axes)} entries for {len(arrays)} arrays")
        self.arrays = [a if isinstance(a, PaddedSequences) else np.asarray(a) for a in arrays]
        self.axes = axes
        counts = [
            len(array) if isinstance(array, PaddedSequences) else _samples(array, ax, index)
            for index, (array, ax) in enumerate(zip(self.arrays, axes))
        ]
        for index, count in enumerate(counts):
            if count != counts[0]:
                raise ValueError(
                    f"{where}: arrays[{index}] has {count} samples, arrays[0] has {counts[0]}; "
                    f"every array needs the same number of samples (shapes {[_shape(a) for a in self.arrays]})"
                )
        self.num_samples = counts[0]
        if drop_last and batch_size > self.num_samples:
            raise ValueError(
                f"{where}: batch_size={batch_size} is larger than the {self.num_samples} samples, "
                "so drop_last=True leaves no batch; lower batch_size or set drop_last=False"
            )
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), int(seed)
        self.drop_last = bool(drop_last)

    def __len__(self):
        """Batches per epoch."""
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self, epoch):
        """Sample indices of epoch ``epoch`` (0-based) in batch order."""
        if not self.shuffle:
            return np.arange(self.num_samples)
        # One generator per (seed, epoch): epoch e's order needs no earlier epoch.
        return np.random.default_rng([self.seed, int(epoch)]).permutation(self.num_samples)

    def epoch(self, epoch, skip=0):
        """The batches of epoch ``epoch``, from batch ``skip`` on (a resumed epoch)."""
        order = self.order(epoch)
        for index in range(int(skip), len(self)):
            yield self.take(order[index * self.batch_size : (index + 1) * self.batch_size])

    def __iter__(self):
        return self.epoch(0)

    def take(self, indices):
        """The batch of the samples at ``indices``: a tuple of arrays."""
        batch = []
        for array, axis in zip(self.arrays, self.axes):
            if isinstance(array, PaddedSequences):
                batch.extend(array.take(indices))
            else:
                batch.append(np.take(array, indices, axis=axis))
        return tuple(batch)

    def batch_length(self, batch):
        """Samples in ``batch`` (for means weighted by batch size)."""
        first = self.arrays[0]
        if isinstance(first, PaddedSequences):
            return int(np.shape(batch[0])[1 if first.time_major else 0])
        return int(np.shape(batch[0])[self.axes[0]])


def _samples(array, axis, index):
    if array.ndim == 0:
        raise ValueError(f"ArrayBatches: arrays[{index}] is a scalar; every array needs a sample axis")
    if not -array.ndim <= axis < array.ndim:
        raise ValueError(f"ArrayBatches: axis={axis} is out of range for arrays[{index}] of shape {array.shape}")
    return array.shape[axis]


def _shape(array):
    return f"{len(array)} sequences" if isinstance(array, PaddedSequences) else tuple(array.shape)
