"""``Dropout`` with masks that change on every call and resume exactly, on every backend."""

from __future__ import annotations

import numbers

import numpy as np
import pytensor.tensor as pt

from dandelion._compat import attach_default_update
from dandelion.functional.random_bits import uniform_from_counter
from dandelion.module.base import Module
from dandelion.self_update import set_update
from dandelion.util.graph import shape_of


class Dropout(Module):
    """Sets input elements to zero with probability ``p`` during training.

    Masks are a counter-based hash of (seed, call site, step counter, element), so two
    modules with the same seed give the same masks, on every backend alike. The step
    counter is the module's random state: its update is returned by
    ``collect_self_updates()`` and applied automatically by ``dandelion.function``;
    compile the training function with either and the masks change on every call, JAX
    included. The counter is saved by checkpoints (not by ``get_weights``), so training
    resumes with the same masks. Each ``forward`` call in a graph is its own stream, so
    dropout applied twice draws independent masks.

    Parameters
    ----------
    seed : int, optional
        Seed of the masks; a random one when None.
    """

    def __init__(self, seed=None, name=None):
        super().__init__(name=name)
        self.seed = int(np.random.randint(1, 2**31 - 1)) if seed is None else int(seed)
        # The seed is a state too: a checkpoint then restores the whole stream.
        self.seed_state = self.register_random_state(np.asarray(self.seed % 2**32, dtype="uint32"))
        self.counter = self.register_random_state(np.zeros((), dtype="uint32"))
        self._streams = 0
        next_counter = self.counter + np.uint32(1)
        set_update(self.counter, next_counter)
        # Theano-era code compiling with plain pytensor.function(no_default_updates=False)
        # relied on RandomStreams' implicit updates; keep that working.
        attach_default_update(self.counter, next_counter)

    def forward(self, input, p=0.5, shared_axes=(), rescale=True):
        """Dropout mask applied to ``input`` (any shape).

        p : float or symbolic scalar, probability of dropping. ``p <= 0`` returns the input
            unchanged, ``p == 1`` zeros; ``p > 1`` is an error.
        shared_axes : tuple of int, axes (negative allowed) along which one mask value is
            shared, e.g. (2, 3) drops whole feature maps of (B, C, H, W) input.
        rescale : bool, divide kept values by ``1 - p`` so the expectation is unchanged.
        """
        input = pt.as_tensor_variable(input)
        if isinstance(p, numbers.Number):
            if p > 1:
                raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
            if p <= 0:
                return input
        shared = set()
        for axis in shared_axes:
            if not -input.ndim <= axis < input.ndim:
                raise ValueError(f"Dropout: shared_axes entry {axis} is out of range for input of ndim {input.ndim}")
            shared.add(axis % input.ndim)
        # Static lengths where known: JAX needs a constant sample shape.
        mask_shape = tuple(1 if axis in shared else length for axis, length in enumerate(shape_of(input)))

        retain = pt.clip(1 - pt.as_tensor_variable(p, dtype=input.dtype), 0, 1).astype(input.dtype)
        uniform = uniform_from_counter(self.seed_state, self._streams, self.counter, mask_shape, input.dtype)
        self._streams += 1
        mask = pt.lt(uniform, retain).astype(input.dtype)
        if shared:
            mask = pt.specify_broadcastable(mask, *sorted(shared))
        output = input * mask
        if rescale:
            # retain == 0 (p == 1) gives all-zero masks; avoid 0/0.
            output = pt.switch(pt.gt(retain, 0), output / pt.maximum(retain, np.finfo(np.float32).tiny), 0)
        return output

    def predict(self, input, *args, **kwargs):
        """Identity: no dropout at inference."""
        return input
