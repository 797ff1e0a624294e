"""The CTC Op family: the CTC forward recursion in log space (``CTCForwardOp``) and its gradient Op.

An Op rather than a ``scan`` graph: the recursion is a tight loop that each backend
runs natively (a vectorised NumPy loop over frames for the C backend in ``ctc_numpy``,
a Numba kernel in ``numba/ctc.py``, ``jax.lax.scan`` in ``jax/ctc.py``), and a compiled
scan with its gradient costs a minute of compilation per graph on the C and Numba
backends. Users call ``dandelion.objective.ctc_cost_logscale``.

Notation (Graves et al. 2006, section 4.1): the extended label sequence ``l'`` has
``S = 2L + 1`` states (blanks around and between labels); ``alpha[t, s]`` is the log
probability of the frames up to ``t`` ending in state ``s``; ``beta[t, s]`` that of the
frames after ``t`` given state ``s`` at ``t``. Then ``d log p / d log y[t, l'_s]`` sums
``exp(alpha[t, s] + beta[t, s] - log p)`` over the states showing that class (eq. 16).
Frames whose ``valid`` flag is 0 are skipped: both variables carry over unchanged.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply

from dandelion._compat import ShapeInferringOp
from dandelion.ops import ctc_numpy


class CTCForwardOp(ShapeInferringOp):
    """(log_probs (B,T,K), extended (B,S) int, skip_ok (B,S) int8, lengths (B,) int, valid (B,T) int8) -> loglik (B,)."""

    __props__ = ()

    def make_node(self, log_probs, extended, skip_ok, lengths, valid):
        inputs = [pt.as_tensor_variable(v) for v in (log_probs, extended, skip_ok, lengths, valid)]
        log_probs = inputs[0]
        return Apply(self, inputs, [pt.tensor(dtype=log_probs.dtype, shape=(log_probs.type.shape[0],))])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = ctc_numpy.forward_numpy(*inputs)[1]

    def output_shapes(self, node, input_shapes):
        return [(input_shapes[0][0],)]

    def connection_pattern(self, node):
        return [[True], [False], [False], [False], [False]]

    def pullback(self, inputs, outputs, cotangents):
        (g_loglik,) = cotangents
        g_log_probs = ctc_forward_grad(*inputs, g_loglik)
        return [g_log_probs] + [disconnected_type() for _ in inputs[1:]]


class CTCForwardGradOp(ShapeInferringOp):
    """Gradient of ``CTCForwardOp``: (its inputs, output cotangent (B,)) -> (B, T, K)."""

    __props__ = ()

    def make_node(self, log_probs, extended, skip_ok, lengths, valid, output_grad):
        inputs = [pt.as_tensor_variable(v) for v in (log_probs, extended, skip_ok, lengths, valid, output_grad)]
        inputs[5] = pt.cast(inputs[5], inputs[0].dtype)
        return Apply(self, inputs, [inputs[0].type()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = ctc_numpy.gradient_numpy(*inputs)

    def output_shapes(self, node, input_shapes):
        return [input_shapes[0]]


ctc_forward = CTCForwardOp()
ctc_forward_grad = CTCForwardGradOp()
