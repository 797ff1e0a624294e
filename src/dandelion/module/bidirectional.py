"""``Bidirectional``: a recurrent module read forwards and another backwards, time-aligned."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.module.base import Module

MERGES = ("concat", "sum", "ave", "mul", None)


class Bidirectional(Module):
    """Run ``forward_module`` over a sequence and ``backward_module`` over it reversed.

    Both outputs are in input time order (step t of the backward output has read steps
    t..T-1), so they merge position by position. With a sequence mask each direction
    skips the masked steps (their state is carried), so trailing padding changes
    neither direction's outputs at the real steps.

    Parameters
    ----------
    forward_module, backward_module : recurrent modules
        Anything whose ``forward`` / ``predict`` take ``(seq_input, seq_mask=..., backward=...)``,
        as ``LSTM`` and ``GRU`` do; fresh instances (they become sub-modules).
    merge : {'concat', 'sum', 'ave', 'mul', None}
        How the two outputs combine; 'concat' joins the last axis; None returns both
        as a pair ``(forward_output, backward_output)``.

    ``forward(seq_input, seq_mask=None, **kwargs)``: (T, B, D) -> (T, B, H_f + H_b) for
    'concat'; ``kwargs`` (such as ``only_return_final``) go to both modules.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import LSTM, Bidirectional
    >>> bi = Bidirectional(LSTM(8, 16), LSTM(8, 16))
    >>> bi.forward(pt.tensor("x", shape=(5, 2, 8))).type.shape
    (5, 2, 32)
    """

    def __init__(self, forward_module, backward_module, merge="concat", name=None):
        super().__init__(name=name)
        for argument, module in (("forward_module", forward_module), ("backward_module", backward_module)):
            if not isinstance(module, Module):
                raise TypeError(f"Bidirectional: {argument} must be a Module, got {type(module).__name__}")
        if merge not in MERGES:
            raise ValueError(f"Bidirectional: merge must be one of {MERGES}, got {merge!r}")
        self.forward_module = forward_module
        self.backward_module = backward_module
        self.merge = merge

    def _merge(self, forwards, backwards):
        if self.merge is None:
            return forwards, backwards
        if self.merge == "concat":
            return pt.concatenate([forwards, backwards], axis=-1)
        if self.merge == "sum":
            return forwards + backwards
        if self.merge == "ave":
            return (forwards + backwards) / 2
        return forwards * backwards

    def forward(self, seq_input, seq_mask=None, **kwargs):
        """seq_input : (T, B, D); seq_mask : (T, B), optional."""
        forwards = self.forward_module.forward(seq_input, seq_mask=seq_mask, backward=False, **kwargs)
        backwards = self.backward_module.forward(seq_input, seq_mask=seq_mask, backward=True, **kwargs)
        return self._merge(forwards, backwards)

    def predict(self, seq_input, seq_mask=None, **kwargs):
        """``forward`` with each module's ``predict``."""
        forwards = self.forward_module.predict(seq_input, seq_mask=seq_mask, backward=False, **kwargs)
        backwards = self.backward_module.predict(seq_input, seq_mask=seq_mask, backward=True, **kwargs)
        return self._merge(forwards, backwards)
