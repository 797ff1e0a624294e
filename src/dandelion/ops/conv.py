"""The 2-D convolution Op family: the forward convolution and its two adjoints.

``Conv2dOp`` is a batched, grouped, strided, dilated 2-D convolution (or cross-correlation);
``Conv2dGradInputOp`` and ``Conv2dGradFiltersOp`` are its adjoints in the input and in the
filters. The three are linear in each argument, so each one's gradient is built from the
other two, which is why they share this file. Their kernels live at mirrored paths:
NumPy in ``conv_numpy`` (``perform``), C in ``c/conv.py``, Numba in ``numba/conv.py``, JAX in
``jax/conv.py``. Users call ``dandelion.functional.conv2d`` / ``conv2d_transpose``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.scalar import upcast

from dandelion._compat import ShapeInferringOp
from dandelion.ops import conv_numpy
from dandelion.ops.c.conv import ConvCOp
from dandelion.ops.geometry import as_int_tuple, conv_output_length, static_length


def check_conv_params(where, stride, pad, dilation, num_groups, flip):
    stride = as_int_tuple(where, "stride", stride, 2)
    pad = as_int_tuple(where, "pad", pad, 2, minimum=0)
    dilation = as_int_tuple(where, "dilation", dilation, 2)
    if not isinstance(num_groups, (int, np.integer)) or num_groups < 1:
        raise ValueError(f"{where}: num_groups must be a positive int, got {num_groups!r}")
    return stride, pad, dilation, int(num_groups), bool(flip)


def as_float_tensor(where, argument, value, ndim):
    value = pt.as_tensor_variable(value)
    if value.ndim != ndim:
        raise ValueError(f"{where}: {argument} must have ndim {ndim}, got ndim {value.ndim} (static shape {value.type.shape})")
    if not value.dtype.startswith("float"):
        raise TypeError(f"{where}: {argument} must have a float dtype, got {value.dtype}")
    return value


def check_groups(where, channels, out_channels, cg, groups, channel_argument="input"):
    """Static channel bookkeeping shared by the three convolution Ops."""
    if out_channels is not None and out_channels % groups != 0:
        raise ValueError(f"{where}: num_groups={groups} must divide the filters' output channels, got {out_channels}")
    if channels is not None and cg is not None and channels != cg * groups:
        raise ValueError(
            f"{where}: {channel_argument} has {channels} channels, expected filters.shape[1] * num_groups = {cg} * {groups} = {cg * groups}"
        )


def flip_filters(w):
    return w[:, :, ::-1, ::-1]


def static_or_symbolic_hw(var):
    """The last two lengths of ``var``: constants when static, so that shapes stay static."""
    static = var.type.shape[2:]
    if all(n is not None for n in static):
        return pt.as_tensor_variable(np.asarray(static, dtype="int64"))
    return var.shape[2:]


def as_hw_vector(where, argument, hw):
    """``hw`` (a pair of ints, or an int vector variable of length 2) as ``(int64 vector, static pair)``."""
    if isinstance(hw, (tuple, list)) and all(isinstance(v, (int, np.integer)) for v in hw):
        hw = np.asarray(hw, dtype="int64")
    elif isinstance(hw, (tuple, list)):
        hw = pt.stack([pt.as_tensor_variable(v) for v in hw])
    var = pt.as_tensor_variable(hw)
    if var.ndim != 1 or not var.dtype.startswith(("int", "uint")):
        raise TypeError(f"{where}: {argument} must be a pair of ints, got {hw!r}")
    if var.type.shape[0] not in (None, 2):
        raise ValueError(f"{where}: {argument} must have length 2, got {var.type.shape[0]}")
    var = pt.cast(var, "int64")
    data = getattr(var, "data", None)
    static = (None, None) if data is None else tuple(int(v) for v in data)
    return var, static


class ConvParams(ShapeInferringOp, ConvCOp):
    """Base of the three convolution Ops: their props, output sizes and size check."""

    __props__ = ("stride", "pad", "dilation", "num_groups", "flip")
    op_name = "conv2d"

    def __init__(self, stride=(1, 1), pad=(0, 0), dilation=(1, 1), num_groups=1, flip=True):
        self.stride, self.pad, self.dilation, self.num_groups, self.flip = check_conv_params(
            self.op_name, stride, pad, dilation, num_groups, flip
        )

    def output_hw(self, in_hw, kernel):
        """Convolved (H_out, W_out) of ints, PyTensor scalars or ``None`` (unknown)."""
        return tuple(
            static_length(conv_output_length, n, k, s, p, d)
            for n, k, s, p, d in zip(in_hw, kernel, self.stride, self.pad, self.dilation)
        )

    def check_sizes(self, in_hw, kernel, out_hw):
        """The convolution of an ``in_hw`` image must give ``out_hw`` (unknown sizes pass)."""
        for expected, o in zip(self.output_hw(in_hw, kernel), out_hw):
            if expected is not None and o is not None and expected != o:
                raise ValueError(
                    f"{self.op_name}: an input of size {tuple(in_hw)} convolved with a {tuple(kernel)} filter "
                    f"(stride {self.stride}, pad {self.pad}, dilation {self.dilation}) gives {expected} rows/cols, "
                    f"but the output gradient has {tuple(out_hw)}"
                )

    def adjoints(self):
        """``(Conv2dOp, Conv2dGradInputOp, Conv2dGradFiltersOp)`` with these props."""
        props = self._props_dict()
        return Conv2dOp(**props), Conv2dGradInputOp(**props), Conv2dGradFiltersOp(**props)


class Conv2dOp(ConvParams):
    """``y[b, o] = sum_c x[b, c] (*) w[o, c]`` per group; inputs x (B, C, H, W), w (O, C//g, kh, kw).

    ``flip=True`` flips the filters (true convolution); ``pad`` is explicit ``(ph, pw)``.
    Output (B, O, H_out, W_out), sizes from ``geometry.conv_output_length``.
    """

    conv_mode = 0
    op_name = "conv2d"

    def make_node(self, x, w):
        x = as_float_tensor("conv2d", "input", x, 4)
        w = as_float_tensor("conv2d", "filters", w, 4)
        check_groups("conv2d", x.type.shape[1], w.type.shape[0], w.type.shape[1], self.num_groups)
        out_hw = self.output_hw(x.type.shape[2:], w.type.shape[2:])
        if any(n is not None and n < 1 for n in out_hw):
            raise ValueError(
                f"conv2d: the (padded) input {x.type.shape[2:]} with pad {self.pad} is smaller than the dilated "
                f"filter {w.type.shape[2:]} (dilation {self.dilation}): output size would be {out_hw}"
            )
        dtype = upcast(x.dtype, w.dtype)
        out = pt.tensor(dtype=dtype, shape=(x.type.shape[0], w.type.shape[0], *out_hw))
        return Apply(self, [x, w], [out])

    def effective_filters(self, w):
        return flip_filters(w) if self.flip else w

    def perform(self, node, inputs, output_storage):
        x, w = inputs
        if x.shape[1] != w.shape[1] * self.num_groups:
            raise ValueError(f"conv2d: input has {x.shape[1]} channels, filters expect {w.shape[1]} * {self.num_groups}")
        out_hw = self.output_hw(x.shape[2:], w.shape[2:])
        if min(out_hw) < 1:
            raise ValueError(f"conv2d: input {x.shape} too small for filters {w.shape} with pad {self.pad}")
        out = conv_numpy.conv2d_forward(
            x, self.effective_filters(w), self.stride, self.pad, self.dilation, self.num_groups, out_hw
        )
        output_storage[0][0] = out.astype(node.outputs[0].dtype, copy=False)

    def output_shapes(self, node, input_shapes):
        xs, ws = input_shapes
        return [(xs[0], ws[0], *self.output_hw(xs[2:], ws[2:]))]

    def pullback(self, inputs, outputs, cotangents):
        x, w = inputs
        (gy,) = cotangents
        _, grad_input, grad_filters = self.adjoints()
        gx = grad_input(w, gy, static_or_symbolic_hw(x))
        gw = grad_filters(x, gy, static_or_symbolic_hw(w))
        return [gx.astype(x.dtype), gw.astype(w.dtype)]


class ConvAdjointOp(ConvParams):
    """Base of the two adjoints, with inputs ``(a, gy, hw)``: a is w or x, ``hw`` the output's (H, W) or (kh, kw).

    Each is bilinear in (a, gy): ``<bar, F(a, gy)> = <conv(x, w), gy>`` where ``bar`` and
    ``a`` stand for x and w (one each), so the cotangent of gy is a forward convolution
    and that of a the other adjoint at ``(bar, gy)``.
    """

    def leading_shape(self, a_shape, gy_shape):
        """The output's first two lengths."""
        raise NotImplementedError

    def forward_arguments(self, a, bar):
        """``(x, w)`` of the forward convolution that is gy's cotangent."""
        raise NotImplementedError

    def output_shapes(self, node, input_shapes):
        a_shape, gy_shape, _ = input_shapes
        hw = node.inputs[2]
        return [(*self.leading_shape(a_shape, gy_shape), hw[0], hw[1])]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        a, gy, _ = inputs
        (bar,) = cotangents
        forward, grad_input, grad_filters = self.adjoints()
        other = grad_filters if isinstance(self, Conv2dGradInputOp) else grad_input
        g_a = other(bar, gy, static_or_symbolic_hw(a))
        g_gy = forward(*self.forward_arguments(a, bar))
        return [g_a.astype(a.dtype), g_gy.astype(gy.dtype), disconnected_type()]


class Conv2dGradInputOp(ConvAdjointOp):
    """Gradient of ``Conv2dOp(props)(x, w)`` with respect to x, given the output cotangent.

    Inputs: w (O, C//g, kh, kw), gy (B, O, H_out, W_out) and ``in_hw`` (2,) int, the
    image size (H, W) of x, which a strided convolution cannot recover from gy alone.
    Output (B, C, H, W). Linear in w and in gy, so its own gradients are a ``Conv2dOp``
    (in gy) and a ``Conv2dGradFiltersOp`` (in w).
    """

    conv_mode = 1
    op_name = "conv2d_grad_input"

    def make_node(self, w, gy, in_hw):
        w = as_float_tensor("conv2d_grad_input", "filters", w, 4)
        gy = as_float_tensor("conv2d_grad_input", "output_grad", gy, 4)
        in_hw, static_hw = as_hw_vector("conv2d_grad_input", "input_shape", in_hw)
        check_groups("conv2d_grad_input", None, w.type.shape[0], w.type.shape[1], self.num_groups)
        if gy.type.shape[1] is not None and w.type.shape[0] is not None and gy.type.shape[1] != w.type.shape[0]:
            raise ValueError(
                f"conv2d_grad_input: output_grad has {gy.type.shape[1]} channels, filters have {w.type.shape[0]} output channels"
            )
        self.check_sizes(static_hw, w.type.shape[2:], gy.type.shape[2:])
        channels = None if w.type.shape[1] is None else w.type.shape[1] * self.num_groups
        out = pt.tensor(dtype=upcast(w.dtype, gy.dtype), shape=(gy.type.shape[0], channels, *static_hw))
        return Apply(self, [w, gy, in_hw], [out])

    def perform(self, node, inputs, output_storage):
        w, gy, in_hw = inputs
        in_hw = tuple(int(v) for v in in_hw)
        if gy.shape[1] != w.shape[0]:
            raise ValueError(f"conv2d_grad_input: output_grad has {gy.shape[1]} channels, filters {w.shape[0]}")
        self.check_sizes(in_hw, w.shape[2:], gy.shape[2:])
        w_eff = flip_filters(w) if self.flip else w
        out = conv_numpy.conv2d_input_grad(w_eff, gy, self.stride, self.pad, self.dilation, self.num_groups, in_hw)
        output_storage[0][0] = out.astype(node.outputs[0].dtype, copy=False)

    def leading_shape(self, w_shape, gy_shape):
        return gy_shape[0], w_shape[1] * self.num_groups

    def forward_arguments(self, w, gx_bar):
        return gx_bar, w


class Conv2dGradFiltersOp(ConvAdjointOp):
    """Gradient of ``Conv2dOp(props)(x, w)`` with respect to w, given the output cotangent.

    Inputs: x (B, C, H, W), gy (B, O, H_out, W_out) and ``kernel_hw`` (2,) int, the filter
    size (kh, kw). Output (O, C//g, kh, kw). Linear in x and in gy: its gradients are a
    ``Conv2dGradInputOp`` (in x) and a ``Conv2dOp`` (in gy).
    """

    conv_mode = 2
    op_name = "conv2d_grad_filters"

    def make_node(self, x, gy, kernel_hw):
        x = as_float_tensor("conv2d_grad_filters", "input", x, 4)
        gy = as_float_tensor("conv2d_grad_filters", "output_grad", gy, 4)
        kernel_hw, static_k = as_hw_vector("conv2d_grad_filters", "filter_shape", kernel_hw)
        channels, out_channels = x.type.shape[1], gy.type.shape[1]
        check_groups("conv2d_grad_filters", None, out_channels, None, self.num_groups)
        if channels is not None and channels % self.num_groups != 0:
            raise ValueError(f"conv2d_grad_filters: num_groups={self.num_groups} must divide the input's {channels} channels")
        self.check_sizes(x.type.shape[2:], static_k, gy.type.shape[2:])
        cg = None if channels is None else channels // self.num_groups
        out = pt.tensor(dtype=upcast(x.dtype, gy.dtype), shape=(out_channels, cg, *static_k))
        return Apply(self, [x, gy, kernel_hw], [out])

    def perform(self, node, inputs, output_storage):
        x, gy, kernel_hw = inputs
        kernel = tuple(int(v) for v in kernel_hw)
        if x.shape[0] != gy.shape[0] or x.shape[1] % self.num_groups or gy.shape[1] % self.num_groups:
            raise ValueError(f"conv2d_grad_filters: inconsistent input {x.shape} and output_grad {gy.shape}")
        self.check_sizes(x.shape[2:], kernel, gy.shape[2:])
        out = conv_numpy.conv2d_filter_grad(x, gy, self.stride, self.pad, self.dilation, self.num_groups, kernel)
        if self.flip:
            out = flip_filters(out)
        output_storage[0][0] = np.ascontiguousarray(out, dtype=node.outputs[0].dtype)

    def leading_shape(self, x_shape, gy_shape):
        return gy_shape[1], x_shape[1] // self.num_groups

    def forward_arguments(self, x, w_bar):
        return x, w_bar
