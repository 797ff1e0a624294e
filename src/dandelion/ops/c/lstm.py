"""C code of the fused LSTM Ops (``dandelion.ops.lstm``): the recurrence with one BLAS GEMM per step.

Forward, per step t: the gate pre-activations ``a = gate_input[t] + h_{t-1} @ W_hid``
are formed in place in ``gates[t]`` (a copy of ``gate_input[t]`` with ``sgemm``/``dgemm``
adding the product, beta = 1), then one pass over the (B, 4H) block applies the cell and
overwrites ``a`` with the activations ``i, f, g, o`` the gradient needs. Backward, from
the last step: one pass computes the step's clipped pre-activation cotangents, the cell
cotangent and the peephole sums, then ``dh_{t-1} = dA_t @ W_hid^T`` is one GEMM
(beta = 1 onto the part a masked row passes through). ``dW_hid = H_prev^T dA`` is formed
after the loop over all rows, as ``h0^T dA_0`` plus one GEMM over the other (T - 1) * B.

The per-unit arithmetic is traced from ``dandelion.ops.recurrent_cells``
(``dandelion.ops.c.trace``), with the activations of the NumPy kernel: the logistic as
``0.5 + 0.5 tanh(x / 2)`` (no overflow), tanh from libm in float64 and, in float32, the
rational approximation the Numba kernels use (|error| < 3e-8; libm's scalar ``tanhf``
cannot be vectorised and dominated the step). Without ``blas__ldflags`` the C code
declines and ``perform`` runs the NumPy kernel. The support code is the same for every
option: peepholes and the mask are null pointers when absent, and the clip bound is a
run-time parameter, so each dtype and input layout compiles one module.
"""

from __future__ import annotations

import zlib

from pytensor.link.c.params_type import ParamsType
from pytensor.scalar import float64

from dandelion.ops.c.blas import DECLARATIONS, BlasLinkedCOp, c_type_of, gemm_code, require_blas
from dandelion.ops.c.trace import CTrace
from dandelion.ops.recurrent_cells import lstm_cell, lstm_cell_backward, lstm_cell_backward_factors

GRAD_PARAMS = ParamsType(grad_clipping=float64)

# The float32 tanh of ``dandelion.ops.numba.lstm_kernels.rational_tanh`` (same coefficients).
_ACTIVATIONS = """
static inline float dl_lstm_tanh_float(float x)
{
    x = x > 9.0f ? 9.0f : (x < -9.0f ? -9.0f : x);
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;
}

static inline double dl_lstm_tanh_double(double x) { return tanh(x); }

static inline float dl_lstm_sigmoid_float(float x) { return 0.5f + 0.5f * dl_lstm_tanh_float(0.5f * x); }

static inline double dl_lstm_sigmoid_double(double x) { return 0.5 + 0.5 * dl_lstm_tanh_double(0.5 * x); }

static inline float dl_lstm_clip_float(float x, float b) { return x > b ? b : (x < -b ? -b : x); }

static inline double dl_lstm_clip_double(double x, double b) { return x > b ? b : (x < -b ? -b : x); }

/* Python's repr of a shape tuple, for error messages. */
static void dl_lstm_shape_repr(char* buf, size_t n, int nd, const npy_intp* dims)
{
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int k = 0; k < nd && used < n; ++k)
        used += (size_t)snprintf(buf + used, n - used, k ? ", %ld" : "%ld", (long)dims[k]);
    if (used < n) snprintf(buf + used, n - used, nd == 1 ? ",)" : ")");
}

/* 0 when ``a`` has shape ``expected``; else a ValueError worded as the Ops' ``perform`` words it. */
static int dl_lstm_check_shape(const char* where, const char* argument, PyArrayObject* a, int nd, const npy_intp* expected,
                               npy_intp T, npy_intp B, npy_intp H)
{
    int same = PyArray_NDIM(a) == nd;
    for (int k = 0; same && k < nd; ++k) same = PyArray_DIMS(a)[k] == expected[k];
    if (same) return 0;
    char want[96], got[96];
    dl_lstm_shape_repr(want, sizeof(want), nd, expected);
    dl_lstm_shape_repr(got, sizeof(got), PyArray_NDIM(a), PyArray_DIMS(a));
    PyErr_Format(PyExc_ValueError, "%s: %s must have shape %s (T=%ld, B=%ld, H=%ld), got %s", where, argument, want,
                 (long)T, (long)B, (long)H, got);
    return -1;
}

/* A C-contiguous output of the given shape in *z, reused when it already has it. */
static int dl_lstm_output(PyArrayObject** z, int nd, const npy_intp* dims, int typenum)
{
    int reuse = *z != NULL && PyArray_NDIM(*z) == nd && PyArray_IS_C_CONTIGUOUS(*z) && PyArray_TYPE(*z) == typenum;
    for (int k = 0; reuse && k < nd; ++k) reuse = PyArray_DIMS(*z)[k] == dims[k];
    if (reuse) return 0;
    Py_XDECREF(*z);
    *z = (PyArrayObject*)PyArray_EMPTY(nd, (npy_intp*)dims, typenum, 0);
    return *z ? 0 : -1;
}
"""

_FORWARD_STEP = """
/* One step's cell over all rows: a (B, 4H) holds the pre-activations and receives the gates. */
static void dl_lstm_step_@T@_@P@(int B, int H, @T@* a, const @T@* h_prev, const @T@* c_prev_all,
                                 const @T@* wci, const @T@* wcf, const @T@* wco, const @T@* keep,
                                 @T@* h_out, @T@* c_out)
{
    for (int b = 0; b < B; ++b) {
        @T@* r = a + (npy_intp)b * 4 * H;
        const @T@* hp = h_prev + (npy_intp)b * H;
        const @T@* cp = c_prev_all + (npy_intp)b * H;
        @T@* __restrict__ ho = h_out + (npy_intp)b * H;
        @T@* __restrict__ co = c_out + (npy_intp)b * H;
        @T@* __restrict__ ri = r;
        @T@* __restrict__ rf = r + H;
        @T@* __restrict__ rg = r + 2 * H;
        @T@* __restrict__ ro = r + 3 * H;
#pragma GCC ivdep
        for (npy_intp j = 0; j < H; ++j) {
            const @T@ a_i = ri[j], a_f = rf[j], a_g = rg[j], a_o = ro[j], c_prev = cp[j];
@LOAD_PEEP@
@CELL@
            ri[j] = @I@; rf[j] = @F@; rg[j] = @G@; ro[j] = @O@;
            co[j] = @C@;
            ho[j] = @H@;
        }
        if (keep != NULL && keep[b] == 0) {
            /* a skipped step carries the states over (its gates are computed all the same) */
            memcpy(ho, hp, sizeof(@T@) * H);
            memcpy(co, cp, sizeof(@T@) * H);
        }
    }
}
"""

_BACKWARD_STEP = """
/* One step back over all rows. dh, dc (B, H) hold the cotangents from the later steps and receive
   those of the previous states, dh only its pass-through part (the GEMM adds dA @ W_hid^T). */
static void dl_lstm_back_step_@T@_@P@(int B, int H, const @T@* gates, const @T@* c_prev_all, const @T@* c_all,
                                      const @T@* d_hs, const @T@* d_cs, const @T@* keep,
                                      const @T@* wci, const @T@* wcf, const @T@* wco, @T@ bound,
                                      @T@* dh, @T@* dc, @T@* da, @T@* dwci, @T@* dwcf, @T@* dwco)
{
    for (int b = 0; b < B; ++b) {
        const npy_intp o = (npy_intp)b * H, og = 4 * o;
        const @T@* gr = gates + og;
        @T@* dr = da + og;
        if (keep != NULL && keep[b] == 0) {
            /* a skipped step hands its gradients to the previous state untouched */
            for (int j = 0; j < H; ++j) {
                dh[o + j] += d_hs[o + j];
                dc[o + j] += d_cs[o + j];
            }
            memset(dr, 0, sizeof(@T@) * 4 * H);
            continue;
        }
        @T@* dhr = dh + o;
        @T@* dcr = dc + o;
        const @T@* dhs = d_hs + o;
        const @T@* dcs = d_cs + o;
        const @T@* cpr = c_prev_all + o;
        const @T@* cr = c_all + o;
        const @T@* gi_ = gr;
        const @T@* gf_ = gr + H;
        const @T@* gg_ = gr + 2 * H;
        const @T@* go_ = gr + 3 * H;
        @T@* dri = dr;
        @T@* drf = dr + H;
        @T@* drg = dr + 2 * H;
        @T@* dro = dr + 3 * H;
#pragma GCC ivdep
        for (npy_intp j = 0; j < H; ++j) {
            const @T@ dh_in = dhr[j] + dhs[j], dc_in = dcr[j] + dcs[j];
            const @T@ i = gi_[j], f = gf_[j], g = gg_[j], o_ = go_[j];
            const @T@ c_prev = cpr[j], c = cr[j];
@LOAD_PEEP@
@BACKWARD@
@PEEP_SUMS@
            dri[j] = dl_lstm_clip_@T@(@DA_I@, bound);
            drf[j] = dl_lstm_clip_@T@(@DA_F@, bound);
            drg[j] = dl_lstm_clip_@T@(@DA_G@, bound);
            dro[j] = dl_lstm_clip_@T@(@DA_O@, bound);
            dcr[j] = @DC_PREV@;
            dhr[j] = 0;
        }
    }
}
"""

_DRIVERS = """
/* gate_input (T, B, 4H), W (H, 4H), peepholes (H,) or NULL, h0 and c0 (B, H), mask (T, B) or NULL;
   hs, cs (T, B, H), gates (T, B, 4H). */
static void dl_lstm_forward_@T@(int T, int B, int H, const @T@* gate_input, const @T@* W, const @T@* wci,
                                const @T@* wcf, const @T@* wco, const @T@* h0, const @T@* c0, const @T@* mask,
                                @T@* hs, @T@* cs, @T@* gates)
{
    const npy_intp step = (npy_intp)B * 4 * H, state = (npy_intp)B * H;
    for (int t = 0; t < T; ++t) {
        @T@* a = gates + t * step;
        const @T@* h_prev = t ? hs + (t - 1) * state : h0;
        const @T@* c_prev = t ? cs + (t - 1) * state : c0;
        memcpy(a, gate_input + t * step, sizeof(@T@) * step);
        dl_lstm_gemm_@T@('N', 'N', B, 4 * H, H, 1, h_prev, H, W, 4 * H, 1, a, 4 * H);
        const @T@* keep = mask ? mask + (npy_intp)t * B : NULL;
        if (wci) dl_lstm_step_@T@_1(B, H, a, h_prev, c_prev, wci, wcf, wco, keep, hs + t * state, cs + t * state);
        else dl_lstm_step_@T@_0(B, H, a, h_prev, c_prev, wci, wcf, wco, keep, hs + t * state, cs + t * state);
    }
}

/* Cotangents of the forward inputs from d_hs, d_cs (T, B, H); bound <= 0: no clipping.
   Outputs d_gate_input (T, B, 4H), dW (H, 4H), dw* (H,) when the peepholes are given, dh0, dc0 (B, H). */
static void dl_lstm_backward_@T@(int T, int B, int H, const @T@* W, const @T@* wci, const @T@* wcf, const @T@* wco,
                                 const @T@* h0, const @T@* c0, const @T@* mask, const @T@* hs, const @T@* cs,
                                 const @T@* gates, const @T@* d_hs, const @T@* d_cs, double grad_clipping,
                                 @T@* d_gate_input, @T@* dW, @T@* dwci, @T@* dwcf, @T@* dwco, @T@* dh, @T@* dc)
{
    const npy_intp step = (npy_intp)B * 4 * H, state = (npy_intp)B * H;
    const @T@ bound = grad_clipping > 0 ? (@T@)grad_clipping : (@T@)HUGE_VAL;
    memset(dh, 0, sizeof(@T@) * state);
    memset(dc, 0, sizeof(@T@) * state);
    if (wci) {
        memset(dwci, 0, sizeof(@T@) * H);
        memset(dwcf, 0, sizeof(@T@) * H);
        memset(dwco, 0, sizeof(@T@) * H);
    }
    for (int t = T - 1; t >= 0; --t) {
        const @T@* c_prev = t ? cs + (t - 1) * state : c0;
        const @T@* keep = mask ? mask + (npy_intp)t * B : NULL;
        @T@* da = d_gate_input + t * step;
        if (wci)
            dl_lstm_back_step_@T@_1(B, H, gates + t * step, c_prev, cs + t * state, d_hs + t * state, d_cs + t * state,
                                    keep, wci, wcf, wco, bound, dh, dc, da, dwci, dwcf, dwco);
        else
            dl_lstm_back_step_@T@_0(B, H, gates + t * step, c_prev, cs + t * state, d_hs + t * state, d_cs + t * state,
                                    keep, wci, wcf, wco, bound, dh, dc, da, dwci, dwcf, dwco);
        dl_lstm_gemm_@T@('N', 'T', B, H, 4 * H, 1, da, 4 * H, W, 4 * H, 1, dh, H);
    }
    if (T == 0) {
        memset(dW, 0, sizeof(@T@) * (npy_intp)H * 4 * H);
        return;
    }
    dl_lstm_gemm_@T@('T', 'N', H, 4 * H, B, 1, h0, H, d_gate_input, 4 * H, 0, dW, 4 * H);
    if (T > 1) dl_lstm_gemm_@T@('T', 'N', H, 4 * H, (T - 1) * B, 1, hs, H, d_gate_input + step, 4 * H, 1, dW, 4 * H);
}
"""

_PEEP_NAMES = ("w_ci", "w_cf", "w_co")
_LOAD_PEEP = "            const @T@ w_ci = wci[j], w_cf = wcf[j], w_co = wco[j];"


def _fill(template, values):
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


def forward_step_code(ctype, peephole):
    """The forward step of one dtype, with the cell traced from ``recurrent_cells.lstm_cell``."""
    tr = CTrace(ctype, "v")
    a_i, a_f, a_g, a_o, c_prev = (tr.variable(n) for n in ("a_i", "a_f", "a_g", "a_o", "c_prev"))
    w_ci, w_cf, w_co = (tr.variable(n) for n in _PEEP_NAMES) if peephole else (None,) * 3
    peep_i, peep_f = (c_prev * w_ci, c_prev * w_cf) if peephole else (None, None)
    sigmoid, tanh = tr.function(f"dl_lstm_sigmoid_{ctype}"), tr.function(f"dl_lstm_tanh_{ctype}")
    i, f, g, o, c, h = lstm_cell(a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co, sigmoid, tanh, tanh)
    names = {"I": i.name, "F": f.name, "G": g.name, "O": o.name, "C": c.name, "H": h.name}
    body = {"CELL": tr.code(), "LOAD_PEEP": _LOAD_PEEP if peephole else "", **names}
    return _fill(_fill(_FORWARD_STEP, body), {"T": ctype, "P": str(int(peephole))})


def backward_step_code(ctype, peephole):
    """The backward step, traced from ``lstm_cell_backward_factors`` and ``lstm_cell_backward``."""
    tr = CTrace(ctype, "u")
    i, f, g, o, c_prev, c, dh_in, dc_in = (tr.variable(n) for n in ("i", "f", "g", "o_", "c_prev", "c", "dh_in", "dc_in"))
    weights = tuple(tr.variable(n) for n in _PEEP_NAMES) if peephole else (None,) * 3
    factors = lstm_cell_backward_factors(i, f, g, o, c_prev, c, tr.function(f"dl_lstm_tanh_{ctype}"))
    da_i, da_f, da_g, da_o, dc_prev = lstm_cell_backward(dh_in, dc_in, *factors, f, *weights)
    # the peepholes' gradients take the unclipped cotangents, as the NumPy kernel's do
    sums = (
        f"            dwci[j] += {da_i.name} * c_prev; dwcf[j] += {da_f.name} * c_prev; dwco[j] += {da_o.name} * c;"
        if peephole
        else ""
    )
    body = {"BACKWARD": tr.code(), "LOAD_PEEP": _LOAD_PEEP if peephole else "", "PEEP_SUMS": sums}
    body.update(DA_I=da_i.name, DA_F=da_f.name, DA_G=da_g.name, DA_O=da_o.name, DC_PREV=dc_prev.name)
    return _fill(_fill(_BACKWARD_STEP, body), {"T": ctype, "P": str(int(peephole))})


def support_code():
    """Every kernel, both dtypes and both peephole variants (one text for every option)."""
    parts = [DECLARATIONS, gemm_code("dl_lstm"), _ACTIVATIONS]
    for ctype in ("float", "double"):
        parts += [forward_step_code(ctype, p) for p in (False, True)]
        parts += [backward_step_code(ctype, p) for p in (False, True)]
        parts.append(_fill(_DRIVERS, {"T": ctype}))
    return "".join(parts)


SUPPORT_CODE = support_code()
# The kernels are generated from recurrent_cells: a change there must not reuse a cached module.
C_CODE_VERSION = (1, zlib.crc32(SUPPORT_CODE.encode()))


def _arrays_block(where, named, body, fail):
    """C that takes C-contiguous views of ``named`` [(argument, C variable)], runs ``body`` and releases them.

    ``body`` sets ``err`` to nonzero on failure (a Python error set).
    """
    n = len(named)
    sources = ", ".join(var for _, var in named)
    return f"""
    {{
    PyArrayObject* src_[{n}] = {{{sources}}};
    PyArrayObject* in_[{n}] = {{NULL}};
    int err = 0;
    for (int k = 0; k < {n} && !err; ++k) {{
        in_[k] = PyArray_GETCONTIGUOUS(src_[k]);
        if (!in_[k]) err = 1;
    }}
    if (!err) {{
    {body}
    }}
    for (int k = 0; k < {n}; ++k) Py_XDECREF(in_[k]);
    if (err) {{ {fail} }}
    }}
    """


def _checks(where, shapes):
    """C checks of ``[(argument, input index, expected dims as C expressions)]``."""
    lines = []
    for argument, k, dims in shapes:
        lines.append(
            f"if (!err) {{ npy_intp e_[{len(dims)}] = {{{', '.join(dims)}}}; "
            f'err = dl_lstm_check_shape("{where}", "{argument}", in_[{k}], {len(dims)}, e_, T, B, H); }}'
        )
    return "\n    ".join(lines)


def _data(k, ctype):
    return f"(const {ctype}*)PyArray_DATA(in_[{k}])"


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
    peep = [_data(2 + k, ctype) for k in range(3)] if n_peep else ["NULL"] * 3
    mask = _data(4 + n_peep, ctype) if op.has_mask else "NULL"
    hs, cs, gates = outputs
    body = f"""
    npy_intp T = PyArray_NDIM(in_[0]) == 3 ? PyArray_DIMS(in_[0])[0] : 0;
    npy_intp B = PyArray_NDIM(in_[0]) == 3 ? PyArray_DIMS(in_[0])[1] : 0;
    npy_intp H = PyArray_NDIM(in_[1]) == 2 ? PyArray_DIMS(in_[1])[0] : 0;
    {_checks(where, shapes)}
    npy_intp d_state[3] = {{T, B, H}}, d_gates[3] = {{T, B, 4 * H}};
    if (!err) err = dl_lstm_output(&{hs}, 3, d_state, {typenum}) || dl_lstm_output(&{cs}, 3, d_state, {typenum})
                    || dl_lstm_output(&{gates}, 3, d_gates, {typenum});
    if (!err && T * B * H > 0)
        dl_lstm_forward_{ctype}((int)T, (int)B, (int)H, {_data(0, ctype)}, {_data(1, ctype)}, {', '.join(peep)},
                                {_data(2 + n_peep, ctype)}, {_data(3 + n_peep, ctype)}, {mask},
                                ({ctype}*)PyArray_DATA({hs}), ({ctype}*)PyArray_DATA({cs}), ({ctype}*)PyArray_DATA({gates}));
    """
    return _arrays_block(where, list(zip(names, inputs, strict=True)), body, sub["fail"])


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
    peep = [_data(1 + k, ctype) for k in range(3)] if n_peep else ["NULL"] * 3
    mask = _data(k_h0 + 2, ctype) if m else "NULL"
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
    {_checks(where, shapes)}
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
            dl_lstm_backward_{ctype}((int)T, (int)B, (int)H, {_data(0, ctype)}, {', '.join(peep)},
                                     {_data(k_h0, ctype)}, {_data(k_h0 + 1, ctype)}, {mask},
                                     {', '.join(_data(k_hs + k, ctype) for k in range(5))}, {sub["params"]}->grad_clipping,
                                     ({ctype}*)PyArray_DATA({d_gi}), ({ctype}*)PyArray_DATA({d_W}), {', '.join(out_peep)},
                                     ({ctype}*)PyArray_DATA({d_h0}), ({ctype}*)PyArray_DATA({d_c0}));
        }}
    }}
    """
    return _arrays_block(where, list(zip(names, inputs, strict=True)), body, sub["fail"])


class LSTMCOp(BlasLinkedCOp):
    """Support code, cache version and link flags shared by the two LSTM Ops' C code."""

    def c_support_code(self, **kwargs):
        require_blas(type(self).__name__)
        return SUPPORT_CODE

    def c_code_cache_version(self):
        return C_CODE_VERSION

    def c_headers(self, **kwargs):
        return ["<math.h>", "<string.h>", "<stdio.h>"]


class LSTMForwardCOp(LSTMCOp):
    """``LSTMSequenceOp``'s C implementation."""

    def c_code(self, node, name, inputs, outputs, sub):
        return forward_c_code(self, "lstm_sequence", node, inputs, outputs, sub)


class LSTMBackwardCOp(LSTMCOp):
    """``LSTMSequenceGradOp``'s C implementation; the clip bound is a run-time parameter."""

    params_type = GRAD_PARAMS

    def get_params(self, node):
        return self.params_type.get_params(grad_clipping=float(self.grad_clipping))

    def c_code(self, node, name, inputs, outputs, sub):
        return backward_c_code(self, "lstm_sequence_grad", node, inputs, outputs, sub)
