"""``BatchNorm``: normalisation with batch statistics and self-updating running statistics."""

from __future__ import annotations

import numbers

import pytensor.tensor as pt
from pytensor.graph.basic import Variable
from pytensor.tensor.basic import get_underlying_scalar_constant_value
from pytensor.tensor.exceptions import NotScalarConstantError

from dandelion import initialization as init
from dandelion.functional.normalization import NORMALIZE_MODES, moments, normalize_over, running_average
from dandelion.module.base import Module
from dandelion.module.checks import check_option
from dandelion.ops.batch_norm import batch_norm_train, fusable
from dandelion.self_update import set_update


def _static_size(size):
    """An int for a length given as int or constant tensor; None when unknown."""
    if size is None:
        return None
    if isinstance(size, Variable):
        try:
            return int(get_underlying_scalar_constant_value(size))
        except NotScalarConstantError:
            return None
    return int(size)


def _resolve_axes(axes, ndim):
    if isinstance(axes, str):
        if axes != "auto":
            raise ValueError(f"BatchNorm: axes must be 'auto', an int or a tuple of ints, got {axes!r}")
        return (0,) + tuple(range(2, ndim))
    if isinstance(axes, numbers.Integral):
        axes = (axes,)
    try:
        axes = tuple(axes)
    except TypeError:
        raise TypeError(f"BatchNorm: axes must be 'auto', an int or a tuple of ints, got {axes!r}") from None
    if not axes or not all(isinstance(a, numbers.Integral) for a in axes):
        raise ValueError(f"BatchNorm: axes must be 'auto', an int or a non-empty tuple of ints, got {axes!r}")
    resolved = []
    for axis in axes:
        if not -ndim <= axis < ndim:
            raise ValueError(f"BatchNorm: axes entry {axis} is out of range for input_shape of length {ndim}")
        resolved.append(int(axis) % ndim)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"BatchNorm: axes must not repeat an axis, got {axes!r}")
    return tuple(sorted(resolved))


class BatchNorm(Module):
    """Batch normalisation ``gamma * (x - mean) * inv_std + beta``.

    Parameters
    ----------
    input_shape : tuple or list of int, None or constant tensor
        Input shape including the batch axis. Lengths on normalised axes may be None;
        every other length is required (it sizes the parameters).
    axes : 'auto', int or tuple of int
        Axes to normalise over. 'auto' is every axis but the second: the batch for
        (B, D) input, batch and space for (B, C, H, W).
    eps : float
        Added to the batch variance (biased, ``ddof=0``) before the square root.
    alpha : float
        Moving-average coefficient of the running statistics:
        ``mean <- (1 - alpha) * mean + alpha * batch_mean`` and
        ``inv_std <- (1 - alpha) * inv_std + alpha * batch_inv_std``; an entry whose
        batch statistic is NaN or infinite keeps its last finite value.
    beta, gamma : initializer, array, shared variable or None
        Trainable shift and scale; None disables one.
    mean, inv_std : initializer, array, shared variable or None
        Initial running statistics (self-updating variables); None disables mean
        subtraction or scaling, for batch and running statistics alike.
    mode : {'high_mem', 'low_mem'}
        Accepted for compatibility; both give the same graph. With batch statistics and
        contiguous kept axes (every ``axes='auto'`` layout), ``forward`` is one fused Op
        forward and one backward (``dandelion.ops.batch_norm``), which keep nothing but
        x and the statistics; otherwise PyTensor fuses the normalisation and its
        gradient into single loops and frees buffers after their last use, so Theano's
        recomputing ``low_mem`` has nothing to save here (a recomputing ``OpFromGraph``
        measured a higher peak; see ``dandelion.functional.normalize``).

    Every parameter has the shape of ``input_shape`` with the normalised axes removed;
    registration order beta, gamma, then self-updating mean, inv_std.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> import dandelion
    >>> bn = BatchNorm(input_shape=(None, 3))
    >>> x = pt.fmatrix("x")
    >>> train = dandelion.function([x], bn.forward(x), updates=bn.collect_self_updates())
    """

    def __init__(
        self,
        input_shape=None,
        axes="auto",
        eps=1e-4,
        alpha=0.1,
        beta=init.Constant(0),
        gamma=init.Constant(1),
        mean=init.Constant(0),
        inv_std=init.Constant(1),
        mode="high_mem",
        name=None,
    ):
        super().__init__(name=name)
        if input_shape is None:
            raise ValueError(
                "BatchNorm: input_shape is required (the input shape including the batch axis, e.g. (None, C, None, None)), got None"
            )
        try:
            input_shape = tuple(input_shape)
        except TypeError:
            raise TypeError(f"BatchNorm: input_shape must be a tuple or list, got {input_shape!r}") from None
        self.mode = check_option("BatchNorm", "mode", mode, NORMALIZE_MODES)
        self.axes = _resolve_axes(axes, len(input_shape))
        self.input_shape = tuple(_static_size(s) for s in input_shape)
        self.eps = eps
        self.alpha = alpha
        missing = [axis for axis, size in enumerate(self.input_shape) if axis not in self.axes and size is None]
        if missing:
            raise ValueError(
                f"BatchNorm: input_shape must give every length not normalised over (axes {self.axes}); "
                f"got {tuple(input_shape)!r}, unknown on axes {tuple(missing)}"
            )
        shape = tuple(size for axis, size in enumerate(self.input_shape) if axis not in self.axes)
        self.param_shape = shape
        self.beta = None if beta is None else self.register_param(beta, shape=shape)
        self.gamma = None if gamma is None else self.register_param(gamma, shape=shape)
        self.mean = None if mean is None else self.register_self_updating_variable(mean, shape=shape)
        self.inv_std = None if inv_std is None else self.register_self_updating_variable(inv_std, shape=shape)

    def _check_input(self, input):
        input = pt.as_tensor_variable(input)
        if input.ndim != len(self.input_shape):
            raise ValueError(
                f"BatchNorm: input must have ndim {len(self.input_shape)} (input_shape {self.input_shape}), got ndim {input.ndim}"
            )
        for axis, (actual, wanted) in enumerate(zip(input.type.shape, self.input_shape)):
            if axis not in self.axes and actual is not None and actual != wanted:
                raise ValueError(
                    f"BatchNorm: input axis {axis} must have length {wanted} (input_shape {self.input_shape}), "
                    f"got static shape {input.type.shape}"
                )
        return input

    def _normalize(self, input, mean, inv_std):
        # per-channel statistics stay unbroadcast so that the reductions run in BLAS
        return normalize_over(input, self.axes, mean=mean, inv_std=inv_std, gamma=self.gamma, beta=self.beta)

    def forward(self, input, use_input_mean=True):
        """Training graph; records the running-statistics updates.

        Parameters
        ----------
        input : tensor shaped like ``input_shape``
        use_input_mean : bool
            True normalises with the batch statistics; False with the running ones
            (the updates are recorded either way).

        Returns
        -------
        tensor of the input's shape

        The updates are returned by ``collect_self_updates()``; pass them to
        ``dandelion.function`` or ``pytensor.function``.
        """
        input = self._check_input(input)
        if use_input_mean and fusable(input.ndim, self.axes) and isinstance(self.eps, numbers.Real):
            # one fused Op forward and one backward (dandelion.ops.batch_norm), same numerics
            output, batch_mean, batch_inv_std = batch_norm_train(
                input,
                self.axes,
                self.eps,
                gamma=self.gamma,
                beta=self.beta,
                subtract_mean=self.mean is not None,
                scale_by_inv_std=self.inv_std is not None,
            )
            self._record_updates(batch_mean, batch_inv_std)
            return output
        batch_mean, batch_inv_std = moments(input, self.axes, self.eps)
        self._record_updates(batch_mean, batch_inv_std)
        if use_input_mean:
            mean = None if self.mean is None else batch_mean
            inv_std = None if self.inv_std is None else batch_inv_std
        else:
            mean, inv_std = self.mean, self.inv_std
        return self._normalize(input, mean, inv_std)

    def _record_updates(self, batch_mean, batch_inv_std):
        alpha = self.alpha
        # running_average keeps the last finite values where a batch statistic is not finite
        if self.mean is not None:
            set_update(self.mean, running_average(self.mean, batch_mean, alpha))
        if self.inv_std is not None:
            set_update(self.inv_std, running_average(self.inv_std, batch_inv_std, alpha))

    def predict(self, input):
        """Inference graph: normalises with the running statistics; records nothing.

        input : tensor shaped like ``input_shape``; returns the input's shape.
        """
        input = self._check_input(input)
        return self._normalize(input, self.mean, self.inv_std)
