"""``LSTMSequenceGrad``: the gradient of ``LSTMSequence`` (back-propagation through time)."""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented
from pytensor.graph.basic import Apply

from dandelion._compat import ShapeInferringOp
from dandelion.ops.lstm_sequence_common import (
    LSTMSequenceParams,
    as_float_tensors,
    check_runtime,
    pack_peepholes,
)
from dandelion.ops.lstm_sequence_numpy import lstm_backward

WHERE = "lstm_sequence_grad"


class LSTMSequenceGrad(LSTMSequenceParams, ShapeInferringOp):
    """Cotangents of ``LSTMSequence``'s inputs from those of its hs and cs outputs.

    Inputs: W_hid (H, 4H), [w_ci, w_cf, w_co (H,)], h0, c0 (B, H), [mask (T, B)], and
    the forward outputs hs, cs (T, B, H), gates (T, B, 4H), then d_hs, d_cs (T, B, H).
    Outputs: d_gate_input (T, B, 4H), d_W_hid (H, 4H), [three (H,) peephole
    gradients], d_h0, d_c0 (B, H). Not differentiable itself (no second derivatives).
    """

    __props__ = LSTMSequenceParams.__props__

    def make_node(self, W_hid, *rest):
        expected = 1 + self.n_peep() + 2 + int(self.has_mask) + 5
        if 1 + len(rest) != expected:
            raise TypeError(f"{WHERE}: expected {expected} inputs for {self}, got {1 + len(rest)}")
        peepholes, h0, c0, mask, forward = self.split_state_inputs(rest)
        named = [("W_hid", W_hid)] + [(f"peephole {k}", p) for k, p in enumerate(peepholes)]
        named += [("h0", h0), ("c0", c0)] + ([("seq_mask", mask)] if self.has_mask else [])
        named += list(zip(["hs", "cs", "gates", "d_hs", "d_cs"], forward, strict=True))
        ndims = [2] + [1] * len(peepholes) + [2, 2] + ([2] if self.has_mask else []) + [3] * 5
        inputs, dtype = as_float_tensors(WHERE, named, ndims)
        W_hid, hs, gates = inputs[0], inputs[-5], inputs[-3]
        outputs = [pt.tensor(dtype=dtype, shape=gates.type.shape), pt.tensor(dtype=dtype, shape=W_hid.type.shape)]
        outputs += [pt.tensor(dtype=dtype, shape=(hs.type.shape[2],)) for _ in peepholes]
        outputs += [pt.tensor(dtype=dtype, shape=hs.type.shape[1:]) for _ in range(2)]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        W_hid, *rest = inputs
        peepholes, h0, c0, mask, (hs, cs, gates, d_hs, d_cs) = self.split_state_inputs(rest)
        T, B, H = hs.shape
        check_runtime(
            WHERE,
            [("W_hid", W_hid.shape, (H, 4 * H)), ("h0", h0.shape, (B, H)), ("c0", c0.shape, (B, H))]
            + [(f"peephole {k}", p.shape, (H,)) for k, p in enumerate(peepholes)]
            + ([("seq_mask", mask.shape, (T, B))] if self.has_mask else [])
            + [("cs", cs.shape, (T, B, H)), ("gates", gates.shape, (T, B, 4 * H))]
            + [("d_hs", d_hs.shape, (T, B, H)), ("d_cs", d_cs.shape, (T, B, H))],
            T,
            B,
            H,
        )
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
