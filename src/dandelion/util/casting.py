"""Checked dtype conversion for loading weights: refuse casts that change values.

A value may go into a variable of another dtype when NumPy calls the cast safe
(``int16`` into ``float32``), or when every value survives the round trip exactly
(``float64`` weights that are float32 numbers, integers stored as floats). Otherwise
(``0.75`` into ``int32``, complex into real, text, float64 values float32 cannot hold)
it is refused with the weight's name and both dtypes; ``allow_downcast=True`` accepts
float-to-float rounding (float64 into float32), never a change of kind.
"""

from __future__ import annotations

import warnings

import numpy as np


def _round_trips(array, cast):
    back = cast.astype(array.dtype)
    if array.dtype.kind in "fc":
        return bool(np.array_equal(back, array, equal_nan=True))
    return bool(np.array_equal(back, array))


def checked_cast(value, dtype, name, where, allow_downcast=False):
    """``value`` as an array of ``dtype``, or a ``TypeError`` naming ``name``.

    Parameters
    ----------
    value : array-like
    dtype : str or numpy dtype
        The target variable's dtype.
    name : str
        The weight's or state's name, for the message.
    where : str
        The calling function, for the message.
    allow_downcast : bool
        Accept float-to-float casts that round (float64 into float32).

    Returns
    -------
    numpy array of ``dtype``.
    """
    target = np.dtype(dtype)
    try:
        array = np.asarray(value)
    except Exception as error:  # ragged lists and the like
        raise TypeError(f"{where}: {name!r} is not an array ({type(error).__name__}: {error})") from None
    if array.dtype == target:
        return array
    if array.dtype.kind not in "biufc":
        raise TypeError(f"{where}: {name!r} has dtype {array.dtype}, which cannot be stored in a {target} variable")
    if np.can_cast(array.dtype, target, casting="safe"):
        return array.astype(target)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        cast = array.astype(target)
        if _round_trips(array, cast):
            return cast
    overflow = bool((np.isfinite(array) & ~np.isfinite(cast)).any()) if target.kind == "f" else False
    if allow_downcast and array.dtype.kind == "f" and target.kind == "f" and not overflow:
        return cast
    hint = ""
    if array.dtype.kind == "f" and target.kind == "f":
        hint = "; values overflow to inf" if overflow else "; pass allow_downcast=True to round floats"
    raise TypeError(
        f"{where}: {name!r} has dtype {array.dtype} with values that a variable of dtype {target} cannot hold "
        f"exactly (a cast would change them){hint}"
    )
