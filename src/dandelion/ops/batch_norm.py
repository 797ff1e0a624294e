"""The fused BatchNorm Op family: training-mode normalisation and its gradient, one node each.

``BatchNormTrainOp`` computes, over the reduced ``axes`` of x, the batch mean, the
inverse standard deviation ``inv_std = 1 / sqrt(var + eps)`` (biased variance, two
passes: centre, then square, as ``functional.normalization.moments``) and
``y = (x - mean) * inv_std * gamma + beta``; ``BatchNormTrainGradOp`` is its gradient.
They replace the dozens of reduction and elementwise nodes (forward and backward) of the
graph path, which PyTorch runs as one kernel each way; fewer nodes also compile faster on
Numba. The kept (normalised-per-position) axes must form one contiguous block, so every
kernel works on the canonical (P, K, S) view: kept axes flattened into K, the reduced
axes before them into P and after them into S ((B, C, H, W) with axes (0, 2, 3) is
(B, C, H*W); (B, D) with axes (0,) is (B, D, 1)). ``fusable`` says when that holds;
callers keep the graph path otherwise.

Kernels at mirrored paths: NumPy in ``batch_norm_numpy`` (``perform``), C in
``c/batch_norm.py``, Numba in ``numba/batch_norm.py``, JAX in ``jax/batch_norm.py``.
"""

from __future__ import annotations

import numbers

import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.link.c.op import COp

from dandelion._compat import ShapeInferringOp
from dandelion.ops import batch_norm_numpy
from dandelion.ops.axis_sum import kept_block
from dandelion.ops.c import batch_norm as batch_norm_c

WHERE = "batch_norm_train"
FLAGS = ("subtract_mean", "scale_by_inv_std", "has_gamma", "has_beta")


def fusable(ndim, axes):
    """Whether the fused Ops serve x of ``ndim`` normalised over ``axes`` (the kept axes contiguous)."""
    axes = tuple(sorted(int(a) % ndim for a in axes))
    return 0 < len(axes) < ndim and kept_block(ndim, axes) is not None


def canonical_shape(shape, axes):
    """(P, K, S) of an array of ``shape`` reduced over ``axes`` (ints or symbolic lengths)."""
    start, stop = kept_block(len(shape), axes)

    def product(lengths):
        total = 1
        for n in lengths:
            total = total * n
        return total

    return product(shape[:start]), product(shape[start:stop]), product(shape[stop:])


class BatchNormParams(ShapeInferringOp, COp):
    """Base of the two Ops: props, input checks and the canonical view.

    Props: ``axes`` (sorted reduced axes), ``eps``, and which terms are present:
    ``subtract_mean``, ``scale_by_inv_std`` (BatchNorm's ``mean`` / ``inv_std`` set to None
    drop them from y; the statistics are output all the same), ``has_gamma``, ``has_beta``
    (whether gamma and beta are inputs).
    """

    __props__ = ("axes", "eps", *FLAGS)

    def __init__(self, axes, eps, subtract_mean=True, scale_by_inv_std=True, has_gamma=True, has_beta=True):
        where = type(self).__name__
        if isinstance(axes, numbers.Integral):
            axes = (axes,)
        axes = tuple(axes)
        if not axes or any(not isinstance(a, numbers.Integral) or a < 0 for a in axes) or tuple(sorted(set(axes))) != axes:
            raise ValueError(f"{where}: axes must be sorted, distinct, non-negative ints, got {axes!r}")
        if not isinstance(eps, numbers.Real) or not eps >= 0:
            raise ValueError(f"{where}: eps must be a number >= 0, got {eps!r}")
        self.axes = tuple(int(a) for a in axes)
        self.eps = float(eps)
        self.subtract_mean, self.scale_by_inv_std = bool(subtract_mean), bool(scale_by_inv_std)
        self.has_gamma, self.has_beta = bool(has_gamma), bool(has_beta)

    def flags(self):
        return {name: getattr(self, name) for name in FLAGS}

    def check_x(self, where, x):
        x = pt.as_tensor_variable(x)
        if not x.dtype.startswith("float"):
            raise TypeError(f"{where}: x must have a float dtype, got {x.dtype}")
        if x.ndim <= self.axes[-1] or not fusable(x.ndim, self.axes):
            raise ValueError(
                f"{where}: x of ndim {x.ndim} cannot be normalised over axes {self.axes} "
                "(axes must be in range, not all of x's, and the kept axes one contiguous block)"
            )
        return x

    def kept_type(self, x):
        """The type of a per-position statistic: x's kept axes."""
        start, stop = kept_block(x.ndim, self.axes)
        return pt.tensor(dtype=x.dtype, shape=x.type.shape[start:stop])

    def check_kept(self, where, argument, v, x):
        """``v`` as a tensor of x's dtype shaped as x's kept axes, with a clear error."""
        v = pt.as_tensor_variable(v)
        want = self.kept_type(x)
        if v.ndim != want.ndim:
            raise ValueError(f"{where}: {argument} must have ndim {want.ndim} (x's kept axes), got ndim {v.ndim}")
        for a, b in zip(v.type.shape, want.type.shape):
            if a is not None and b is not None and a != b:
                raise ValueError(f"{where}: {argument} must have shape {want.type.shape} (x's kept axes), got static shape {v.type.shape}")
        if not v.dtype.startswith("float"):
            raise TypeError(f"{where}: {argument} must have a float dtype, got {v.dtype}")
        return v.astype(x.dtype)

    def kept_shape(self, x_shape):
        start, stop = kept_block(len(x_shape), self.axes)
        return tuple(x_shape[start:stop])

    def store(self, output_storage, x_shape, full, first, second):
        """Writes the canonical results: ``full`` reshaped as x, the two per-channel ones as x's kept axes."""
        kept = self.kept_shape(x_shape)
        for storage, value in zip(output_storage, (full.reshape(x_shape), first.reshape(kept), second.reshape(kept))):
            storage[0] = value

    def output_shapes(self, node, input_shapes):
        # both Ops: one output shaped as x, two as x's kept axes
        kept = self.kept_shape(input_shapes[0])
        return [input_shapes[0], kept, kept]

    def c_support_code(self, **kwargs):
        return batch_norm_c.support_code()

    def c_code_cache_version(self):
        return batch_norm_c.C_CODE_VERSION


class BatchNormTrainOp(BatchNormParams):
    """Inputs x, then gamma if ``has_gamma`` and beta if ``has_beta`` (shaped as x's kept axes).

    Outputs y (x's shape) and the batch statistics mean and inv_std (x's kept axes):
    ``y = u * s * gamma + beta`` with ``u = x - mean`` (x when not ``subtract_mean``) and
    ``s = inv_std`` (1 when not ``scale_by_inv_std``); absent gamma / beta are 1 / 0.
    """

    def make_node(self, x, *params):
        x = self.check_x(WHERE, x)
        names = [n for n, present in (("gamma", self.has_gamma), ("beta", self.has_beta)) if present]
        if len(params) != len(names):
            raise TypeError(f"{WHERE}: expected inputs x{''.join(', ' + n for n in names)} for {self}, got {1 + len(params)} inputs")
        params = [self.check_kept(WHERE, name, v, x) for name, v in zip(names, params)]
        return Apply(self, [x, *params], [x.type(), self.kept_type(x), self.kept_type(x)])

    def split_params(self, params):
        """(gamma or None, beta or None) from the inputs after x."""
        params = list(params)
        gamma = params.pop(0) if self.has_gamma else None
        beta = params.pop(0) if self.has_beta else None
        return gamma, beta

    def perform(self, node, inputs, output_storage):
        x, *params = inputs
        gamma, beta = (None if v is None else v.reshape(-1) for v in self.split_params(params))
        x3 = x.reshape(canonical_shape(x.shape, self.axes))
        self.store(output_storage, x.shape, *batch_norm_numpy.forward(x3, gamma, beta, self.eps, self.flags()))

    def c_code(self, node, name, inputs, outputs, sub):
        return batch_norm_c.forward_c(self, node, inputs, outputs, sub)

    def pullback(self, inputs, outputs, cotangents):
        x, *params = inputs
        gamma, beta = self.split_params(params)
        y, mean, inv_std = outputs
        # the running-statistics updates read mean and inv_std as values; a loss of them
        # differentiates as well (their cotangents enter dx)
        gy, gmean, ginv = (pt.zeros_like(o) if isinstance(c.type, DisconnectedType) else c.astype(o.dtype) for o, c in zip(outputs, cotangents))
        grad_op = BatchNormTrainGradOp(**self._props_dict())
        dx, dgamma, dbeta = grad_op(x, *([gamma] if self.has_gamma else []), mean, inv_std, gy, gmean, ginv)
        result = [dx]
        if self.has_gamma:
            result.append(dgamma.astype(gamma.dtype))
        if self.has_beta:
            result.append(dbeta.astype(beta.dtype))
        return result


class BatchNormTrainGradOp(BatchNormParams):
    """Inputs x, gamma (if ``has_gamma``), mean, inv_std, and the cotangents gy, gmean, ginv_std.

    Outputs dx (x's shape), dgamma and dbeta (x's kept axes). Per kept position, with n
    the reduced count, ``S1 = sum(gy)``, ``Sc = sum(gy * (x - mean))`` and
    ``Su = sum(gy * u)`` (Sc, or ``Sc + mean * S1`` when the mean is kept):
    ``dx = gamma * s * gy + b * (x - mean) + c`` where
    ``b = -(ginv_std + [scale_by_inv_std] gamma * Su) * inv_std**3 / n`` (from
    ``d inv_std / dx = -inv_std**3 (x - mean) / n``; the mean's own pull on the variance
    cancels because the centred values sum to zero) and
    ``c = gmean / n - [subtract_mean] gamma * s * S1 / n``; ``dgamma = s * Su``,
    ``dbeta = S1``.
    """

    def make_node(self, x, *rest):
        x = self.check_x("batch_norm_train_grad", x)
        expected = (["gamma"] if self.has_gamma else []) + ["mean", "inv_std", "gy", "gmean", "ginv_std"]
        if len(rest) != len(expected):
            raise TypeError(f"batch_norm_train_grad: expected inputs x, {', '.join(expected)}, got {1 + len(rest)} inputs")
        checked = []
        for name, v in zip(expected, rest):
            if name == "gy":
                v = pt.as_tensor_variable(v)
                if v.ndim != x.ndim or any(a is not None and b is not None and a != b for a, b in zip(v.type.shape, x.type.shape)):
                    raise ValueError(f"batch_norm_train_grad: gy must have x's shape {x.type.shape}, got static shape {v.type.shape}")
                checked.append(v.astype(x.dtype))
            else:
                checked.append(self.check_kept("batch_norm_train_grad", name, v, x))
        return Apply(self, [x, *checked], [x.type(), self.kept_type(x), self.kept_type(x)])

    def split_inputs(self, inputs):
        """(x, gamma or None, mean, inv_std, gy, gmean, ginv_std)."""
        x, *rest = inputs
        gamma = rest.pop(0) if self.has_gamma else None
        return (x, gamma, *rest)

    def perform(self, node, inputs, output_storage):
        x, gamma, mean, inv_std, gy, gmean, ginv = self.split_inputs(inputs)
        shape3 = canonical_shape(x.shape, self.axes)
        flat = [None if v is None else v.reshape(-1) for v in (gamma, mean, inv_std, gmean, ginv)]
        gamma, mean, inv_std, gmean, ginv = flat
        grads = batch_norm_numpy.backward(x.reshape(shape3), gamma, mean, inv_std, gy.reshape(shape3), gmean, ginv, self.flags())
        self.store(output_storage, x.shape, *grads)

    def c_code(self, node, name, inputs, outputs, sub):
        return batch_norm_c.backward_c(self, node, inputs, outputs, sub)

    def pullback(self, inputs, outputs, cotangents):
        # Second derivatives of the fused BatchNorm are not implemented; PyTensor reports
        # this (with the Op and input) if anyone asks for them.
        return [grad_not_implemented(self, k, v, "second derivatives of batch_norm_train") for k, v in enumerate(inputs)]


def batch_norm_train(x, axes, eps, gamma=None, beta=None, subtract_mean=True, scale_by_inv_std=True):
    """Training-mode batch normalisation of ``x`` over ``axes`` in one fused Op.

    Parameters
    ----------
    x : tensor of any float dtype, ndim > max(axes)
    axes : tuple of int
        The reduced axes; the kept ones must form one contiguous block (``fusable``).
    eps : float
        Added to the biased variance: ``inv_std = 1 / sqrt(var + eps)``.
    gamma, beta : tensors shaped as x's kept axes, or None (scale 1, shift 0)
    subtract_mean, scale_by_inv_std : bool
        Whether y subtracts the batch mean / multiplies by inv_std.

    Returns
    -------
    y : x's shape and dtype
    mean, inv_std : x's kept axes
    """
    x = pt.as_tensor_variable(x)
    if isinstance(axes, numbers.Integral):
        axes = (axes,)
    axes = tuple(sorted(int(a) % x.ndim if -x.ndim <= a < x.ndim else a for a in axes))
    op = BatchNormTrainOp(axes, eps, subtract_mean, scale_by_inv_std, gamma is not None, beta is not None)
    return op(x, *(v for v in (gamma, beta) if v is not None))


__all__ = ["BatchNormTrainGradOp", "BatchNormTrainOp", "batch_norm_train", "fusable"]
