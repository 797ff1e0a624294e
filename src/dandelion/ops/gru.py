"""The fused GRU Op family: ``GRUSequenceOp``, its gradient ``GRUSequenceGradOp``, and the
wrapper ``gru_sequence``.

As the fused LSTM (``dandelion.ops.lstm``): the forward loop runs in one kernel per
backend, and the gradient runs the backward recursion once and forms ``dW_hid`` as a
single product over all T * B rows instead of one per step inside a scan's gradient.
The input projection ``x @ W_in + b_in`` stays outside, an ordinary PyTensor product.
The kernels: ``gru_numpy`` (the Python backend, and the C backend without BLAS flags),
``c/gru``, ``numba/gru``, ``jax/gru``.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type, grad_not_implemented
from pytensor.graph.basic import Apply

from dandelion._compat import ShapeInferringOp
from dandelion.ops.c.gru import GRUBackwardCOp, GRUForwardCOp
from dandelion.ops.gru_numpy import gru_backward, gru_forward
from dandelion.ops.sequence_checks import (
    as_float_tensors,
    check_gate_shapes,
    check_grad_clipping,
    check_runtime,
    connected_cotangent,
    sequence_mask,
    unify,
)

WHERE = "gru_sequence"
GRAD_WHERE = "gru_sequence_grad"


class GRUSequenceParams:
    """Mixin: the static options of both Ops.

    has_mask : bool
        Whether the inputs include a (T, B) mask after h0.
    grad_clipping : float
        Clip bound for the gradient reaching each step's new state (0: none).
    """

    __props__ = ("has_mask", "grad_clipping")

    def __init__(self, has_mask=False, grad_clipping=0.0):
        self.has_mask = bool(has_mask)
        self.grad_clipping = check_grad_clipping(WHERE, grad_clipping)


def static_sizes(where, gate_input, W_hid, h0, mask):
    """Static (T, B, H) where known; raises when two inputs disagree."""
    gs, ws, hs = gate_input.type.shape, W_hid.type.shape, h0.type.shape
    ms = mask.type.shape if mask is not None else (None, None)
    check_gate_shapes(where, gate_input, W_hid, 3)
    T = unify(where, [("gate_input's axis 0 (T)", gs[0]), ("seq_mask's axis 0 (T)", ms[0])])
    B = unify(where, [("gate_input's axis 1 (B)", gs[1]), ("h0's axis 0 (B)", hs[0]), ("seq_mask's axis 1 (B)", ms[1])])
    H = unify(
        where,
        [
            ("W_hid's axis 0 (H)", ws[0]),
            ("W_hid's axis 1 / 3 (H)", None if ws[1] is None else ws[1] // 3),
            ("gate_input's axis 2 / 3 (H)", None if gs[2] is None else gs[2] // 3),
            ("h0's axis 1 (H)", hs[1]),
        ],
    )
    return T, B, H


class GRUSequenceOp(GRUSequenceParams, ShapeInferringOp, GRUForwardCOp):
    """The GRU of ``steps.gru_step`` with a tanh candidate, over a whole sequence.

    Inputs: gate_input (T, B, 3H), W_hid (H, 3H), h0 (B, H), [mask (T, B) of 0/1 in the
    float dtype if has_mask]. Outputs: hs (T, B, H), the states after every step (a
    masked step repeats the previous state), and cache (T, B, 4H), each step's
    ``[r | u | candidate | c_h]``, kept for the gradient.
    """

    __props__ = GRUSequenceParams.__props__

    def make_node(self, gate_input, W_hid, h0, *mask):
        if len(mask) != int(self.has_mask):
            raise TypeError(f"{WHERE}: expected {3 + int(self.has_mask)} inputs for {self}, got {3 + len(mask)}")
        named = [("gate_input", gate_input), ("W_hid", W_hid), ("h0", h0)] + [("seq_mask", m) for m in mask]
        inputs, dtype = as_float_tensors(WHERE, named, [3, 2, 2] + [2] * len(mask))
        T, B, H = static_sizes(WHERE, *inputs[:3], inputs[3] if self.has_mask else None)
        outputs = [pt.tensor(dtype=dtype, shape=(T, B, H)), pt.tensor(dtype=dtype, shape=(T, B, None if H is None else 4 * H))]
        return Apply(self, inputs, outputs)

    def check_shapes(self, gate_input, W_hid, h0, mask):
        """Raise naming the argument when the concrete (or JAX's static) shapes disagree; ``mask``: a list of 0 or 1."""
        T, B, _ = gate_input.shape
        H = W_hid.shape[0]
        check_runtime(
            WHERE,
            [("W_hid", W_hid.shape, (H, 3 * H)), ("gate_input", gate_input.shape, (T, B, 3 * H)), ("h0", h0.shape, (B, H))]
            + [("seq_mask", m.shape, (T, B)) for m in mask],
            T,
            B,
            H,
        )

    def perform(self, node, inputs, output_storage):
        gate_input, W_hid, h0, *mask = inputs
        self.check_shapes(gate_input, W_hid, h0, mask)
        results = gru_forward(gate_input, W_hid, h0, mask[0] if mask else None, self.has_mask)
        for storage, value, out in zip(output_storage, results, node.outputs, strict=True):
            storage[0] = value.astype(out.dtype, copy=False)

    def output_shapes(self, node, input_shapes):
        gs = input_shapes[0]
        H = input_shapes[1][0]
        return [(gs[0], gs[1], H), (gs[0], gs[1], 4 * H)]

    def connection_pattern(self, node):
        return [[True, True], [True, True], [True, True]] + [[False, False]] * int(self.has_mask)

    def pullback(self, inputs, outputs, cotangents):
        gate_input, W_hid, h0, *mask = inputs
        hs, cache = outputs
        d_hs, d_cache = cotangents
        if not isinstance(d_cache.type, DisconnectedType):
            raise NotImplementedError(f"{WHERE}: the cache output is internal and cannot be differentiated")
        grad_op = GRUSequenceGradOp(self.has_mask, self.grad_clipping)
        grads = grad_op(W_hid, h0, *mask, hs, cache, connected_cotangent(d_hs, hs))
        result = [g.astype(x.dtype) for g, x in zip(grads, inputs, strict=False)]
        return result + [disconnected_type() for _ in mask]


class GRUSequenceGradOp(GRUSequenceParams, ShapeInferringOp, GRUBackwardCOp):
    """Cotangents of ``GRUSequenceOp``'s inputs from that of its hs output.

    Inputs: W_hid (H, 3H), h0 (B, H), [mask (T, B)], the forward outputs hs (T, B, H)
    and cache (T, B, 4H), then d_hs (T, B, H). Outputs: d_gate_input (T, B, 3H),
    d_W_hid (H, 3H), d_h0 (B, H). Not differentiable itself (no second derivatives).
    """

    __props__ = GRUSequenceParams.__props__

    def make_node(self, W_hid, h0, *rest):
        expected = 2 + int(self.has_mask) + 3
        if 2 + len(rest) != expected:
            raise TypeError(f"{GRAD_WHERE}: expected {expected} inputs for {self}, got {2 + len(rest)}")
        names = ["W_hid", "h0"] + (["seq_mask"] if self.has_mask else []) + ["hs", "cache", "d_hs"]
        ndims = [2, 2] + ([2] if self.has_mask else []) + [3, 3, 3]
        inputs, dtype = as_float_tensors(GRAD_WHERE, list(zip(names, [W_hid, h0, *rest], strict=True)), ndims)
        W_hid, hs = inputs[0], inputs[-3]
        T, B, H = hs.type.shape
        outputs = [pt.tensor(dtype=dtype, shape=(T, B, None if H is None else 3 * H)), pt.tensor(dtype=dtype, shape=W_hid.type.shape)]
        outputs.append(pt.tensor(dtype=dtype, shape=(B, H)))
        return Apply(self, inputs, outputs)

    def check_shapes(self, W_hid, h0, mask, hs, cache, d_hs):
        """Raise naming the argument when the concrete (or JAX's static) shapes disagree; ``mask``: a list of 0 or 1."""
        T, B, H = hs.shape
        check_runtime(
            GRAD_WHERE,
            [("W_hid", W_hid.shape, (H, 3 * H)), ("h0", h0.shape, (B, H))]
            + [("seq_mask", m.shape, (T, B)) for m in mask]
            + [("cache", cache.shape, (T, B, 4 * H)), ("d_hs", d_hs.shape, (T, B, H))],
            T,
            B,
            H,
        )

    def perform(self, node, inputs, output_storage):
        W_hid, h0, *mask, hs, cache, d_hs = inputs
        self.check_shapes(W_hid, h0, mask, hs, cache, d_hs)
        results = gru_backward(W_hid, h0, mask[0] if mask else None, hs, cache, d_hs, self.grad_clipping, self.has_mask)
        for storage, value, out in zip(output_storage, results, node.outputs, strict=True):
            storage[0] = value.astype(out.dtype, copy=False)

    def output_shapes(self, node, input_shapes):
        T, B, H = input_shapes[-3]
        return [(T, B, 3 * H), tuple(input_shapes[0]), (B, H)]

    def pullback(self, inputs, outputs, cotangents):
        # Second derivatives of the fused GRU are not implemented; PyTensor reports this
        # (with the Op and input) if anyone asks for them.
        return [grad_not_implemented(self, k, x, "second derivatives of gru_sequence") for k, x in enumerate(inputs)]


def gru_sequence(gate_input, W_hid, h0, mask=None, grad_clipping=0.0):
    """Run a GRU with a tanh candidate over a whole sequence in one fused Op.

    Same arithmetic as scanning ``dandelion.module.recurrent.steps.gru_step``: gate
    blocks ``[reset | update | candidate]``, ``grad_clipping`` > 0 clips the gradient
    reaching each step's new state (before the mask), and a masked step carries h
    forward (its gradient passes unclipped).

    Parameters
    ----------
    gate_input : (T, B, 3H)
        The projected input ``x @ W_in + b_in``.
    W_hid : (H, 3H)
    h0 : (B, H)
        State before the first step.
    mask : (T, B), optional
        Where zero, the step is skipped for that sequence.
    grad_clipping : float

    Returns
    -------
    hs : (T, B, H)
        The states after every step; ``hs[-1]`` is the final state.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> hs = gru_sequence(pt.tensor("g", shape=(5, 2, 9)), pt.matrix("W"), pt.matrix("h"))
    >>> hs.type.shape
    (5, 2, 3)
    """
    op = GRUSequenceOp(has_mask=mask is not None, grad_clipping=grad_clipping)
    masks = [] if mask is None else [sequence_mask(WHERE, mask, gate_input)]
    hs, _ = op(gate_input, W_hid, h0, *masks)
    return hs
