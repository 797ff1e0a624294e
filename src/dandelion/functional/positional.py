"""Sinusoidal position encodings (Vaswani et al. 2017, section 3.5)."""

from __future__ import annotations

import numbers

import numpy as np
import pytensor.tensor as pt

from dandelion.config import floatx


def sinusoidal_position_encoding(length, dim, base=10000.0, dtype=None):
    """``PE[t, 2i] = sin(t / base^(2i/dim))``, ``PE[t, 2i+1] = cos(t / base^(2i/dim))``.

    Parameters
    ----------
    length : int or symbolic int scalar
        Number of positions. An int gives a constant (static shape, JAX-friendly).
    dim : int
        Encoding width; an odd ``dim`` drops the last cosine column.
    base : float
    dtype : str, optional
        Default floatX.

    Returns
    -------
    (length, dim)
    """
    if not isinstance(dim, numbers.Integral) or dim < 1:
        raise ValueError(f"sinusoidal_position_encoding: dim must be a positive int, got {dim!r}")
    dtype = floatx() if dtype is None else dtype
    # frequencies are static: compute them in float64 before casting
    frequencies = np.power(float(base), -np.arange(0, dim, 2, dtype="float64") / dim)
    if isinstance(length, numbers.Integral):
        if length < 0:
            raise ValueError(f"sinusoidal_position_encoding: length must be >= 0, got {length}")
        angles = np.arange(length, dtype="float64")[:, None] * frequencies[None, :]
        table = np.empty((length, dim), dtype="float64")
        table[:, 0::2] = np.sin(angles)
        table[:, 1::2] = np.cos(angles[:, : dim // 2])
        return pt.constant(table.astype(dtype))
    angles = pt.arange(length).astype(dtype)[:, None] * pt.constant(frequencies.astype(dtype))[None, :]
    interleaved = pt.stack([pt.sin(angles), pt.cos(angles)], axis=-1).reshape((angles.shape[0], -1))
    return interleaved[:, :dim]
