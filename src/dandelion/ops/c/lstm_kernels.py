"""The C source of the fused LSTM kernels, generated from ``dandelion.ops.recurrent_cells``.

``support_code()`` is every kernel for both dtypes and both peephole variants: the step
functions (one pass over a (B, 4H) block, the per-unit arithmetic traced from the one cell
definition by ``dandelion.ops.c.trace``) and the drivers that run the loop over time with
one BLAS product per step (``dandelion.ops.c.lstm`` documents the algorithm). The
activations are the NumPy kernel's: the logistic as ``0.5 + 0.5 tanh(x / 2)`` (no
overflow), tanh from libm in float64 and, in float32, the rational approximation the
Numba kernels use (|error| < 3e-8; libm's scalar ``tanhf`` cannot be vectorised and
dominated the step).
"""

from __future__ import annotations

import functools
import zlib

from dandelion.ops.c.blas import gemm_code, pointer_gemm_code
from dandelion.ops.c.lstm_packed import packed_code
from dandelion.ops.c.sequence import fill, helpers_code, math_helpers_code
from dandelion.ops.c.team import team_code
from dandelion.ops.c.trace import CTrace
from dandelion.ops.recurrent_cells import lstm_cell, lstm_cell_backward, lstm_cell_backward_factors

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
/* One step back over all rows and the units [j0, j1). dh, dc (B, H) hold the cotangents from the later
   steps and receive those of the previous states, dh only its pass-through part (the GEMM adds dA @ W_hid^T). */
static void dl_lstm_back_step_@T@_@P@(int B, int H, int j0, int j1, const @T@* gates, const @T@* c_prev_all, const @T@* c_all,
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
            for (int j = j0; j < j1; ++j) {
                dh[o + j] += d_hs[o + j];
                dc[o + j] += d_cs[o + j];
            }
            for (int q = 0; q < 4; ++q) memset(dr + q * H + j0, 0, sizeof(@T@) * (j1 - j0));
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
        for (npy_intp j = j0; j < j1; ++j) {
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
    if (dl_lstm_packed_forward_@T@(T, B, H, gate_input, W, wci, wcf, wco, h0, c0, mask, hs, cs, gates)) return;
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

/* The loop over time of dl_lstm_backward with one BLAS product per step (every dtype, one thread). */
static void dl_lstm_backward_loop_@T@(int T, int B, int H, const @T@* W, const @T@* wci, const @T@* wcf, const @T@* wco,
                                      const @T@* c0, const @T@* mask, const @T@* cs, const @T@* gates, const @T@* d_hs,
                                      const @T@* d_cs, @T@ bound, @T@* d_gate_input, @T@* dwci, @T@* dwcf, @T@* dwco,
                                      @T@* dh, @T@* dc)
{
    const npy_intp step = (npy_intp)B * 4 * H, state = (npy_intp)B * H;
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
            dl_lstm_back_step_@T@_1(B, H, 0, H, gates + t * step, c_prev, cs + t * state, d_hs + t * state, d_cs + t * state,
                                    keep, wci, wcf, wco, bound, dh, dc, da, dwci, dwcf, dwco);
        else
            dl_lstm_back_step_@T@_0(B, H, 0, H, gates + t * step, c_prev, cs + t * state, d_hs + t * state, d_cs + t * state,
                                    keep, wci, wcf, wco, bound, dh, dc, da, dwci, dwcf, dwco);
        dl_lstm_gemm_@T@('N', 'T', B, H, 4 * H, 1, da, 4 * H, W, 4 * H, 1, dh, H);
    }
}

/* Cotangents of the forward inputs from d_hs, d_cs (T, B, H); bound <= 0: no clipping.
   Outputs d_gate_input (T, B, 4H), dW (H, 4H; NULL: not formed), dw* (H,) when the peepholes are given, dh0, dc0 (B, H). */
static void dl_lstm_backward_@T@(int T, int B, int H, const @T@* W, const @T@* wci, const @T@* wcf, const @T@* wco,
                                 const @T@* h0, const @T@* c0, const @T@* mask, const @T@* hs, const @T@* cs,
                                 const @T@* gates, const @T@* d_hs, const @T@* d_cs, double grad_clipping,
                                 @T@* d_gate_input, @T@* dW, @T@* dwci, @T@* dwcf, @T@* dwco, @T@* dh, @T@* dc)
{
    const npy_intp step = (npy_intp)B * 4 * H;
    const @T@ bound = grad_clipping > 0 ? (@T@)grad_clipping : (@T@)HUGE_VAL;
    if (T == 0 || !dl_lstm_packed_backward_@T@(T, B, H, W, wci, wcf, wco, c0, mask, cs, gates, d_hs, d_cs, bound,
                                                d_gate_input, dwci, dwcf, dwco, dh, dc))
        dl_lstm_backward_loop_@T@(T, B, H, W, wci, wcf, wco, c0, mask, cs, gates, d_hs, d_cs, bound,
                                  d_gate_input, dwci, dwcf, dwco, dh, dc);
    if (!dW) return; /* the caller forms dW itself (the JAX backend, in XLA) */
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


def forward_cell(ctype, peephole):
    """Fill values of a forward cell over the C locals a_i .. a_o, c_prev (and w_ci .. w_co), traced from ``lstm_cell``."""
    tr = CTrace(ctype, "v")
    a_i, a_f, a_g, a_o, c_prev = (tr.variable(n) for n in ("a_i", "a_f", "a_g", "a_o", "c_prev"))
    w_ci, w_cf, w_co = (tr.variable(n) for n in _PEEP_NAMES) if peephole else (None,) * 3
    peep_i, peep_f = (c_prev * w_ci, c_prev * w_cf) if peephole else (None, None)
    sigmoid, tanh = tr.function(f"dl_lstm_sigmoid_{ctype}"), tr.function(f"dl_lstm_tanh_{ctype}")
    i, f, g, o, c, h = lstm_cell(a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co, sigmoid, tanh, tanh)
    names = {"I": i.name, "F": f.name, "G": g.name, "O": o.name, "C": c.name, "H": h.name}
    load = fill(_LOAD_PEEP, {"T": ctype}) if peephole else ""
    return {"CELL": tr.code(), "LOAD_PEEP": load, **names}


def forward_step_code(ctype, peephole):
    """The forward step of one dtype over a (B, 4H) block."""
    return fill(fill(_FORWARD_STEP, forward_cell(ctype, peephole)), {"T": ctype, "P": str(int(peephole))})


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
    return fill(fill(_BACKWARD_STEP, body), {"T": ctype, "P": str(int(peephole))})


def _kernels():
    parts = []
    for ctype in ("float", "double"):
        parts += [forward_step_code(ctype, p) for p in (False, True)]
        parts += [backward_step_code(ctype, p) for p in (False, True)]
    parts.append(packed_code({p: forward_cell("float", p) for p in (False, True)}))
    parts += [fill(_DRIVERS, {"T": ctype}) for ctype in ("float", "double")]
    return parts


@functools.cache
def support_code(link):
    """Every kernel, both dtypes and both peephole variants, calling ``link``'s GEMM (one text for every option)."""
    parts = [gemm_code("dl_lstm", link), helpers_code("dl_lstm"), team_code("dl_lstm", f"&{link.sgemm}")]
    return "".join(parts + _kernels())


# The entry points of the kernels built as a library for the Numba backend (``native_code``):
# the signatures of ``dandelion.ops.numba.lstm_cfuncs``'s callbacks, which they replace.
_NATIVE_ENTRIES = """
extern "C" {
/* Teams of threads of their own instead of OpenBLAS's pool (see team_without_pool). */
void dandelion_native_lstm_without_pool(void) { dl_lstm_team_without_pool(); }

/* The size of the last call's thread team, times 10, plus its kind (1: threads of its own, 2: OpenBLAS's, 3: a lent pool). */
int dandelion_native_lstm_last_team(void) { return 10 * dl_lstm_last_team_size + dl_lstm_last_team_kind; }
@ENTRIES@
}
"""

_NATIVE_DTYPE_ENTRIES = """
/* p: [T, B, H, peephole, has_mask]; peep (3, H) and mask (T, B) are passed (zeros, ones) even when unused. */
void dandelion_native_lstm_forward_@T@(const @T@* gi, const @T@* w, const @T@* peep, const @T@* h0, const @T@* c0,
                                       const @T@* mask, @T@* hs, @T@* cs, @T@* gates, const int64_t* p)
{
    const int T = (int)p[0], B = (int)p[1], H = (int)p[2], peephole = p[3] != 0;
    if ((npy_intp)T * B * H == 0) return;
    dl_lstm_forward_@T@(T, B, H, gi, w, peephole ? peep : NULL, peephole ? peep + H : NULL, peephole ? peep + 2 * H : NULL,
                        h0, c0, p[4] ? mask : NULL, hs, cs, gates);
}

void dandelion_native_lstm_backward_@T@(const @T@* w, const @T@* peep, const @T@* h0, const @T@* c0, const @T@* mask,
                                        const @T@* hs, const @T@* cs, const @T@* gates, const @T@* d_hs, const @T@* d_cs,
                                        @T@* d_gi, @T@* d_w, @T@* d_peep, @T@* d_h0, @T@* d_c0, const int64_t* p,
                                        double grad_clipping)
{
    const int T = (int)p[0], B = (int)p[1], H = (int)p[2], peephole = p[3] != 0;
    memset(d_peep, 0, sizeof(@T@) * 3 * H);
    if ((npy_intp)B * H == 0) {
        if (d_w) memset(d_w, 0, sizeof(@T@) * (npy_intp)H * 4 * H);
        return;
    }
    dl_lstm_backward_@T@(T, B, H, w, peephole ? peep : NULL, peephole ? peep + H : NULL, peephole ? peep + 2 * H : NULL,
                         h0, c0, p[4] ? mask : NULL, hs, cs, gates, d_hs, d_cs, grad_clipping, d_gi, d_w,
                         d_peep, d_peep + H, d_peep + 2 * H, d_h0, d_c0);
}
"""


@functools.cache
def native_code():
    """The kernels as a stand-alone C++ library (no Python, NumPy or linked BLAS): its GEMMs are
    the pointers ``dandelion_native_lstm_init`` receives, its entry points the Numba callbacks' signatures."""
    head = "#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\ntypedef ptrdiff_t npy_intp;\n"
    parts = [head, pointer_gemm_code("dl_lstm", "lstm"), math_helpers_code("dl_lstm"), team_code("dl_lstm", "dl_lstm_sgemm")]
    entries = "".join(fill(_NATIVE_DTYPE_ENTRIES, {"T": ctype}) for ctype in ("float", "double"))
    return "".join(parts + _kernels()) + fill(_NATIVE_ENTRIES, {"ENTRIES": entries})


def code_version(link):
    # The kernels are generated from recurrent_cells: a change there must not reuse a cached module.
    return (3, zlib.crc32(support_code(link).encode()), link.sgemm, link.int_type)
