"""Alternate 2-D LSTM: two 1-D LSTMs, one along the height and one along the width."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion import initialization as init
from dandelion.activation import tanh
from dandelion.model._checks import check_positive_int
from dandelion.module import LSTM, Module

MODES = (0, 1, 2)


class Alternate_2D_LSTM(Module):
    """Scans an image-like (H, W, B, C) input with ``lstm_h`` down every column and
    ``lstm_w`` along every row.

    Modes
    -----
    0 (concat): both scan the input; output the concatenation (H, W, B, 2 * hidden_dim).
    1 (sequential): ``lstm_w`` scans the output of ``lstm_h``; output (H, W, B, hidden_dim).
    2 (mixed): ``lstm_w`` scans the input concatenated with ``lstm_h``'s output (its W_in
        is initialised per part); output (H, W, B, hidden_dim).

    Parameters
    ----------
    input_dims : int
        C, the input feature size.
    hidden_dim : int
    peephole, initializer, grad_clipping, hidden_activation, learn_ini, truncate_gradient :
        passed to both LSTMs
    mode : {0, 1, 2}

    ``forward(x)`` / ``predict(x)``: x (H, W, B, input_dims).
    """

    def __init__(
        self,
        input_dims,
        hidden_dim,
        peephole=True,
        initializer=init.Normal(0.1),
        grad_clipping=0,
        hidden_activation=tanh,
        learn_ini=False,
        truncate_gradient=-1,
        mode=2,
    ):
        super().__init__()
        where = "Alternate_2D_LSTM"
        check_positive_int(where, "input_dims", input_dims)
        check_positive_int(where, "hidden_dim", hidden_dim)
        if mode not in MODES:
            raise ValueError(f"{where}: mode must be one of {MODES} (0 concat, 1 sequential, 2 mixed), got {mode!r}")
        self.mode = mode
        self.hidden_dim = hidden_dim
        options = dict(
            peephole=peephole, initializer=initializer, grad_clipping=grad_clipping, hidden_activation=hidden_activation,
            learn_ini=learn_ini, truncate_gradient=truncate_gradient,
        )
        w_input = {0: input_dims, 1: hidden_dim, 2: [input_dims, hidden_dim]}[mode]
        self.lstm_h = LSTM(input_dims, hidden_dim, **options)
        self.lstm_w = LSTM(w_input, hidden_dim, **options)

    @staticmethod
    def _scan_rows(lstm, x):
        """Run ``lstm`` along axis 0 of x (N, M, B, D), every (m, b) a sequence."""
        N, M, B, D = x.shape
        y = lstm.forward(x.reshape((N, M * B, D)))
        return y.reshape((N, M, B, y.shape[-1]))

    def forward(self, x):
        """x : (H, W, B, input_dims); returns (H, W, B, hidden_dim), or 2 * hidden_dim in mode 0."""
        x = pt.as_tensor_variable(x)
        if x.ndim != 4:
            raise ValueError(f"Alternate_2D_LSTM: x must be (H, W, B, C) with ndim 4, got ndim {x.ndim}")
        h = self._scan_rows(self.lstm_h, x)
        w_in = {0: x, 1: h, 2: pt.concatenate([x, h], axis=3) if self.mode == 2 else None}[self.mode]
        w = self._scan_rows(self.lstm_w, w_in.dimshuffle(1, 0, 2, 3)).dimshuffle(1, 0, 2, 3)
        if self.mode == 0:
            return pt.concatenate([h, w], axis=3)
        return w
