"""``LSTMCell`` and ``GRUCell``: one recurrent step as a module, for loops of your own."""

from __future__ import annotations

from dandelion import initialization as init
from dandelion.activation import tanh
from dandelion.module.recurrent.gru import GRUParams
from dandelion.module.recurrent.lstm import LSTMParams


class LSTMCell(LSTMParams):
    """One LSTM step; the same parameters and arithmetic as ``LSTM``.

    Parameters as for ``LSTM`` (no ``learn_ini`` / ``truncate_gradient``: a cell has
    no sequence). Registration order: W_in (D, 4H), b_in (4H,), W_hid (H, 4H),
    [w_cell_to_igate, w_cell_to_fgate, w_cell_to_ogate (H,) if peephole].

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import LSTMCell
    >>> cell = LSTMCell(input_dims=8, hidden_dim=16)
    >>> h, c = cell.forward(pt.matrix("x"), pt.matrix("h"), pt.matrix("c"))
    """

    def __init__(
        self, input_dims, hidden_dim, peephole=True, initializer=init.Normal(0.1), grad_clipping=0, hidden_activation=tanh, name=None
    ):
        super().__init__(
            input_dims,
            hidden_dim,
            peephole=peephole,
            initializer=initializer,
            grad_clipping=grad_clipping,
            hidden_activation=hidden_activation,
            name=name,
        )

    def forward(self, input, h_pre, c_pre, mask=None):
        """One step.

        Parameters
        ----------
        input : (B, D)
        h_pre, c_pre : (B, H)
        mask : (B,), optional
            Where zero, ``h_pre`` and ``c_pre`` are returned unchanged.

        Returns
        -------
        h, c : (B, H)
        """
        return self.step(input, h_pre, c_pre, mask=mask, process_input=True)


class GRUCell(GRUParams):
    """One GRU step; the same parameters and arithmetic as ``GRU``.

    Registration order: W_in (D, 3H), b_in (3H,), W_hid (H, 3H).

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import GRUCell
    >>> cell = GRUCell(input_dims=8, hidden_dim=16)
    >>> cell.forward(pt.matrix("x"), pt.matrix("h")).ndim
    2
    """

    def __init__(self, input_dims, hidden_dim, initializer=init.Normal(0.1), grad_clipping=0, hidden_activation=tanh, name=None):
        super().__init__(
            input_dims,
            hidden_dim,
            initializer=initializer,
            grad_clipping=grad_clipping,
            hidden_activation=hidden_activation,
            name=name,
        )

    def forward(self, input, h_pre, mask=None):
        """One step.

        Parameters
        ----------
        input : (B, D)
        h_pre : (B, H)
        mask : (B,), optional
            Where zero, ``h_pre`` is returned unchanged.

        Returns
        -------
        h : (B, H)
        """
        return self.step(input, h_pre, mask=mask, process_input=True)
