"""C code of the fused LSTM Ops (``dandelion.ops.lstm``).

float32 runs on a thread team with ``W_hid`` packed once per call
(``dandelion.ops.c.lstm_packed``); float64, and float32 when its buffers cannot be
allocated, runs the recurrence with one BLAS GEMM per step described here.

Forward, per step t: the gate pre-activations ``a = gate_input[t] + h_{t-1} @ W_hid``
are formed in place in ``gates[t]`` (a copy of ``gate_input[t]`` with ``sgemm``/``dgemm``
adding the product, beta = 1), then one pass over the (B, 4H) block applies the cell and
overwrites ``a`` with the activations ``i, f, g, o`` the gradient needs. Backward, from
the last step: one pass computes the step's clipped pre-activation cotangents, the cell
cotangent and the peephole sums, then ``dh_{t-1} = dA_t @ W_hid^T`` is one GEMM
(beta = 1 onto the part a masked row passes through). ``dW_hid = H_prev^T dA`` is formed
after the loop over all rows, as ``h0^T dA_0`` plus one GEMM over the other (T - 1) * B.

The kernels' source is ``dandelion.ops.c.lstm_kernels`` (generated from the one cell
definition); this module wraps them in the Ops' ``c_code``. Without a BLAS to link
(``dandelion.ops.c.blas``) the C code declines and ``perform`` runs the NumPy kernel. The support code is the same for
every option: peepholes and the mask are null pointers when absent, and the clip bound is
a run-time parameter, so each dtype and input layout compiles one module per Op.
"""

from __future__ import annotations

from dandelion.ops.c import lstm_kernels
from dandelion.ops.c.blas import c_type_of, require_blas
from dandelion.ops.c.sequence import ClipBoundParams, SequenceCOp, arrays_block, data_pointer, shape_checks


def forward_c_code(op, where, node, inputs, outputs, sub):
    """C of ``LSTMSequenceOp``: inputs gate_input, W_hid, [3 peepholes], h0, c0, [mask]."""
    require_blas(where)
    ctype = c_type_of(where, [v.dtype for v in node.inputs + node.outputs])
    typenum = node.outputs[0].type.dtype_specs()[2]
    n_peep = op.n_peep()
    names = ["gate_input", "W_hid", *(f"peephole {k}" for k in range(n_peep)), "h0", "c0"]
    names += ["seq_mask"] if op.has_mask else []
    state = ["B", "H"]
    shapes = [("W_hid", 1, ["H", "4 * H"]), ("gate_input", 0, ["T", "B", "4 * H"])]
    shapes += [("h0", 2 + n_peep, state), ("c0", 3 + n_peep, state)]
    shapes += [(f"peephole {k}", 2 + k, ["H"]) for k in range(n_peep)]
    shapes += [("seq_mask", 4 + n_peep, ["T", "B"])] if op.has_mask else []
    peep = [data_pointer(2 + k, ctype) for k in range(3)] if n_peep else ["NULL"] * 3
    mask = data_pointer(4 + n_peep, ctype) if op.has_mask else "NULL"
    hs, cs, gates = outputs
    body = f"""
    npy_intp T = PyArray_NDIM(in_[0]) == 3 ? PyArray_DIMS(in_[0])[0] : 0;
    npy_intp B = PyArray_NDIM(in_[0]) == 3 ? PyArray_DIMS(in_[0])[1] : 0;
    npy_intp H = PyArray_NDIM(in_[1]) == 2 ? PyArray_DIMS(in_[1])[0] : 0;
    {shape_checks("dl_lstm", where, shapes)}
    npy_intp d_state[3] = {{T, B, H}}, d_gates[3] = {{T, B, 4 * H}};
    if (!err) err = dl_lstm_output(&{hs}, 3, d_state, {typenum}) || dl_lstm_output(&{cs}, 3, d_state, {typenum})
                    || dl_lstm_output(&{gates}, 3, d_gates, {typenum});
    if (!err && T * B * H > 0)
        dl_lstm_forward_{ctype}((int)T, (int)B, (int)H, {data_pointer(0, ctype)}, {data_pointer(1, ctype)}, {', '.join(peep)},
                                {data_pointer(2 + n_peep, ctype)}, {data_pointer(3 + n_peep, ctype)}, {mask},
                                ({ctype}*)PyArray_DATA({hs}), ({ctype}*)PyArray_DATA({cs}), ({ctype}*)PyArray_DATA({gates}));
    """
    return arrays_block(list(zip(names, inputs, strict=True)), body, sub["fail"])


def backward_c_code(op, where, node, inputs, outputs, sub):
    """C of ``LSTMSequenceGradOp``: W_hid, [3 peepholes], h0, c0, [mask], hs, cs, gates, d_hs, d_cs."""
    require_blas(where)
    ctype = c_type_of(where, [v.dtype for v in node.inputs + node.outputs])
    typenum = node.outputs[0].type.dtype_specs()[2]
    n_peep = op.n_peep()
    m = int(op.has_mask)
    k_h0 = 1 + n_peep
    k_hs = k_h0 + 2 + m
    names = ["W_hid", *(f"peephole {k}" for k in range(n_peep)), "h0", "c0"] + (["seq_mask"] if m else [])
    names += ["hs", "cs", "gates", "d_hs", "d_cs"]
    state, seq = ["B", "H"], ["T", "B", "H"]
    shapes = [("W_hid", 0, ["H", "4 * H"]), ("h0", k_h0, state), ("c0", k_h0 + 1, state)]
    shapes += [(f"peephole {k}", 1 + k, ["H"]) for k in range(n_peep)]
    shapes += [("seq_mask", k_h0 + 2, ["T", "B"])] if m else []
    shapes += [("cs", k_hs + 1, seq), ("gates", k_hs + 2, ["T", "B", "4 * H"])]
    shapes += [("d_hs", k_hs + 3, seq), ("d_cs", k_hs + 4, seq)]
    peep = [data_pointer(1 + k, ctype) for k in range(3)] if n_peep else ["NULL"] * 3
    mask = data_pointer(k_h0 + 2, ctype) if m else "NULL"
    d_gi, d_W, *rest = outputs
    d_peep, (d_h0, d_c0) = rest[:n_peep], rest[n_peep:]
    allocate = [(d_gi, "d_gates"), (d_W, "d_w")] + [(z, "d_vec") for z in d_peep] + [(d_h0, "d_st"), (d_c0, "d_st")]
    allocations = " || ".join(f"dl_lstm_output(&{z}, {dims}_nd, {dims}, {typenum})" for z, dims in allocate)
    out_peep = [f"({ctype}*)PyArray_DATA({z})" for z in d_peep] if n_peep else ["NULL"] * 3
    body = f"""
    npy_intp T = PyArray_NDIM(in_[{k_hs}]) == 3 ? PyArray_DIMS(in_[{k_hs}])[0] : 0;
    npy_intp B = PyArray_NDIM(in_[{k_hs}]) == 3 ? PyArray_DIMS(in_[{k_hs}])[1] : 0;
    npy_intp H = PyArray_NDIM(in_[{k_hs}]) == 3 ? PyArray_DIMS(in_[{k_hs}])[2] : 0;
    if (PyArray_NDIM(in_[{k_hs}]) != 3) {{
        PyErr_Format(PyExc_ValueError, "{where}: hs must have ndim 3 (T, B, H), got ndim %d", PyArray_NDIM(in_[{k_hs}]));
        err = 1;
    }}
    {shape_checks("dl_lstm", where, shapes)}
    npy_intp d_gates[3] = {{T, B, 4 * H}}, d_w[2] = {{H, 4 * H}}, d_vec[1] = {{H}}, d_st[2] = {{B, H}};
    const int d_gates_nd = 3, d_w_nd = 2, d_vec_nd = 1, d_st_nd = 2;
    if (!err) err = {allocations};
    if (!err) {{
        if (B * H == 0) {{
            /* nothing to recur over; every gradient is zero (or empty) */
            memset(PyArray_DATA({d_W}), 0, PyArray_NBYTES({d_W}));
            {" ".join(f"memset(PyArray_DATA({z}), 0, PyArray_NBYTES({z}));" for z in d_peep)}
            memset(PyArray_DATA({d_h0}), 0, PyArray_NBYTES({d_h0}));
            memset(PyArray_DATA({d_c0}), 0, PyArray_NBYTES({d_c0}));
        }} else {{
            dl_lstm_backward_{ctype}((int)T, (int)B, (int)H, {data_pointer(0, ctype)}, {', '.join(peep)},
                                     {data_pointer(k_h0, ctype)}, {data_pointer(k_h0 + 1, ctype)}, {mask},
                                     {', '.join(data_pointer(k_hs + k, ctype) for k in range(5))}, {sub["params"]}->grad_clipping,
                                     ({ctype}*)PyArray_DATA({d_gi}), ({ctype}*)PyArray_DATA({d_W}), {', '.join(out_peep)},
                                     ({ctype}*)PyArray_DATA({d_h0}), ({ctype}*)PyArray_DATA({d_c0}));
        }}
    }}
    """
    return arrays_block(list(zip(names, inputs, strict=True)), body, sub["fail"])


class LSTMCOp(SequenceCOp):
    """The kernels of the two LSTM Ops' C code (float32 on a thread team: ``lstm_packed``)."""

    kernels = lstm_kernels
    kernel_headers = SequenceCOp.kernel_headers + ("<stdlib.h>", "<pthread.h>", "<sched.h>", "<dlfcn.h>")

    def c_compile_args(self, **kwargs):
        return [*super().c_compile_args(**kwargs), "-pthread"]

    def c_libraries(self, **kwargs):
        return [*super().c_libraries(**kwargs), "pthread", "dl"]


class LSTMForwardCOp(LSTMCOp):
    """``LSTMSequenceOp``'s C implementation."""

    def c_code(self, node, name, inputs, outputs, sub):
        return forward_c_code(self, "lstm_sequence", node, inputs, outputs, sub)


class LSTMBackwardCOp(ClipBoundParams, LSTMCOp):
    """``LSTMSequenceGradOp``'s C implementation; the clip bound is a run-time parameter."""

    def c_code(self, node, name, inputs, outputs, sub):
        return backward_c_code(self, "lstm_sequence_grad", node, inputs, outputs, sub)
