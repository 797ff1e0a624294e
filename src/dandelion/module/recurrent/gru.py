"""``GRU``: a gated recurrent unit layer over (T, B, D) sequences."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion import initialization as init
from dandelion.activation import tanh
from dandelion.module.recurrent.common import RecurrentModule
from dandelion.module.recurrent.scan_core import recurrent_scan
from dandelion.module.recurrent.steps import gru_step
from dandelion.ops.gru import gru_sequence


class GRUParams(RecurrentModule):
    """Parameters and the public ``step`` shared by ``GRU`` and ``GRUCell``.

    Registration order (weight portability): W_in (D, 3H), b_in (3H,), W_hid (H, 3H),
    [h_ini (H,) if learn_ini]. Gate blocks: reset, update, candidate.
    """

    def __init__(
        self,
        input_dims,
        hidden_dim,
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
        self._register_weights(initializer, 3, ["W_hid"], ["h_ini"])

    def step(self, input, h_pre, mask=None, process_input=False):
        """One time step, for writing loops of your own.

        Parameters
        ----------
        input : (B, 3H) projected input ``x @ W_in + b_in``, or (B, D) raw input with
            ``process_input=True``
        h_pre : (B, H)
        mask : (B,), optional
            Where zero, ``h_pre`` is returned unchanged.

        Returns
        -------
        h : (B, H)
        """
        where = f"{type(self).__name__}.step"
        input, (h_pre,) = self._step_input(where, input, process_input, [("h_pre", h_pre)])
        h = gru_step(input, h_pre, self.W_hid, **self._step_options())
        return self._keep_where(where, mask, [h], [h_pre])[0]


class GRU(GRUParams):
    """Gated recurrent unit layer (Cho et al. 2014, as Lasagne).

    ``r = σ(x W_xr + h W_hr + b_r)``, ``u = σ(x W_xu + h W_hu + b_u)``,
    ``c = act(x W_xc + r ⊙ (h W_hc) + b_c)``, ``h' = (1 - u) ⊙ h + u ⊙ c``.

    Parameters
    ----------
    input_dims : int or list of int
        Input feature size, or the sizes of concatenated parts ("uneven" W_in init).
    hidden_dim : int
        H, the size of the hidden state and of the output.
    initializer : Initializer
        Samples W_in and W_hid; biases start at zero.
    grad_clipping : float
        When > 0, gradients reaching the new hidden state are clipped to
        ``[-grad_clipping, grad_clipping]`` at every step during back-propagation.
    hidden_activation : callable
        Activation of the candidate state ``c``.
    learn_ini : bool
        Learn the initial state h_ini (H,), broadcast over the batch.
    truncate_gradient : int
        -1 for full back-propagation through time, else the number of steps:
        gradients reach only the last ``truncate_gradient`` scanned steps, as in
        Theano's scan. With a static sequence length the scan is split where
        truncation starts, which every backend differentiates; a truncated scan of
        unknown length fails to differentiate on PyTensor's JAX backend.
    name : str, optional

    Notes
    -----
    With ``hidden_activation`` tanh (the default), ``forward`` runs the whole recurrence
    as one fused Op (``dandelion.ops.gru.gru_sequence``) whose gradient back-propagates
    through time in one kernel per backend and forms ``dW_hid`` as one product over all
    steps; a truncated gradient takes it when the sequence length is static (split as
    the LSTM's). Other configurations scan ``gru_step``; both paths give the same
    outputs and gradients. ``step()`` and ``GRUCell`` always use ``gru_step``.

    Masked steps really carry h forward (the Theano-era ``if mask:`` never did on
    PyTensor). The clip applies to the computed state before the mask is applied, so a
    skipped step passes its gradient on unclipped.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import GRU
    >>> gru = GRU(input_dims=8, hidden_dim=16)
    >>> gru.forward(pt.tensor3("x"), only_return_final=True).ndim
    2
    """

    def forward(
        self, seq_input, h_ini=None, seq_mask=None, backward=False, only_return_final=False, return_final_state=False
    ):
        """Build the graph over a whole sequence.

        Parameters
        ----------
        seq_input : (T, B, D)
        h_ini : (B, H), optional
            Initial state; default the learned one (``learn_ini``) or zeros.
        seq_mask : (T, B), optional
            Where zero, the step is skipped: h keeps its previous value.
        backward : bool
            Scan from the last step to the first; outputs stay in input time order.
        only_return_final : bool
            Return the last scanned h (B, H) instead of the sequence.
        return_final_state : bool
            Also return the final h (B, H).

        Returns
        -------
        seq_h : (T, B, H), or (B, H) with ``only_return_final``;
        with ``return_final_state``: ``(seq_h, h_final)``.
        """
        where = f"{type(self).__name__}.forward"
        seq_input, seq_mask, gate_input, (h0,) = self._sequence_start(
            where, seq_input, 3, "seq_mask", seq_mask, [("h_ini", h_ini)]
        )
        if self._fused(seq_input):
            (seq_h,), (h_final,) = self._run_fused(self._sequence, seq_input, seq_mask, gate_input, [h0], backward)
            return self._results(seq_input, seq_h, h_final, only_return_final, return_final_state)
        options = self._step_options()

        def step(x_t, h_prev, W_hid):
            return gru_step(x_t, h_prev, W_hid, **options)

        (seq_h,), (h_final,) = recurrent_scan(
            step,
            [gate_input],
            [h0],
            [self.W_hid],
            mask=seq_mask,
            backward=backward,
            truncate_gradient=self.truncate_gradient,
            name=f"{type(self).__name__}_scan",
        )
        return self._results(seq_input, seq_h, h_final, only_return_final, return_final_state)

    def _sequence(self, gate_input, mask, states):
        return [gru_sequence(gate_input, self.W_hid, *states, mask=mask, grad_clipping=self.grad_clipping)]

    def _results(self, seq_input, seq_h, h_final, only_return_final, return_final_state):
        """What ``forward`` returns, from either path's sequence and final state."""
        output = h_final if only_return_final else pt.specify_shape(seq_h, seq_input.type.shape[:2] + (self.hidden_dim,))
        return (output, h_final) if return_final_state else output
