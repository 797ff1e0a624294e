"""``LSTM``: a long short-term memory layer over (T, B, D) sequences."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion import initialization as init
from dandelion.activation import tanh
from dandelion.module.recurrent.common import RecurrentModule
from dandelion.module.recurrent.scan_core import recurrent_scan
from dandelion.module.recurrent.steps import lstm_step
from dandelion.ops.lstm import lstm_sequence

PEEPHOLES = ("w_cell_to_igate", "w_cell_to_fgate", "w_cell_to_ogate")


class LSTMParams(RecurrentModule):
    """Parameters and the public ``step`` shared by ``LSTM`` and ``LSTMCell``.

    Registration order (weight portability): W_in (D, 4H), b_in (4H,), W_hid (H, 4H),
    [h_ini, c_ini (H,) if learn_ini], [w_cell_to_igate, w_cell_to_fgate,
    w_cell_to_ogate (H,) if peephole]. Gate blocks: input, forget, cell, output.
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
        self._register_weights(initializer, 4, ["W_hid"], ["h_ini", "c_ini"], PEEPHOLES if self.peephole else ())

    def _step_params(self):
        return [self.W_hid, *(getattr(self, key) for key in PEEPHOLES if self.peephole)]

    def step(self, input, h_pre, c_pre, mask=None, process_input=False):
        """One time step, for writing loops of your own.

        Parameters
        ----------
        input : (B, 4H) projected input ``x @ W_in + b_in``, or (B, D) raw input with
            ``process_input=True``
        h_pre, c_pre : (B, H)
        mask : (B,), optional
            Where zero, ``h_pre`` and ``c_pre`` are returned unchanged.

        Returns
        -------
        h, c : (B, H)
        """
        where = f"{type(self).__name__}.step"
        input, (h_pre, c_pre) = self._step_input(where, input, process_input, [("h_pre", h_pre), ("c_pre", c_pre)])
        h, c = lstm_step(input, h_pre, c_pre, *self._step_params(), **self._step_options())
        return tuple(self._keep_where(where, mask, [h, c], [h_pre, c_pre]))


class LSTM(LSTMParams):
    """Long short-term memory layer (Graves 2013, peepholes as in Lasagne).

    Parameters
    ----------
    input_dims : int or list of int
        Input feature size, or the sizes of concatenated parts (W_in is then
        initialised per part and divided by the number of parts).
    hidden_dim : int
        H, the size of the hidden state and of the output.
    peephole : bool
        Add the cell-to-gate connections ``w_cell_to_{i,f,o}gate``.
    initializer : Initializer
        Samples W_in, W_hid and the peepholes; biases start at zero.
    grad_clipping : float
        When > 0, gradients of the gate pre-activations are clipped to
        ``[-grad_clipping, grad_clipping]`` at every step during back-propagation.
    hidden_activation : callable
        ``h = o * hidden_activation(c)``.
    learn_ini : bool
        Learn the initial states h_ini, c_ini (H,), broadcast over the batch.
    truncate_gradient : int
        -1 for full back-propagation through time, else the number of steps:
        gradients reach only the last ``truncate_gradient`` scanned steps, as in
        Theano's scan. Gradients of a truncated *scan* fail on PyTensor's JAX backend
        (PyTensor 3.0: an assertion in its scan trace handling); the fused path below
        truncates without a scan and works on every backend.
    name : str, optional

    Notes
    -----
    With ``hidden_activation`` tanh (the default), ``forward`` runs the whole recurrence
    as one fused Op (``dandelion.ops.lstm_sequence``) whose gradient back-propagates
    through time in one kernel per backend and forms ``dW_hid`` as one product over all
    steps. A truncated gradient takes the fused path when the sequence length is static:
    the sequence is split where truncation starts, and the first part's states enter the
    second part with their gradient stopped. Other configurations scan ``lstm_step``.
    Both paths give the same outputs and gradients. ``step()`` and ``LSTMCell`` always use
    ``lstm_step``.

    The Theano-era library tested masks with ``if mask:``; here a masked step really
    carries h and c forward. Gradients of a skipped step pass to the previous state
    unclipped.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import LSTM
    >>> lstm = LSTM(input_dims=8, hidden_dim=16)
    >>> lstm.forward(pt.tensor("x", shape=(5, 2, 8))).type.shape
    (5, 2, 16)
    """

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
        """Build the graph over a whole sequence.

        Parameters
        ----------
        seq_input : (T, B, D)
        h_ini, c_ini : (B, H), optional
            Initial states; default the learned ones (``learn_ini``) or zeros.
        seq_mask : (T, B), optional
            Where zero, the step is skipped: h and c keep their previous values.
        backward : bool
            Scan from the last step to the first; outputs stay in input time order.
        only_return_final : bool
            Return the last scanned h (B, H) instead of the sequence.
        return_final_state : bool
            Also return the final h and c, each (B, H).

        Returns
        -------
        seq_h : (T, B, H), or (B, H) with ``only_return_final``;
        with ``return_final_state``: ``(seq_h, h_final, c_final)``.
        """
        where = f"{type(self).__name__}.forward"
        seq_input, seq_mask, gate_input, (h0, c0) = self._sequence_start(
            where, seq_input, 3, "seq_mask", seq_mask, [("h_ini", h_ini), ("c_ini", c_ini)]
        )
        if self._fused(seq_input):
            return self._forward_fused(seq_input, seq_mask, gate_input, h0, c0, backward, only_return_final, return_final_state)
        options = self._step_options()

        def step(x_t, h_prev, c_prev, *params):
            return lstm_step(x_t, h_prev, c_prev, *params, **options)

        (seq_h, _), (h_final, c_final) = recurrent_scan(
            step,
            [gate_input],
            [h0, c0],
            self._step_params(),
            mask=seq_mask,
            backward=backward,
            truncate_gradient=self.truncate_gradient,
            name=f"{type(self).__name__}_scan",
        )
        return self._results(seq_input, seq_h, h_final, c_final, only_return_final, return_final_state)

    def _results(self, seq_input, seq_h, h_final, c_final, only_return_final, return_final_state):
        """What ``forward`` returns, from either path's sequence and final states."""
        output = h_final if only_return_final else pt.specify_shape(seq_h, seq_input.type.shape[:2] + (self.hidden_dim,))
        return (output, h_final, c_final) if return_final_state else output

    def _forward_fused(self, seq_input, seq_mask, gate_input, h0, c0, backward, only_return_final, return_final_state):
        peepholes = [getattr(self, key) for key in PEEPHOLES] if self.peephole else None

        def sequence(gate_input, mask, states):
            return lstm_sequence(gate_input, self.W_hid, *states, peepholes=peepholes, mask=mask, grad_clipping=self.grad_clipping)

        (seq_h, _), (h_final, c_final) = self._run_fused(sequence, seq_input, seq_mask, gate_input, [h0, c0], backward)
        return self._results(seq_input, seq_h, h_final, c_final, only_return_final, return_final_state)
