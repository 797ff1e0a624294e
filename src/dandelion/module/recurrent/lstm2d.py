"""``LSTM2D``: a 2-D LSTM over (H, W, B, C) feature maps, scanned in raster order."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion import initialization as init
from dandelion.activation import tanh
from dandelion.module.recurrent.common import RecurrentModule
from dandelion.module.recurrent.scan_core import recurrent_scan
from dandelion.module.recurrent.steps import lstm2d_cell, lstm2d_step

PEEPHOLES = (
    "w_cell_to_igate_left",
    "w_cell_to_igate_up",
    "w_cell_to_fgate_left",
    "w_cell_to_fgate_up",
    "w_cell_to_ogate",
)


class LSTM2D(RecurrentModule):
    """2-D LSTM: each position sees its left and upper neighbours.

    The (H, W) grid is scanned row by row (the first two axes flattened), as in the
    Theano-era library: the "left" state is the state of the previous position in
    scan order (so the first position of a row continues from the end of the row
    before, and the very first from ``h_ini``/``c_ini``), the "up" state comes from
    the row above (zeros for the first row). ``backward`` scans right-to-left,
    bottom-to-top. LSTM2D keeps the whole scan history for autograd; use it on small
    feature maps.

    A masked position passes on what it received: the scan carries h and c unchanged,
    and the row buffer keeps the state from above for the position below. (The old
    library crashed when given a mask.)

    Parameters
    ----------
    input_dims : int or list of int
        Channel count C, or the sizes of concatenated parts ("uneven" W_in init).
    hidden_dim : int
        Size of the hidden state and of the output.
    peephole : bool
        Add the five cell-to-gate connections.
    initializer : Initializer
    grad_clipping : float
        When > 0, gradients of the gate pre-activations are clipped at every position.
    hidden_activation : callable
    learn_ini : bool
        Learn h_ini, c_ini (hidden_dim,), broadcast over the batch.
    truncate_gradient : int
        -1 for full back-propagation, else the number of scan steps (positions, in
        scan order). With static H and W the scan is split where truncation starts,
        which every backend differentiates; a truncated scan of unknown length fails
        to differentiate on PyTensor's JAX backend.
    name : str, optional

    Registration order: W_in (C, 4h), b_in (4h,), W_h_left (h, 4h), W_h_up (h, 4h),
    [h_ini, c_ini], [w_cell_to_igate_left, w_cell_to_igate_up, w_cell_to_fgate_left,
    w_cell_to_fgate_up, w_cell_to_ogate].

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import LSTM2D
    >>> lstm2d = LSTM2D(input_dims=3, hidden_dim=4)
    >>> lstm2d.forward(pt.tensor("x", shape=(2, 3, 5, 3))).type.shape
    (2, 3, 5, 4)
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
        name=None,
    ):
        super().__init__(
            input_dims, hidden_dim, initializer, grad_clipping, hidden_activation, learn_ini, truncate_gradient, name
        )
        self.peephole = bool(peephole)
        self._register_weights(initializer, 4, ["W_h_left", "W_h_up"], ["h_ini", "c_ini"], PEEPHOLES if self.peephole else ())

    def _step_params(self):
        return [self.W_h_left, self.W_h_up, *(getattr(self, key) for key in PEEPHOLES if self.peephole)]

    def step(self, input, h_left, c_left, h_up, c_up, mask=None, process_input=False):
        """One position from its neighbours, for loops of your own.

        Parameters
        ----------
        input : (B, 4h) projected input, or (B, C) raw input with ``process_input=True``
        h_left, c_left, h_up, c_up : (B, h)
        mask : (B,), optional
            Where zero, ``h_left`` and ``c_left`` are returned unchanged.

        Returns
        -------
        h, c : (B, h)
        """
        where = "LSTM2D.step"
        input, states = self._step_input(
            where, input, process_input, [("h_left", h_left), ("c_left", c_left), ("h_up", h_up), ("c_up", c_up)]
        )
        h, c = lstm2d_cell(input, *states, *self._step_params(), **self._step_options())
        return tuple(self._keep_where(where, mask, [h, c], states[:2]))

    def forward(
        self,
        seq_input,
        h_ini=None,
        c_ini=None,
        seq_mask=None,
        backward=False,
        only_return_final=False,
        return_final_state=False,
    ):
        """Build the graph over a whole feature map.

        Parameters
        ----------
        seq_input : (H, W, B, C)
        h_ini, c_ini : (B, hidden_dim), optional
            State left of the first scanned position; default learned or zeros.
        seq_mask : (H, W, B), optional
        backward : bool
            Scan right-to-left, bottom-to-top; outputs stay in input order.
        only_return_final : bool
            Return the last scanned h (B, hidden_dim).
        return_final_state : bool
            Also return the final h and c, each (B, hidden_dim).

        Returns
        -------
        seq_h : (H, W, B, hidden_dim), or (B, hidden_dim) with ``only_return_final``;
        with ``return_final_state``: ``(seq_h, h_final, c_final)``.
        """
        where = "LSTM2D.forward"
        seq_input, seq_mask, gate_input, (h0, c0) = self._sequence_start(
            where, seq_input, 4, "seq_mask", seq_mask, [("h_ini", h_ini), ("c_ini", c_ini)]
        )
        H_static, W_static, B_static = seq_input.type.shape[:3]
        height, width, batch = seq_input.shape[0], seq_input.shape[1], seq_input.shape[2]
        hid = self.hidden_dim
        width_now = width if W_static is None else W_static
        batch_now = batch if B_static is None else B_static
        row0 = pt.zeros((width_now, batch_now, hid), dtype=gate_input.dtype)
        n_positions = height * width
        flat_input = gate_input.reshape((n_positions, batch, 4 * hid))
        if H_static is not None and W_static is not None:
            flat_input = pt.specify_shape(flat_input, (H_static * W_static, B_static, 4 * hid))
        columns = pt.arange(n_positions, dtype="int64") % width
        flat_mask = None if seq_mask is None else seq_mask.reshape((n_positions, batch))
        options = self._step_options()

        def step(x_t, column, h_prev, c_prev, h_row, c_row, *params):
            return lstm2d_step(x_t, column, h_prev, c_prev, h_row, c_row, *params, **options)

        (seq_h, *_), (h_final, c_final, _, _) = recurrent_scan(
            step,
            [flat_input, columns],
            [h0, c0, row0, row0],
            self._step_params(),
            mask=flat_mask,
            backward=backward,
            truncate_gradient=self.truncate_gradient,
            state_batch_axes=[0, 0, 1, 1],
            name="LSTM2D_scan",
        )
        if only_return_final:
            output = h_final
        else:
            output = pt.specify_shape(seq_h.reshape((height, width, batch, hid)), (H_static, W_static, B_static, hid))
        if return_final_state:
            return output, h_final, c_final
        return output
