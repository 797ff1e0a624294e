"""Pure one-step functions of the recurrent family.

Each sequence module and its ``*Cell`` call the same function here, inside ``scan``
or alone. Every tensor the step reads arrives as an argument (weights included), so a
step never captures shared variables from outside the scan. Static options
(``hidden_dim``, ``grad_clipping``, the activation) are keyword-only Python values.

Gate blocks follow the weight layout of the Theano-era library: LSTM columns are
``[input | forget | cell | output]``, GRU columns ``[reset | update | candidate]``.
The cell arithmetic is ``dandelion.ops.recurrent_cells``'s, which the fused LSTM
kernels also run; here it gets PyTensor's sigmoid and tanh.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.gradient import grad_clip

from dandelion.ops.recurrent_cells import gru_cell, lstm_cell


def _clip(x, grad_clipping):
    # Identity forward; the backward pass clips the gradient reaching ``x``.
    return grad_clip(x, -grad_clipping, grad_clipping) if grad_clipping > 0 else x


def _blocks(x, hidden_dim, count):
    return [x[:, k * hidden_dim : (k + 1) * hidden_dim] for k in range(count)]


def lstm_gates_to_state(gates, c_prev, peepholes, *, hidden_dim, hidden_activation):
    """Finish an LSTM step from the (clipped) pre-activations ``gates`` (B, 4H).

    c_prev : (B, H); peepholes : ``(w_ci, w_cf, w_co)``, each (H,), or None.
    """
    peep = (c_prev * peepholes[0], c_prev * peepholes[1], peepholes[2]) if peepholes is not None else (None,) * 3
    *_, c, h = lstm_cell(*_blocks(gates, hidden_dim, 4), c_prev, *peep, pt.sigmoid, pt.tanh, hidden_activation)
    return h, c


def lstm_step(gate_input, h_prev, c_prev, W_hid, *peepholes, hidden_dim, grad_clipping=0.0, hidden_activation=pt.tanh):
    """One LSTM step (Graves 2013, as Lasagne).

    Parameters
    ----------
    gate_input : (B, 4H)
        ``x_t @ W_in + b_in``, computed for the whole sequence before the scan.
    h_prev, c_prev : (B, H)
    W_hid : (H, 4H)
    peepholes : three (H,) tensors ``w_cell_to_igate, w_cell_to_fgate, w_cell_to_ogate``, or none
    grad_clipping : float
        When > 0, gradients reaching the gate pre-activations are clipped to
        ``[-grad_clipping, grad_clipping]``.

    Returns
    -------
    h, c : (B, H)
    """
    gates = _clip(gate_input + pt.dot(h_prev, W_hid), grad_clipping)
    return lstm_gates_to_state(
        gates, c_prev, tuple(peepholes) or None, hidden_dim=hidden_dim, hidden_activation=hidden_activation
    )


def gru_step(gate_input, h_prev, W_hid, *, hidden_dim, grad_clipping=0.0, hidden_activation=pt.tanh):
    """One GRU step (Cho et al. 2014, as Lasagne).

    Parameters
    ----------
    gate_input : (B, 3H)
        ``x_t @ W_in + b_in``.
    h_prev : (B, H)
    W_hid : (H, 3H)
    grad_clipping : float
        When > 0, gradients reaching the new hidden state are clipped.

    Returns
    -------
    h : (B, H)
    """
    hid = pt.dot(h_prev, W_hid)
    r_x, u_x, c_x = _blocks(gate_input, hidden_dim, 3)
    r_h, u_h, c_h = _blocks(hid, hidden_dim, 3)
    *_, h = gru_cell(r_x, u_x, c_x, r_h, u_h, c_h, h_prev, pt.sigmoid, hidden_activation)
    return _clip(h, grad_clipping)


def lstm2d_cell(
    gate_input,
    h_left,
    c_left,
    h_up,
    c_up,
    W_h_left,
    W_h_up,
    *peepholes,
    hidden_dim,
    grad_clipping=0.0,
    hidden_activation=pt.tanh,
):
    """One 2-D LSTM position from its left and upper neighbours.

    Parameters
    ----------
    gate_input : (B, 4H)
    h_left, c_left, h_up, c_up : (B, H)
    W_h_left, W_h_up : (H, 4H)
    peepholes : five (H,) tensors ``w_cell_to_igate_left, w_cell_to_igate_up,
        w_cell_to_fgate_left, w_cell_to_fgate_up, w_cell_to_ogate``, or none

    Returns
    -------
    h, c : (B, H)
    """
    gates = _clip(gate_input + pt.dot(h_left, W_h_left) + pt.dot(h_up, W_h_up), grad_clipping)
    peep = (None,) * 3
    if peepholes:
        w_ig_left, w_ig_up, w_fg_left, w_fg_up, w_co = peepholes
        peep = (c_left * w_ig_left + c_up * w_ig_up, c_left * w_fg_left + c_up * w_fg_up, w_co)
    # The forget gate scales the mean of both cells, which keeps the cell from doubling
    # at every position (Theano-era choice).
    c_prev = (c_left + c_up) * 0.5
    *_, c, h = lstm_cell(*_blocks(gates, hidden_dim, 4), c_prev, *peep, pt.sigmoid, pt.tanh, hidden_activation)
    return h, c


def lstm2d_step(gate_input, column, h_left, c_left, h_row, c_row, W_h_left, W_h_up, *peepholes, **options):
    """``lstm2d_cell`` inside a raster scan; ``h_row``/``c_row`` (W, B, H) hold the row above.

    ``column`` is the position's column in scan order; the returned row buffers have
    this position written in, for the next row to read.
    """
    h_up = h_row[column]
    c_up = c_row[column]
    h, c = lstm2d_cell(gate_input, h_left, c_left, h_up, c_up, W_h_left, W_h_up, *peepholes, **options)
    return h, c, pt.set_subtensor(h_row[column], h), pt.set_subtensor(c_row[column], c)
