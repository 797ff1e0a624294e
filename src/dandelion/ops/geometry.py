"""Shape and padding arithmetic of the convolution and pooling Ops: each formula written once.

``conv_output_length`` and ``pool_output_length`` are plain arithmetic on their arguments,
with no call and no comparison of a length, so one definition serves every use: ints at
graph-build time and in the NumPy kernels, PyTensor scalars in ``infer_shape``,
``numba.njit`` of the same function in the Numba kernels, and ``dandelion.ops.c.expr``
expressions from which the C code's output sizes are generated. ``static_length`` gives
``None`` for a length unknown at build time.
"""

from __future__ import annotations

import numpy as np

CONV_PAD_MODES = ("valid", "full", "half", "same")
POOL_MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def as_int_tuple(where, argument, value, n, minimum=1):
    """``value`` (an int or a length-``n`` sequence of ints) as an ``n``-tuple, checked."""
    if isinstance(value, (int, np.integer)):
        values = (int(value),) * n
    else:
        try:
            values = tuple(int(v) for v in value)
        except TypeError:
            raise TypeError(f"{where}: {argument} must be an int or a sequence of {n} ints, got {value!r}") from None
        if len(values) != n:
            raise ValueError(f"{where}: {argument} must be an int or a sequence of {n} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{where}: {argument} must be >= {minimum}, got {value!r}")
    return values


def dilated_size(kernel, dilation):
    return (kernel - 1) * dilation + 1


def resolve_conv_pad(where, pad, kernel_size, dilation):
    """Explicit ``(pad_h, pad_w)`` for a pad mode or explicit pads.

    'valid' is no padding, 'full' pads ``dilated_kernel - 1`` (output grows by that), and
    'half' / 'same' pad ``dilated_kernel // 2``: the output keeps the input size for odd
    kernels at stride 1 (for even kernels it is one larger, as Theano's 'half').
    ``kernel_size`` may hold ``None`` only if ``pad`` does not need it.
    """
    if isinstance(pad, str):
        mode = pad.lower()
        if mode not in CONV_PAD_MODES:
            raise ValueError(f"{where}: pad must be one of {CONV_PAD_MODES} or a pair of ints, got {pad!r}")
        if mode == "valid":
            return (0, 0)
        if any(k is None for k in kernel_size):
            raise ValueError(
                f"{where}: pad={pad!r} needs the static kernel size, got filter shape {tuple(kernel_size)}; "
                "give filters a static shape or explicit pads"
            )
        sizes = [dilated_size(k, d) for k, d in zip(kernel_size, dilation)]
        if mode == "full":
            return tuple(s - 1 for s in sizes)
        return tuple(s // 2 for s in sizes)
    return as_int_tuple(where, "pad", pad, 2, minimum=0)


def conv_output_length(length, kernel, stride, pad, dilation):
    """Output length of a convolution along one axis (less than 1: the input is too small)."""
    return (length + 2 * pad - (kernel - 1) * dilation - 1) // stride + 1


def static_length(formula, length, *params):
    """``formula(length, *params)``, or ``None`` when the length or a parameter is unknown (None)."""
    if length is None or any(p is None for p in params):
        return None
    return formula(length, *params)


def conv_transposed_output_length(length, kernel, stride, pad, dilation):
    """Smallest input length of the convolution whose output has ``length`` (the adjoint's size)."""
    return (length - 1) * stride + dilated_size(kernel, dilation) - 2 * pad


def check_pool_mode(where, mode):
    if mode not in POOL_MODES:
        raise ValueError(f"{where}: mode must be one of {POOL_MODES}, got {mode!r}")
    return mode


def pool_output_length(length, ws, stride, pad, ignore_border):
    """Theano's pooled length; ``ignore_border=False`` keeps the partial window at the end.

    ``ws``, ``stride``, ``pad`` and ``ignore_border`` are ints (an Op's props); ``length``
    may also be a PyTensor scalar or a C expression.
    """
    padded = length + 2 * pad
    if ignore_border:
        windows, partial = (padded - ws) // stride + 1, 0
    elif stride >= ws:
        return (padded - 1) // stride + 1
    else:
        windows, partial = (padded - 1 - ws + stride) // stride, 1
    # max(windows, 0) without a comparison, which no single spelling serves in all four
    # uses (Python's max cannot compare a PyTensor scalar; pt.maximum is no Numba or C
    # function) while abs is defined in each; windows + |windows| is even, so // 2 is exact.
    return (windows + abs(windows)) // 2 + partial


def adaptive_bin_start(index, length, bins):
    """First input index of bin ``index`` of ``bins`` along an axis of ``length``: floor(i n / d).

    Adaptive pooling (PyTorch's ``adaptive_*_pool``, SPP's 'stretch') cuts an axis into
    ``bins`` bins; bin i covers [floor(i n / d), ceil((i + 1) n / d)), never empty for
    n >= 1, and neighbours share a pixel when d does not divide n (pixels repeat if n < d).
    Plain arithmetic, like ``pool_output_length``: ints, NumPy arrays, PyTensor scalars,
    Numba and ``CExpr`` all evaluate this one definition.
    """
    return (index * length) // bins


def adaptive_bin_end(index, length, bins):
    """End (exclusive) of bin ``index``: ceil((i + 1) n / d), as a floor division (all terms are >= 0)."""
    return ((index + 1) * length + bins - 1) // bins


def pool_buffer_length(length, ws, stride, pad, out_length):
    """Length of the padded buffer that holds every window whole (partial windows extended)."""
    return max(length + 2 * pad, (out_length - 1) * stride + ws) if out_length > 0 else length + 2 * pad


def pool_window_counts(length, ws, stride, pad, out_length, include_padding):
    """Per-output divisor of average pooling along one axis (1-D int array).

    Windows are clipped to the padded input (``include_padding``) or to the input itself.
    """
    starts = np.arange(out_length) * stride
    if include_padding:
        lo, hi = starts, np.minimum(starts + ws, length + 2 * pad)
    else:
        lo, hi = np.maximum(starts, pad), np.minimum(starts + ws, length + pad)
    return np.maximum(hi - lo, 0)


def pool_counts(spatial, ws, stride, pad, out_shape, include_padding):
    """Outer product of the per-axis window counts, shape ``out_shape`` (float64)."""
    counts = np.ones((), dtype="float64")
    for n, w, s, p, o in zip(spatial, ws, stride, pad, out_shape):
        axis_counts = pool_window_counts(n, w, s, p, o, include_padding).astype("float64")
        counts = np.multiply.outer(counts, axis_counts)
    return counts
