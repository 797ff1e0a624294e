"""Parameters and static shapes shared by the pooling Ops (one core for 1, 2 and 3 pooled axes)."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.ops.conv_geometry import as_int_tuple, check_pool_mode, pool_output_length

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


class PoolParams:
    """Mixin: the props of a pooling Op and its output-shape arithmetic."""

    __props__ = ("nd", "ws", "stride", "pad", "ignore_border", "mode")

    def __init__(self, nd, ws, stride=None, pad=None, ignore_border=True, mode="max"):
        pad = (0,) * nd if pad is None else pad
        self.nd, self.ws, self.stride, self.pad, self.ignore_border, self.mode = check_pool_params(
            type(self).__name__, nd, ws, stride, pad, ignore_border, mode
        )

    def pooled_spatial(self, spatial):
        return tuple(
            pool_output_length(n, w, s, p, self.ignore_border) for n, w, s, p in zip(spatial, self.ws, self.stride, self.pad)
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
        lead, spatial = list(shape[: -self.nd]), shape[-self.nd :]
        out = []
        for n, w, s, p in zip(spatial, self.ws, self.stride, self.pad):
            padded = n + 2 * p
            if self.ignore_border:
                out.append(pt.maximum(0, (padded - w) // s + 1))
            elif s >= w:
                out.append((padded - 1) // s + 1)
            else:
                out.append(pt.maximum(0, (padded - 1 - w + s) // s) + 1)
        return tuple(lead + out)
