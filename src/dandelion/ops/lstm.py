"""The fused LSTM Op family: ``LSTMSequenceOp``, its gradient ``LSTMSequenceGradOp``, and
the wrapper ``lstm_sequence``.

A ``scan`` of ``lstm_step`` pays the scan machinery at every step and, in its gradient,
accumulates ``dW_hid`` one (B, H) x (B, 4H) product per step. This Op runs the forward
loop in one kernel per backend, and its gradient runs the backward recursion once and
forms ``dW_hid`` as a single product over all T * B rows. The input projection
``x @ W_in + b_in`` stays outside, an ordinary PyTensor product with an automatic
gradient. The kernels: ``c/lstm`` (C backend with ``blas__ldflags``), ``lstm_numpy`` (the
Python backend, and the C backend without BLAS flags), ``numba/lstm``, ``jax/lstm``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type, grad_not_implemented
from pytensor.graph.basic import Apply

from dandelion._compat import ShapeInferringOp
from dandelion.ops.c.lstm import LSTMBackwardCOp, LSTMForwardCOp
from dandelion.ops.lstm_numpy import lstm_backward, lstm_forward
from dandelion.ops.sequence_checks import (
    as_float_tensors,
    check_gate_shapes,
    check_grad_clipping,
    check_runtime,
    connected_cotangent,
    sequence_mask,
    unify,
)

WHERE = "lstm_sequence"
GRAD_WHERE = "lstm_sequence_grad"


def check_props(peephole, has_mask, grad_clipping):
    return bool(peephole), bool(has_mask), check_grad_clipping(WHERE, grad_clipping)


def pack_peepholes(peepholes, H, dtype):
    """The kernels read the peepholes as one (3, H) array; zeros when there are none."""
    if not peepholes:
        return np.zeros((3, H), dtype=dtype)
    return np.stack([np.asarray(p, dtype=dtype) for p in peepholes])


class LSTMSequenceParams:
    """Mixin: the static options and the variable input layout of both Ops.

    peephole : bool
        Whether the inputs include the three (H,) peephole vectors.
    has_mask : bool
        Whether the inputs end with a (T, B) mask.
    grad_clipping : float
        Clip bound for the gradient of the gate pre-activations (0: none).
    """

    __props__ = ("peephole", "has_mask", "grad_clipping")

    def __init__(self, peephole=False, has_mask=False, grad_clipping=0.0):
        self.peephole, self.has_mask, self.grad_clipping = check_props(peephole, has_mask, grad_clipping)

    def n_peep(self):
        return 3 if self.peephole else 0

    def split_state_inputs(self, inputs):
        """``(peepholes, h0, c0, mask, rest)`` from ``[*peepholes, h0, c0, [mask], *rest]``."""
        k = self.n_peep()
        peepholes = list(inputs[:k])
        h0, c0 = inputs[k], inputs[k + 1]
        mask = inputs[k + 2] if self.has_mask else None
        rest = list(inputs[k + 2 + int(self.has_mask) :])
        return peepholes, h0, c0, mask, rest


def static_sizes(where, gate_input, W_hid, peepholes, h0, c0, mask):
    """Static (T, B, H) where known; raises when two inputs disagree."""
    gs, ws, hs, cs = gate_input.type.shape, W_hid.type.shape, h0.type.shape, c0.type.shape
    ms = mask.type.shape if mask is not None else (None, None)
    check_gate_shapes(where, gate_input, W_hid, 4)
    T = unify(where, [("gate_input's axis 0 (T)", gs[0]), ("seq_mask's axis 0 (T)", ms[0])])
    B = unify(
        where,
        [
            ("gate_input's axis 1 (B)", gs[1]),
            ("h0's axis 0 (B)", hs[0]),
            ("c0's axis 0 (B)", cs[0]),
            ("seq_mask's axis 1 (B)", ms[1]),
        ],
    )
    H = unify(
        where,
        [
            ("W_hid's axis 0 (H)", ws[0]),
            ("W_hid's axis 1 / 4 (H)", None if ws[1] is None else ws[1] // 4),
            ("gate_input's axis 2 / 4 (H)", None if gs[2] is None else gs[2] // 4),
            ("h0's axis 1 (H)", hs[1]),
            ("c0's axis 1 (H)", cs[1]),
            *((f"peephole {k}'s length (H)", p.type.shape[0]) for k, p in enumerate(peepholes)),
        ],
    )
    return T, B, H


class LSTMSequenceOp(LSTMSequenceParams, ShapeInferringOp, LSTMForwardCOp):
    """The LSTM of ``steps.lstm_step`` with tanh as hidden activation, over a whole sequence.

    Inputs: gate_input (T, B, 4H), W_hid (H, 4H), [w_ci, w_cf, w_co (H,) if peephole],
    h0, c0 (B, H), [mask (T, B) of 0/1 in the float dtype if has_mask].
    Outputs: hs, cs (T, B, H), the states after every step (a masked step repeats the
    previous state), and gates (T, B, 4H), the gate activations, kept for the gradient.
    """

    __props__ = LSTMSequenceParams.__props__

    def make_node(self, gate_input, W_hid, *rest):
        expected = 2 + self.n_peep() + 2 + int(self.has_mask)
        if 2 + len(rest) != expected:
            raise TypeError(f"{WHERE}: expected {expected} inputs for {self}, got {2 + len(rest)}")
        peepholes, h0, c0, mask, _ = self.split_state_inputs(rest)
        named = [("gate_input", gate_input), ("W_hid", W_hid)]
        named += [(f"peephole {k}", p) for k, p in enumerate(peepholes)]
        named += [("h0", h0), ("c0", c0)] + ([("seq_mask", mask)] if self.has_mask else [])
        ndims = [3, 2] + [1] * len(peepholes) + [2, 2] + ([2] if self.has_mask else [])
        inputs, dtype = as_float_tensors(WHERE, named, ndims)
        peepholes, h0, c0, mask, _ = self.split_state_inputs(inputs[2:])
        T, B, H = static_sizes(WHERE, inputs[0], inputs[1], peepholes, h0, c0, mask)
        G = None if H is None else 4 * H
        outputs = [pt.tensor(dtype=dtype, shape=(T, B, H)), pt.tensor(dtype=dtype, shape=(T, B, H))]
        outputs.append(pt.tensor(dtype=dtype, shape=(T, B, G)))
        return Apply(self, inputs, outputs)

    def check_shapes(self, gate_input, W_hid, rest):
        """Raise naming the argument when the concrete (or JAX's static) shapes disagree."""
        peepholes, h0, c0, mask, _ = self.split_state_inputs(rest)
        T, B, _ = gate_input.shape
        H = W_hid.shape[0]
        check_runtime(
            WHERE,
            [("W_hid", W_hid.shape, (H, 4 * H)), ("gate_input", gate_input.shape, (T, B, 4 * H))]
            + [("h0", h0.shape, (B, H)), ("c0", c0.shape, (B, H))]
            + [(f"peephole {k}", p.shape, (H,)) for k, p in enumerate(peepholes)]
            + ([("seq_mask", mask.shape, (T, B))] if self.has_mask else []),
            T,
            B,
            H,
        )

    def perform(self, node, inputs, output_storage):
        gate_input, W_hid, *rest = inputs
        self.check_shapes(gate_input, W_hid, rest)
        peepholes, h0, c0, mask, _ = self.split_state_inputs(rest)
        H = W_hid.shape[0]
        results = lstm_forward(
            gate_input, W_hid, pack_peepholes(peepholes, H, gate_input.dtype), h0, c0, mask, self.peephole, self.has_mask
        )
        for storage, value, out in zip(output_storage, results, node.outputs, strict=True):
            storage[0] = value.astype(out.dtype, copy=False)

    def output_shapes(self, node, input_shapes):
        gs = input_shapes[0]
        H = input_shapes[1][0]
        return [(gs[0], gs[1], H), (gs[0], gs[1], H), tuple(gs)]

    def connection_pattern(self, node):
        connected = [[True, True, True] for _ in node.inputs]
        if self.has_mask:
            connected[-1] = [False, False, False]
        return connected

    def pullback(self, inputs, outputs, cotangents):
        gate_input, W_hid, *rest = inputs
        hs, cs, gates = outputs
        d_hs, d_cs, d_gates = cotangents
        if not isinstance(d_gates.type, DisconnectedType):
            raise NotImplementedError(f"{WHERE}: the gate activations output is internal and cannot be differentiated")
        d_hs, d_cs = connected_cotangent(d_hs, hs), connected_cotangent(d_cs, cs)
        peepholes, h0, c0, mask, _ = self.split_state_inputs(rest)
        grad_op = LSTMSequenceGradOp(self.peephole, self.has_mask, self.grad_clipping)
        state_inputs = [*peepholes, h0, c0] + ([mask] if self.has_mask else [])
        grads = grad_op(W_hid, *state_inputs, hs, cs, gates, d_hs, d_cs)
        d_gate_input, d_W_hid, *d_rest = grads
        d_peep, (d_h0, d_c0) = d_rest[: self.n_peep()], d_rest[self.n_peep() :]
        result = [d_gate_input, d_W_hid, *d_peep, d_h0, d_c0]
        result = [g.astype(x.dtype) for g, x in zip(result, inputs, strict=False)]
        if self.has_mask:
            result.append(disconnected_type())
        return result


class LSTMSequenceGradOp(LSTMSequenceParams, ShapeInferringOp, LSTMBackwardCOp):
    """Cotangents of ``LSTMSequenceOp``'s inputs from those of its hs and cs outputs.

    Inputs: W_hid (H, 4H), [w_ci, w_cf, w_co (H,)], h0, c0 (B, H), [mask (T, B)], and
    the forward outputs hs, cs (T, B, H), gates (T, B, 4H), then d_hs, d_cs (T, B, H).
    Outputs: d_gate_input (T, B, 4H), d_W_hid (H, 4H), [three (H,) peephole
    gradients], d_h0, d_c0 (B, H). Not differentiable itself (no second derivatives).
    """

    __props__ = LSTMSequenceParams.__props__

    def make_node(self, W_hid, *rest):
        expected = 1 + self.n_peep() + 2 + int(self.has_mask) + 5
        if 1 + len(rest) != expected:
            raise TypeError(f"{GRAD_WHERE}: expected {expected} inputs for {self}, got {1 + len(rest)}")
        peepholes, h0, c0, mask, forward = self.split_state_inputs(rest)
        named = [("W_hid", W_hid)] + [(f"peephole {k}", p) for k, p in enumerate(peepholes)]
        named += [("h0", h0), ("c0", c0)] + ([("seq_mask", mask)] if self.has_mask else [])
        named += list(zip(["hs", "cs", "gates", "d_hs", "d_cs"], forward, strict=True))
        ndims = [2] + [1] * len(peepholes) + [2, 2] + ([2] if self.has_mask else []) + [3] * 5
        inputs, dtype = as_float_tensors(GRAD_WHERE, named, ndims)
        W_hid, hs, gates = inputs[0], inputs[-5], inputs[-3]
        outputs = [pt.tensor(dtype=dtype, shape=gates.type.shape), pt.tensor(dtype=dtype, shape=W_hid.type.shape)]
        outputs += [pt.tensor(dtype=dtype, shape=(hs.type.shape[2],)) for _ in peepholes]
        outputs += [pt.tensor(dtype=dtype, shape=hs.type.shape[1:]) for _ in range(2)]
        return Apply(self, inputs, outputs)

    def check_shapes(self, W_hid, rest):
        """Raise naming the argument when the concrete (or JAX's static) shapes disagree."""
        peepholes, h0, c0, mask, (hs, cs, gates, d_hs, d_cs) = self.split_state_inputs(rest)
        T, B, H = hs.shape
        check_runtime(
            GRAD_WHERE,
            [("W_hid", W_hid.shape, (H, 4 * H)), ("h0", h0.shape, (B, H)), ("c0", c0.shape, (B, H))]
            + [(f"peephole {k}", p.shape, (H,)) for k, p in enumerate(peepholes)]
            + ([("seq_mask", mask.shape, (T, B))] if self.has_mask else [])
            + [("cs", cs.shape, (T, B, H)), ("gates", gates.shape, (T, B, 4 * H))]
            + [("d_hs", d_hs.shape, (T, B, H)), ("d_cs", d_cs.shape, (T, B, H))],
            T,
            B,
            H,
        )

    def perform(self, node, inputs, output_storage):
        W_hid, *rest = inputs
        self.check_shapes(W_hid, rest)
        peepholes, h0, c0, mask, (hs, cs, gates, d_hs, d_cs) = self.split_state_inputs(rest)
        H = hs.shape[2]
        d_gate_input, d_W_hid, d_peep, d_h0, d_c0 = lstm_backward(
            W_hid,
            pack_peepholes(peepholes, H, hs.dtype),
            h0,
            c0,
            mask,
            hs,
            cs,
            gates,
            d_hs,
            d_cs,
            self.grad_clipping,
            self.peephole,
            self.has_mask,
        )
        results = [d_gate_input, d_W_hid, *(list(d_peep) if self.peephole else []), d_h0, d_c0]
        for storage, value, out in zip(output_storage, results, node.outputs, strict=True):
            storage[0] = value.astype(out.dtype, copy=False)

    def output_shapes(self, node, input_shapes):
        hs = input_shapes[-5]
        gates = input_shapes[-3]
        shapes = [tuple(gates), tuple(input_shapes[0])]
        shapes += [(hs[2],) for _ in range(self.n_peep())]
        shapes += [(hs[1], hs[2]), (hs[1], hs[2])]
        return shapes

    def pullback(self, inputs, outputs, cotangents):
        # Second derivatives of the fused LSTM are not implemented; PyTensor reports this
        # (with the Op and input) if anyone asks for them.
        return [grad_not_implemented(self, k, x, "second derivatives of lstm_sequence") for k, x in enumerate(inputs)]


def lstm_sequence(gate_input, W_hid, h0, c0, peepholes=None, mask=None, grad_clipping=0.0):
    """Run an LSTM with tanh hidden activation over a whole sequence in one fused Op.

    Same arithmetic as scanning ``dandelion.module.recurrent.steps.lstm_step``: gate
    blocks ``[input | forget | cell | output]``, Lasagne's peepholes, masked steps carry
    h and c forward (their gradients pass unclipped), and ``grad_clipping`` > 0 clips the
    gradient reaching ``gate_input + h @ W_hid`` at every step.

    Parameters
    ----------
    gate_input : (T, B, 4H)
        The projected input ``x @ W_in + b_in``.
    W_hid : (H, 4H)
    h0, c0 : (B, H)
        States before the first step.
    peepholes : three (H,) tensors ``w_cell_to_igate, w_cell_to_fgate, w_cell_to_ogate``, optional
    mask : (T, B), optional
        Where zero, the step is skipped for that sequence.
    grad_clipping : float

    Returns
    -------
    hs, cs : (T, B, H)
        The states after every step; ``hs[-1]``, ``cs[-1]`` are the final states.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> hs, cs = lstm_sequence(pt.tensor("g", shape=(5, 2, 12)), pt.matrix("W"), pt.matrix("h"), pt.matrix("c"))
    >>> hs.type.shape
    (5, 2, 3)
    """
    peepholes = list(peepholes) if peepholes is not None else []
    if len(peepholes) not in (0, 3):
        raise ValueError(f"{WHERE}: peepholes must be three (H,) vectors (input, forget, output gate), got {len(peepholes)}")
    op = LSTMSequenceOp(peephole=bool(peepholes), has_mask=mask is not None, grad_clipping=grad_clipping)
    inputs = [gate_input, W_hid, *peepholes, h0, c0]
    if mask is not None:
        inputs.append(sequence_mask(WHERE, mask, gate_input))
    hs, cs, _ = op(*inputs)
    return hs, cs
