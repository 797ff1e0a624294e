"""Positional embeddings added to batch-first sequences (B, T, dim)."""

from __future__ import annotations

import numbers

from dandelion import initialization as init
from dandelion.functional.positional import sinusoidal_position_encoding
from dandelion.module.base import Module
from dandelion.module.checks import check_axis_length, check_ndim
from dandelion.util.graph import shape_of


def _sequence(where, x, dim):
    x = check_ndim(where, "input", x, 3)
    return check_axis_length(where, "input", x, 2, dim, "dim")


class SinusoidalPositionalEmbedding(Module):
    """Adds the fixed sinusoidal encoding of each position (no parameters).

    Parameters
    ----------
    dim : int
    base : float

    ``forward(input)``: (B, T, dim) -> (B, T, dim), ``input + PE[:T]``.
    """

    def __init__(self, dim, base=10000.0, name=None):
        super().__init__(name=name)
        if not isinstance(dim, numbers.Integral) or dim < 1:
            raise ValueError(f"SinusoidalPositionalEmbedding: dim must be a positive int, got {dim!r}")
        self.dim = int(dim)
        self.base = float(base)

    def forward(self, input):
        input = _sequence("SinusoidalPositionalEmbedding", input, self.dim)
        length = shape_of(input)[1]
        return input + sinusoidal_position_encoding(length, self.dim, self.base, dtype=input.dtype)[None]


class LearnedPositionalEmbedding(Module):
    """Adds a learned vector per position, ``W[t]`` for t < ``max_length``.

    Parameters
    ----------
    max_length : int
        Longest sequence the embedding serves (checked when T is static).
    dim : int
    W : initializer, ndarray or shared variable (max_length, dim)

    ``forward(input)``: (B, T, dim) -> (B, T, dim), ``input + W[:T]``.
    """

    def __init__(self, max_length, dim, W=init.Normal(0.02), name=None):
        super().__init__(name=name)
        for argument, value in (("max_length", max_length), ("dim", dim)):
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"LearnedPositionalEmbedding: {argument} must be a positive int, got {value!r}")
        self.max_length = int(max_length)
        self.dim = int(dim)
        self.W = self.register_param(W, shape=(self.max_length, self.dim))

    def forward(self, input):
        input = _sequence("LearnedPositionalEmbedding", input, self.dim)
        length = input.type.shape[1]
        if length is not None and length > self.max_length:
            raise ValueError(f"LearnedPositionalEmbedding: input length (axis 1) must be <= max_length {self.max_length}, got {length}")
        return input + self.W[: shape_of(input)[1]].astype(input.dtype)[None]
