"""``Dropout`` with generator states that advance on every call, on every backend."""

from __future__ import annotations

import numbers

import numpy as np
import pytensor.tensor as pt

from dandelion._compat import attach_default_update, draw_bernoulli, new_shared_rng
from dandelion.module.base import Module
from dandelion.self_update import set_update
from dandelion.util.graph import shape_of


class Dropout(Module):
    """Sets input elements to zero with probability ``p`` during training.

    Every ``forward`` call draws from a generator state of its own (seeded from
    ``seed``, so two modules with the same seed give the same masks) whose update is
    returned by ``collect_self_updates()`` and applied automatically by
    ``dandelion.function``. Compile the training function with either, and the masks
    change on every call, JAX included.

    Parameters
    ----------
    seed : int, optional
        Seed of the mask generator; a random one when None.
    """

    def __init__(self, seed=None, name=None):
        super().__init__(name=name)
        self.seed = int(np.random.randint(1, 2**31 - 1)) if seed is None else int(seed)
        self._seed_sequence = np.random.SeedSequence(self.seed)

    def _new_generator(self):
        generator = new_shared_rng(self._seed_sequence.spawn(1)[0], name=f"rng{len(self.random_states)}@Dropout|{self.name}")
        self.random_states.append(generator)
        return generator

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
        generator = self._new_generator()
        next_generator, mask = draw_bernoulli(generator, retain, mask_shape, input.dtype)
        set_update(generator, next_generator)
        attach_default_update(generator, next_generator)
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
