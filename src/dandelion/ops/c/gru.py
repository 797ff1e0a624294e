"""C code of the fused GRU Ops (``dandelion.ops.gru``): the recurrence with one BLAS GEMM per step.

Forward, per step t: ``h_{t-1} @ W_hid`` is one GEMM into the first 3H columns of the
step's (B, 4H) cache block, then one pass over the block applies the cell and leaves
``[r | u | candidate | c_h]`` there for the gradient. Backward, from the last step: one
pass computes the step's cotangents (the clip applies to the cotangent reaching the new
state, before the mask) of the gate input and of ``h_{t-1} @ W_hid``, then
``dh_{t-1} += d_hid_t @ W_hid^T`` is one GEMM. ``dW_hid = H_prev^T d_hid`` is formed after
the loop over all rows, as ``h0^T d_hid_0`` plus one GEMM over the other (T - 1) * B.

The kernels' source is ``dandelion.ops.c.gru_kernels`` (generated from the one cell
definition); this module wraps them in the Ops' ``c_code``. Without a BLAS to link
(``dandelion.ops.c.blas``) the C code declines and ``perform`` runs the NumPy kernel. The
mask is a null pointer when absent and the clip bound a run-time parameter, so each
dtype and input layout compiles one module per Op.
"""

from __future__ import annotations

from dandelion.ops.c import gru_kernels
from dandelion.ops.c.blas import c_type_of, require_blas
from dandelion.ops.c.sequence import ClipBoundParams, SequenceCOp, arrays_block, data_pointer, shape_checks


def forward_c_code(op, where, node, inputs, outputs, sub):
    """C of ``GRUSequenceOp``: inputs gate_input, W_hid, h0, [mask]."""
    require_blas(where)
    ctype = c_type_of(where, [v.dtype for v in node.inputs + node.outputs])
    typenum = node.outputs[0].type.dtype_specs()[2]
    names = ["gate_input", "W_hid", "h0"] + (["seq_mask"] if op.has_mask else [])
    shapes = [("W_hid", 1, ["H", "3 * H"]), ("gate_input", 0, ["T", "B", "3 * H"]), ("h0", 2, ["B", "H"])]
    shapes += [("seq_mask", 3, ["T", "B"])] if op.has_mask else []
    mask = data_pointer(3, ctype) if op.has_mask else "NULL"
    hs, cache = outputs
    body = f"""
    npy_intp T = PyArray_NDIM(in_[0]) == 3 ? PyArray_DIMS(in_[0])[0] : 0;
    npy_intp B = PyArray_NDIM(in_[0]) == 3 ? PyArray_DIMS(in_[0])[1] : 0;
    npy_intp H = PyArray_NDIM(in_[1]) == 2 ? PyArray_DIMS(in_[1])[0] : 0;
    {shape_checks("dl_gru", where, shapes)}
    npy_intp d_state[3] = {{T, B, H}}, d_cache[3] = {{T, B, 4 * H}};
    if (!err) err = dl_gru_output(&{hs}, 3, d_state, {typenum}) || dl_gru_output(&{cache}, 3, d_cache, {typenum});
    if (!err && T * B * H > 0)
        dl_gru_forward_{ctype}((int)T, (int)B, (int)H, {data_pointer(0, ctype)}, {data_pointer(1, ctype)},
                               {data_pointer(2, ctype)}, {mask}, ({ctype}*)PyArray_DATA({hs}), ({ctype}*)PyArray_DATA({cache}));
    """
    return arrays_block(list(zip(names, inputs, strict=True)), body, sub["fail"])


def backward_c_code(op, where, node, inputs, outputs, sub):
    """C of ``GRUSequenceGradOp``: W_hid, h0, [mask], hs, cache, d_hs."""
    require_blas(where)
    ctype = c_type_of(where, [v.dtype for v in node.inputs + node.outputs])
    typenum = node.outputs[0].type.dtype_specs()[2]
    m = int(op.has_mask)
    k_hs = 2 + m
    names = ["W_hid", "h0"] + (["seq_mask"] if m else []) + ["hs", "cache", "d_hs"]
    shapes = [("W_hid", 0, ["H", "3 * H"]), ("h0", 1, ["B", "H"])]
    shapes += [("seq_mask", 2, ["T", "B"])] if m else []
    shapes += [("cache", k_hs + 1, ["T", "B", "4 * H"]), ("d_hs", k_hs + 2, ["T", "B", "H"])]
    mask = data_pointer(2, ctype) if m else "NULL"
    d_gi, d_W, d_h0 = outputs
    body = f"""
    npy_intp T = PyArray_NDIM(in_[{k_hs}]) == 3 ? PyArray_DIMS(in_[{k_hs}])[0] : 0;
    npy_intp B = PyArray_NDIM(in_[{k_hs}]) == 3 ? PyArray_DIMS(in_[{k_hs}])[1] : 0;
    npy_intp H = PyArray_NDIM(in_[{k_hs}]) == 3 ? PyArray_DIMS(in_[{k_hs}])[2] : 0;
    if (PyArray_NDIM(in_[{k_hs}]) != 3) {{
        PyErr_Format(PyExc_ValueError, "{where}: hs must have ndim 3 (T, B, H), got ndim %d", PyArray_NDIM(in_[{k_hs}]));
        err = 1;
    }}
    {shape_checks("dl_gru", where, shapes)}
    npy_intp d_gates[3] = {{T, B, 3 * H}}, d_w[2] = {{H, 3 * H}}, d_st[2] = {{B, H}};
    if (!err) err = dl_gru_output(&{d_gi}, 3, d_gates, {typenum}) || dl_gru_output(&{d_W}, 2, d_w, {typenum})
                    || dl_gru_output(&{d_h0}, 2, d_st, {typenum});
    if (!err) {{
        if (B * H == 0) {{
            /* nothing to recur over; every gradient is zero (or empty) */
            memset(PyArray_DATA({d_W}), 0, PyArray_NBYTES({d_W}));
            memset(PyArray_DATA({d_h0}), 0, PyArray_NBYTES({d_h0}));
        }} else {{
            /* scratch for the cotangents of h_prev @ W_hid, which dW_hid is formed from */
            {ctype}* d_hid = ({ctype}*)malloc(sizeof({ctype}) * (size_t)(T * B * 3 * H + 1));
            if (!d_hid) {{
                PyErr_NoMemory();
                err = 1;
            }} else {{
                dl_gru_backward_{ctype}((int)T, (int)B, (int)H, {data_pointer(0, ctype)}, {data_pointer(1, ctype)}, {mask},
                                        {', '.join(data_pointer(k_hs + k, ctype) for k in range(3))}, {sub["params"]}->grad_clipping,
                                        ({ctype}*)PyArray_DATA({d_gi}), ({ctype}*)PyArray_DATA({d_W}),
                                        ({ctype}*)PyArray_DATA({d_h0}), d_hid);
                free(d_hid);
            }}
        }}
    }}
    """
    return arrays_block(list(zip(names, inputs, strict=True)), body, sub["fail"])


class GRUCOp(SequenceCOp):
    """The kernels of the two GRU Ops' C code."""

    kernels = gru_kernels
    kernel_headers = SequenceCOp.kernel_headers + ("<stdlib.h>",)  # malloc of the backward's scratch


class GRUForwardCOp(GRUCOp):
    """``GRUSequenceOp``'s C implementation."""

    def c_code(self, node, name, inputs, outputs, sub):
        return forward_c_code(self, "gru_sequence", node, inputs, outputs, sub)


class GRUBackwardCOp(ClipBoundParams, GRUCOp):
    """``GRUSequenceGradOp``'s C implementation; the clip bound is a run-time parameter."""

    def c_code(self, node, name, inputs, outputs, sub):
        return backward_c_code(self, "gru_sequence_grad", node, inputs, outputs, sub)
