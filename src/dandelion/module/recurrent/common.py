"""``RecurrentModule``: what LSTM, GRU, their cells and LSTM2D have in common.

Options, the input projection ``x @ W_in + b_in`` (computed for a whole sequence
before the scan), the learned initial states and the graph-build-time checks.
"""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.activation import tanh
from dandelion.module.base import Module
from dandelion.module.checks import check_shape
from dandelion.module.recurrent.scan_core import truncated_run
from dandelion.module.recurrent.validate import (
    check_mask,
    check_options,
    check_sequence,
    initial_state,
    peephole_init,
    zeros,
)
from dandelion.module.uneven import input_weight_spec
from dandelion.ops.recurrent_cells import carry_masked


class RecurrentModule(Module):
    """Base of the recurrent modules; subclasses register their weights in order."""

    def __init__(
        self, input_dims, hidden_dim, initializer, grad_clipping, hidden_activation, learn_ini, truncate_gradient, name
    ):
        super().__init__(name=name)
        self.input_dim, self.input_dims = check_options(
            type(self).__name__, input_dims, hidden_dim, initializer, grad_clipping, hidden_activation, truncate_gradient
        )
        self.hidden_dim = int(hidden_dim)
        self.output_dim = self.hidden_dim
        self.grad_clipping = float(grad_clipping)
        self.hidden_activation = hidden_activation
        self.learn_ini = bool(learn_ini)
        self.truncate_gradient = int(truncate_gradient)

    def _register_weights(self, initializer, n_gates, hidden_weights, initial_states, peepholes=()):
        """Register every weight, in the order weight files keep (portability).

        W_in (D, n_gates * H), b_in (n_gates * H,), each of ``hidden_weights``
        (H, n_gates * H), the ``initial_states`` (H,) when ``learn_ini``, then the
        ``peepholes`` (H,).
        """
        H = self.hidden_dim
        columns = n_gates * H
        self.W_in = self.register_param(
            input_weight_spec(initializer, self.input_dims, columns), shape=(self.input_dim, columns)
        )
        self.b_in = self.register_param(zeros(columns), shape=(columns,))
        for key in hidden_weights:
            setattr(self, key, self.register_param(initializer((H, columns)), shape=(H, columns)))
        for key in initial_states if self.learn_ini else ():
            self._register_vector(key, zeros(H))
        for key in peepholes:
            self._register_vector(key, peephole_init(initializer, H))

    def _register_vector(self, key, value):
        setattr(self, key, self.register_param(value, shape=(self.hidden_dim,)))

    def _step_options(self):
        return {
            "hidden_dim": self.hidden_dim,
            "grad_clipping": self.grad_clipping,
            "hidden_activation": self.hidden_activation,
        }

    def _project(self, x):
        return pt.dot(x, self.W_in) + self.b_in

    def _step_input(self, where, input, process_input, states):
        """Project a (B, D) step input when asked; check the (B, H) states by name."""
        if process_input:
            input = self._project(check_sequence(where, "input", input, 2, self.input_dim))
        checked = [check_shape(where, arg, pt.as_tensor_variable(s), (None, self.hidden_dim)) for arg, s in states]
        return input, checked

    @staticmethod
    def _keep_where(where, mask, new_states, old_states):
        """Apply a (B,) step mask: old states where it is zero."""
        if mask is None:
            return new_states
        keep = pt.neq(check_mask(where, "mask", mask, (None,)), 0)
        return [carry_masked(pt.switch, keep, new, old) for new, old in zip(new_states, old_states, strict=True)]

    def _sequence_start(self, where, seq_input, ndim, mask_argument, seq_mask, given_states):
        """Check the inputs and build the scan's start.

        ``given_states``: ``[(argument, tensor or None), ...]``; missing states come from the
        learned vector of the same name (``learn_ini``) or zeros. Returns
        ``(seq_input, seq_mask, gate_input, initial_states)``.
        """
        seq_input = check_sequence(where, "seq_input", seq_input, ndim, self.input_dim)
        lead = seq_input.type.shape[: ndim - 1]
        seq_mask = check_mask(where, mask_argument, seq_mask, lead)
        gate_input = self._project(seq_input)
        batch, batch_static = seq_input.shape[ndim - 2], lead[-1]
        states = [
            initial_state(
                where,
                argument,
                given,
                getattr(self, argument) if self.learn_ini else None,
                batch,
                batch_static,
                self.hidden_dim,
                gate_input.dtype,
            )
            for argument, given in given_states
        ]
        return seq_input, seq_mask, gate_input, states

    def _fused(self, seq_input):
        """Whether ``forward`` takes the fused Op: tanh only, and truncation needs a static length to split at."""
        if self.hidden_activation not in (tanh, pt.tanh):
            return False
        return self.truncate_gradient == -1 or seq_input.type.shape[0] is not None

    def _run_fused(self, sequence, seq_input, seq_mask, gate_input, states, backward):
        """The fused path's state sequences and final states.

        ``sequence(gate_input, mask, states)`` is the fused Op's wrapper on (a part of) the
        sequence in scan order, returning the state sequences. Handles ``backward`` (the
        sequences come back in input time order, the finals are the last scanned) and
        ``truncate_gradient`` (``truncated_run``).
        """
        if backward:
            gate_input = gate_input[::-1]
            seq_mask = None if seq_mask is None else seq_mask[::-1]

        def run(start, stop, states):
            mask = None if seq_mask is None else seq_mask[start:stop]
            return sequence(gate_input[start:stop], mask, states)

        sequences = truncated_run(run, seq_input.type.shape[0], self.truncate_gradient, states)
        finals = [seq[-1] for seq in sequences]
        return [seq[::-1] for seq in sequences] if backward else sequences, finals

