"""2-D convolution and transposed convolution of image batches (B, C, H, W)."""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable

from dandelion.ops.conv import Conv2dGradInputOp, Conv2dOp
from dandelion.ops.geometry import as_int_tuple, conv_transposed_output_length, resolve_conv_pad, static_length


def _kernel_size(where, filters, filter_size):
    static = filters.type.shape[2:]
    if filter_size is None:
        return static
    filter_size = as_int_tuple(where, "filter_size", filter_size, 2)
    if any(s is not None and s != f for s, f in zip(static, filter_size)):
        raise ValueError(f"{where}: filter_size {filter_size} disagrees with the filters' static shape {filters.type.shape}")
    return filter_size


def _tensor(where, argument, value):
    value = pt.as_tensor_variable(value)
    if value.ndim != 4:
        raise ValueError(f"{where}: {argument} must be 4-D, got ndim {value.ndim} (static shape {value.type.shape})")
    return value


def _filters(where, filters):
    """The filters, with the static shape of their current value when they are a shared
    variable declared without one (``pytensor.shared(W)``, the Theano-era habit): JAX
    needs the kernel size, and a later ``set_value`` of another shape fails loudly."""
    filters = _tensor(where, "filters", filters)
    if isinstance(filters, SharedVariable) and None in filters.type.shape:
        filters = pt.specify_shape(filters, filters.get_value(borrow=True).shape)
    return filters


def conv2d(input, filters, stride=(1, 1), pad="valid", dilation=(1, 1), num_groups=1, flip_filters=True, filter_size=None):
    """Grouped, strided, dilated 2-D convolution.

    Parameters
    ----------
    input : (B, C, H, W) tensor
    filters : (O, C // num_groups, kh, kw) tensor
    stride, dilation : int or pair of int
    pad : {'valid', 'full', 'half', 'same'} or int or pair of int
        With ``dilated_k = dilation * (k - 1) + 1``: 'full' pads ``dilated_k - 1``,
        'half'/'same' pad ``dilated_k // 2`` (odd kernels keep the size at stride 1).
    num_groups : int
        Input and output channels split into this many independent groups.
    flip_filters : bool
        True: convolution (filters flipped); False: cross-correlation.
    filter_size : pair of int, optional
        (kh, kw) when ``filters`` has no static shape and ``pad`` is a mode needing it.

    Returns
    -------
    (B, O, H_out, W_out) tensor, ``H_out = (H + 2 pad_h - dilation_h (kh - 1) - 1) // stride_h + 1``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.functional import conv2d
    >>> x = pt.tensor("x", shape=(2, 3, 8, 8))
    >>> w = pt.tensor("w", shape=(4, 3, 3, 3))
    >>> conv2d(x, w, pad="same").type.shape
    (2, 4, 8, 8)
    """
    input = _tensor("conv2d", "input", input)
    filters = _filters("conv2d", filters)
    dilation = as_int_tuple("conv2d", "dilation", dilation, 2)
    pads = resolve_conv_pad("conv2d", pad, _kernel_size("conv2d", filters, filter_size), dilation)
    return Conv2dOp(stride, pads, dilation, num_groups, flip_filters)(input, filters)


def conv2d_transpose(
    input, filters, output_size=None, stride=(1, 1), pad="valid", dilation=(1, 1), num_groups=1, flip_filters=True, filter_size=None
):
    """Transposed convolution: the gradient of ``conv2d`` with respect to its input.

    Parameters
    ----------
    input : (B, C_in, H, W) tensor
    filters : (C_in, C_out // num_groups, kh, kw) tensor
        The layout of the ``conv2d`` whose adjoint this is (``conv2d`` maps C_out to C_in).
    output_size : pair of int or of scalars, optional
        (H_out, W_out). Defaults to ``(H - 1) * stride + dilation * (k - 1) + 1 - 2 * pad``,
        the smallest size a strided ``conv2d`` maps to (H, W).
    stride, pad, dilation, num_groups, flip_filters, filter_size
        As for ``conv2d`` (pad 'full' crops ``dilated_k - 1``, 'same' ``dilated_k // 2``).

    Returns
    -------
    (B, C_out, H_out, W_out) tensor
    """
    input = _tensor("conv2d_transpose", "input", input)
    filters = _filters("conv2d_transpose", filters)
    stride = as_int_tuple("conv2d_transpose", "stride", stride, 2)
    dilation = as_int_tuple("conv2d_transpose", "dilation", dilation, 2)
    kernel = _kernel_size("conv2d_transpose", filters, filter_size)
    pads = resolve_conv_pad("conv2d_transpose", pad, kernel, dilation)
    if input.type.shape[1] is not None and filters.type.shape[0] is not None and input.type.shape[1] != filters.type.shape[0]:
        raise ValueError(
            f"conv2d_transpose: input has {input.type.shape[1]} channels, filters.shape[0] is {filters.type.shape[0]}"
        )
    if output_size is None:
        sizes = [
            static_length(conv_transposed_output_length, n, k, s, p, d)
            for n, k, s, p, d in zip(input.type.shape[2:], kernel, stride, pads, dilation)
        ]
        if any(n is None for n in sizes):
            sizes = [
                conv_transposed_output_length(input.shape[2 + i], filters.shape[2 + i], stride[i], pads[i], dilation[i])
                for i in range(2)
            ]
        elif min(sizes) < 1:
            raise ValueError(f"conv2d_transpose: output size {tuple(sizes)} is empty (pad {pads} too large)")
        output_size = sizes
    return Conv2dGradInputOp(stride, pads, dilation, num_groups, flip_filters)(filters, input, output_size)
