"""The pooling Op family: max / sum / average pooling over the last 1, 2 or 3 axes, and its gradients.

``PoolOp`` pools; ``PoolGradOp`` is its gradient in the input; ``MaxPoolGatherOp`` reads
a tensor at the maxima of max pooling (the gradient of ``PoolGradOp`` in its cotangent).
With ``output_size`` set, the three pool adaptively instead: output i of d along an
axis of length n covers [floor(i n / d), ceil((i + 1) n / d)) (``geometry.adaptive_bin_start``
/ ``adaptive_bin_end``); only the window bounds differ, so every kernel serves both.
Each one's gradient is another of the three, which is why they share this file. Their
kernels live at mirrored paths: NumPy in ``pool_numpy`` (``perform``), C in ``c/pool.py``,
Numba in ``numba/pool.py``, JAX in ``jax/pool.py``. Users call ``dandelion.functional``'s
pooling functions.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.link.c.op import COp

from dandelion._compat import ShapeInferringOp
from dandelion.ops import pool_numpy
from dandelion.ops.c import pool as pool_c
from dandelion.ops.geometry import as_int_tuple, check_pool_mode, pool_output_length, static_length

MODE_CODES = {"max": 0, "sum": 1, "average_inc_pad": 2, "average_exc_pad": 3}


def check_pool_params(where, nd, ws, stride, pad, ignore_border, mode):
    """Normalised ``(nd, ws, stride, pad, ignore_border, mode)`` with clear errors."""
    if nd not in (1, 2, 3):
        raise ValueError(f"{where}: pooling acts on 1, 2 or 3 axes, got {nd}")
    ws = as_int_tuple(where, "ws", ws, nd)
    stride = ws if stride is None else as_int_tuple(where, "stride", stride, nd)
    pad = as_int_tuple(where, "pad", pad, nd, minimum=0)
    check_pool_mode(where, mode)
    if any(p >= w for p, w in zip(pad, ws)):
        raise ValueError(f"{where}: pad must be smaller than ws in every axis (a window would see padding only), got pad={pad}, ws={ws}")
    if not ignore_border and any(pad):
        raise ValueError(f"{where}: padding needs ignore_border=True (as in Theano), got pad={pad} with ignore_border=False")
    return nd, ws, stride, pad, bool(ignore_border), mode


def check_output_size(where, nd, output_size):
    """``output_size`` (an int or ``nd`` ints, each >= 1) as an ``nd``-tuple, with a clear error."""
    if isinstance(output_size, bool) or not isinstance(output_size, (int, np.integer, tuple, list)):
        raise TypeError(f"{where}: output_size must be an int or a sequence of {nd} ints, got {output_size!r}")
    if isinstance(output_size, (tuple, list)) and any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in output_size):
        raise TypeError(f"{where}: output_size must be an int or a sequence of {nd} ints, got {output_size!r}")
    return as_int_tuple(where, "output_size", output_size, nd)


class PoolParams(ShapeInferringOp):
    """Base of the pooling Ops: their props and output-shape arithmetic.

    ``output_size`` (None, or ``nd`` ints) makes the Op adaptive: the pooled lengths are
    ``output_size`` whatever the input, and ``ws``, ``stride``, ``pad`` keep their trivial
    values (build one with ``adaptive``).
    """

    __props__ = ("nd", "ws", "stride", "pad", "ignore_border", "mode", "output_size")

    def __init__(self, nd, ws, stride=None, pad=None, ignore_border=True, mode="max", output_size=None):
        where = type(self).__name__
        pad = (0,) * nd if pad is None else pad
        self.nd, self.ws, self.stride, self.pad, self.ignore_border, self.mode = check_pool_params(
            where, nd, ws, stride, pad, ignore_border, mode
        )
        self.output_size = None if output_size is None else check_output_size(where, nd, output_size)
        if self.output_size is not None and (self.ws, self.stride, self.pad) != ((1,) * nd, (1,) * nd, (0,) * nd):
            raise ValueError(f"{where}: an adaptive pool (output_size={self.output_size}) takes no ws, stride or pad, got ws={self.ws}, stride={self.stride}, pad={self.pad}")

    @classmethod
    def adaptive(cls, nd, output_size, mode="max"):
        """The adaptive Op: ``output_size`` bins per pooled axis (see ``geometry.adaptive_bin_start``)."""
        return cls(nd, (1,) * nd, mode=mode, output_size=output_size)

    def pooled_spatial(self, spatial):
        """Pooled lengths of ints, PyTensor scalars or ``None`` (unknown)."""
        if self.output_size is not None:
            return self.output_size
        return tuple(
            static_length(pool_output_length, n, w, s, p, self.ignore_border)
            for n, w, s, p in zip(spatial, self.ws, self.stride, self.pad)
        )

    def check_input(self, where, x):
        x = pt.as_tensor_variable(x)
        if x.ndim < self.nd:
            raise ValueError(f"{where}: input must have ndim >= {self.nd}, got ndim {x.ndim}")
        if not x.dtype.startswith("float"):
            raise TypeError(f"{where}: input must have a float dtype, got {x.dtype}")
        self.check_nonempty(where, x.type.shape[-self.nd :])
        return x

    def check_nonempty(self, where, spatial):
        if self.output_size is not None:
            if any(n is not None and n < 1 for n in spatial):
                raise ValueError(f"{where}: adaptive pooling needs every pooled axis non-empty, got spatial shape {tuple(spatial)}")
            return
        out = self.pooled_spatial(spatial)
        if any(o is not None and o < 1 for o in out):
            raise ValueError(
                f"{where}: window {self.ws} is larger than the padded input {tuple(spatial)} (pad {self.pad}) "
                "with ignore_border=True; use ignore_border=False or a smaller window"
            )

    def output_type(self, x):
        spatial = self.pooled_spatial(x.type.shape[-self.nd :])
        return pt.tensor(dtype=x.dtype, shape=x.type.shape[: -self.nd] + spatial)

    def symbolic_pooled_shape(self, shape):
        """Output shape from a symbolic input shape (for ``infer_shape``)."""
        return tuple(shape[: -self.nd]) + self.pooled_spatial(shape[-self.nd :])

    def related(self):
        """``(PoolOp, PoolGradOp)`` with these props."""
        props = self._props_dict()
        return PoolOp(**props), PoolGradOp(**props)


class PoolCOp(COp):
    """Mixin: the C support code and version shared by the pooling Ops with C code."""

    def c_support_code(self, **kwargs):
        return pool_c.support_code()

    def c_code_cache_version(self):
        return pool_c.C_CODE_VERSION


class PoolOp(PoolParams, PoolCOp):
    """Pool x (..., *spatial) over its last ``nd`` axes; output (..., *pooled).

    Modes: 'max' (padding never wins), 'sum', 'average_inc_pad' (divides by the window
    clipped to the padded input) and 'average_exc_pad' (by the window's input pixels).
    ``ignore_border=False`` keeps a partial window at the end of an axis. Adaptive
    (``output_size``): pooled shape ``output_size``; both averages divide by the bin's pixels.
    """

    def make_node(self, x):
        x = self.check_input("pool", x)
        return Apply(self, [x], [self.output_type(x)])

    def perform(self, node, inputs, output_storage):
        (x,) = inputs
        self.check_nonempty("pool", x.shape[-self.nd :])
        if self.output_size is not None:
            out = pool_numpy.adaptive_forward(x, self.output_size, self.mode)
        else:
            out = pool_numpy.pool_forward(x, self.nd, self.ws, self.stride, self.pad, self.ignore_border, self.mode)
        output_storage[0][0] = np.asarray(out, dtype=node.outputs[0].dtype)

    def c_code(self, node, name, inputs, outputs, sub):
        return pool_c.pool_forward_c(self, node, name, inputs, outputs, sub)

    def output_shapes(self, node, input_shapes):
        return [self.symbolic_pooled_shape(input_shapes[0])]

    def pullback(self, inputs, outputs, cotangents):
        (x,) = inputs
        _, grad = self.related()
        return [grad(x, cotangents[0])]


class PoolGradOp(PoolParams, PoolCOp):
    """Inputs x (..., *spatial) and gy (..., *pooled); output gx, shaped as x.

    Max pooling sends each gy to the first maximum of its window; sum and average
    pooling spread it over the window (divided by the window count for averages).
    Linear in gy: its gradient in gy is ``PoolOp`` again for sum/average (the adjoint of an
    adjoint) and ``MaxPoolGatherOp`` for max. It is piecewise constant in x (zero gradient).
    """

    def make_node(self, x, gy):
        x = self.check_input("pool_grad", x)
        gy = pt.as_tensor_variable(gy)
        expected = self.output_type(x)
        if gy.ndim != x.ndim:
            raise ValueError(f"pool_grad: output_grad must have ndim {x.ndim}, got {gy.ndim}")
        for a, b in zip(gy.type.shape, expected.type.shape):
            if a is not None and b is not None and a != b:
                raise ValueError(f"pool_grad: output_grad has static shape {gy.type.shape}, expected {expected.type.shape}")
        return Apply(self, [x, gy], [pt.tensor(dtype=gy.dtype, shape=x.type.shape)])

    def perform(self, node, inputs, output_storage):
        x, gy = inputs
        if self.output_size is not None:
            out = pool_numpy.adaptive_backward(x, gy, self.output_size, self.mode)
        else:
            out = pool_numpy.pool_backward(x, gy, self.nd, self.ws, self.stride, self.pad, self.ignore_border, self.mode)
        output_storage[0][0] = np.asarray(out, dtype=node.outputs[0].dtype)

    def c_code(self, node, name, inputs, outputs, sub):
        return pool_c.pool_backward_c(self, node, name, inputs, outputs, sub)

    def output_shapes(self, node, input_shapes):
        return [input_shapes[0]]

    def pullback(self, inputs, outputs, cotangents):
        x, gy = inputs
        (gx_bar,) = cotangents
        if self.mode == "max":
            g_gy = MaxPoolGatherOp(**self._props_dict())(x, gx_bar)
        else:
            g_gy = self.related()[0](gx_bar)
        return [pt.zeros_like(x), g_gy.astype(gy.dtype)]


class MaxPoolGatherOp(PoolParams):
    """Inputs x and g, both (..., *spatial); output (..., *pooled): g at each window's first max of x.

    The adjoint in g of max pooling's gradient, so second derivatives through max
    pooling work. Its gradient in g is ``PoolGradOp`` (max) and zero in x.
    """

    def make_node(self, x, g):
        x = self.check_input("max_pool_gather", x)
        g = pt.as_tensor_variable(g)
        if self.mode != "max":
            raise ValueError(f"max_pool_gather: only for mode 'max', got {self.mode!r}")
        if g.ndim != x.ndim:
            raise ValueError(f"max_pool_gather: g must have ndim {x.ndim}, got {g.ndim}")
        out = pt.tensor(dtype=g.dtype, shape=self.output_type(x).type.shape)
        return Apply(self, [x, g], [out])

    def perform(self, node, inputs, output_storage):
        x, g = inputs
        if self.output_size is not None:
            out = pool_numpy.adaptive_max_gather(x, g, self.output_size)
        else:
            out = pool_numpy.max_pool_gather(x, g, self.nd, self.ws, self.stride, self.pad, self.ignore_border)
        output_storage[0][0] = np.asarray(out, dtype=node.outputs[0].dtype)

    def output_shapes(self, node, input_shapes):
        return [self.symbolic_pooled_shape(input_shapes[0])]

    def pullback(self, inputs, outputs, cotangents):
        x, g = inputs
        (z_bar,) = cotangents
        _, grad = self.related()
        return [pt.zeros_like(x), grad(x, z_bar).astype(g.dtype)]
