"""``GroupNorm``: per-sample normalisation over groups of channels of (B, C, H, W) input."""

from __future__ import annotations

import numbers

from pytensor.graph.basic import Variable

from dandelion import initialization as init
from dandelion.functional.normalization import group_norm
from dandelion.module.base import Module
from dandelion.module.checks import check_axis_length, check_ndim
from dandelion.util.graph import create_param

# Parameters are (1, C, 1, 1) and broadcast over batch and space.
_PARAM_BROADCAST = (True, False, True, True)


class GroupNorm(Module):
    """Group normalisation (Wu & He, 2018): statistics per sample and channel group.

    The same statistics serve training and inference (``predict`` is ``forward``).
    ``group_num=1`` is layer normalisation, ``group_num=channel_num`` instance
    normalisation.

    Parameters
    ----------
    channel_num : int
        C of the (B, C, H, W) input; must be divisible by ``group_num``.
    group_num : int
    eps : float
        Added to the biased variance before the square root.
    beta, gamma : initializer, array, shared variable or None
        Shift and scale, each (1, C, 1, 1) broadcastable on axes 0, 2, 3; None disables
        one.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> gn = GroupNorm(channel_num=8, group_num=4)
    >>> gn.forward(pt.tensor4("x")).ndim
    4
    """

    def __init__(self, channel_num, group_num=16, eps=1e-5, beta=init.Constant(0), gamma=init.Constant(1), name=None):
        super().__init__(name=name)
        for argument, value in (("channel_num", channel_num), ("group_num", group_num)):
            if not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(f"GroupNorm: {argument} must be a positive int, got {value!r}")
        if channel_num % group_num:
            raise ValueError(
                f"GroupNorm: channel_num must be divisible by group_num, got channel_num={channel_num}, group_num={group_num}"
            )
        self.channel_num = int(channel_num)
        self.group_num = int(group_num)
        self.eps = eps
        shape = (1, self.channel_num, 1, 1)
        self.beta = None if beta is None else self.register_param(self._broadcastable(beta, shape), shape=shape)
        self.gamma = None if gamma is None else self.register_param(self._broadcastable(gamma, shape), shape=shape)

    @staticmethod
    def _broadcastable(spec, shape):
        # register_param keeps a given shared variable as it is; create it here so it
        # carries the broadcast pattern. A user's own variable is used unchanged.
        if isinstance(spec, Variable):
            return spec
        return create_param(spec, shape=shape, dim_broadcast=_PARAM_BROADCAST)

    def forward(self, input):
        """input : (B, C, H, W) -> (B, C, H, W)."""
        input = check_ndim("GroupNorm", "input", input, 4)
        check_axis_length("GroupNorm", "input", input, 1, self.channel_num, "channel_num")
        return group_norm(input, self.group_num, self.eps, gamma=self.gamma, beta=self.beta)
