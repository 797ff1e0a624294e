"""The C source of the fused GRU kernels, generated from ``dandelion.ops.recurrent_cells``.

``support_code(link)`` is every kernel for both dtypes: the step functions (one pass over
a (B, 4H) block, the per-unit arithmetic traced from the one cell definition by
``dandelion.ops.c.trace``) and the drivers that run the loop over time with one BLAS
product per step (``dandelion.ops.c.gru`` documents the algorithm). The activations are
those of the LSTM kernels (``dandelion.ops.c.sequence``). ``native_code()`` is the same
kernels as a stand-alone library, for the Numba backend (``numba/gru_cfuncs``) and JAX on
CPU (``jax/gru_native``).
"""

from __future__ import annotations

import functools
import zlib

from dandelion.ops.c.blas import gemm_code, pointer_gemm_code
from dandelion.ops.c.sequence import fill, helpers_code, math_helpers_code
from dandelion.ops.c.trace import CTrace
from dandelion.ops.recurrent_cells import gru_cell, gru_cell_backward, gru_cell_backward_factors

_FORWARD_STEP = """
/* One step's cell over all rows. z (B, 4H) holds h_prev @ W_hid in its first 3H columns and
   receives [r | u | candidate | c_h]; g (B, 3H) is the step's gate input. */
static void dl_gru_step_@T@(int B, int H, const @T@* g, @T@* z, const @T@* h_prev, const @T@* keep, @T@* h_out)
{
    for (int b = 0; b < B; ++b) {
        const @T@* gr = g + (npy_intp)b * 3 * H;
        const @T@* hp = h_prev + (npy_intp)b * H;
        @T@* __restrict__ ho = h_out + (npy_intp)b * H;
        @T@* __restrict__ zr = z + (npy_intp)b * 4 * H;
        @T@* __restrict__ zu = zr + H;
        @T@* __restrict__ zc = zr + 2 * H;
        @T@* __restrict__ zk = zr + 3 * H;
#pragma GCC ivdep
        for (npy_intp j = 0; j < H; ++j) {
            const @T@ r_x = gr[j], u_x = gr[H + j], c_x = gr[2 * H + j];
            const @T@ r_h = zr[j], u_h = zu[j], c_h = zc[j], h_prev = hp[j];
@CELL@
            zr[j] = @R@; zu[j] = @U@; zc[j] = @C@; zk[j] = c_h;
            ho[j] = @H@;
        }
        if (keep != NULL && keep[b] == 0) {
            /* a skipped step carries the state over (its cache is computed all the same) */
            memcpy(ho, hp, sizeof(@T@) * H);
        }
    }
}
"""

_BACKWARD_STEP = """
/* One step back over all rows. dh (B, H) holds the cotangent reaching the step's state and
   receives the part of h_prev's that does not pass through W_hid (the GEMM adds the rest). */
static void dl_gru_back_step_@T@(int B, int H, const @T@* cache, const @T@* h_prev_all, const @T@* d_hs,
                                 const @T@* keep, @T@ bound, @T@* dh, @T@* d_gi, @T@* d_hid)
{
    for (int b = 0; b < B; ++b) {
        const npy_intp o = (npy_intp)b * H;
        @T@* dhr = dh + o;
        const @T@* dhs = d_hs + o;
        @T@* dgr = d_gi + 3 * o;
        @T@* dzr = d_hid + 3 * o;
        if (keep != NULL && keep[b] == 0) {
            /* a skipped step hands its cotangent to the previous state untouched */
            for (int j = 0; j < H; ++j) dhr[j] += dhs[j];
            memset(dgr, 0, sizeof(@T@) * 3 * H);
            memset(dzr, 0, sizeof(@T@) * 3 * H);
            continue;
        }
        const @T@* cr = cache + 4 * o;
        const @T@* cu = cr + H;
        const @T@* cc = cr + 2 * H;
        const @T@* ck = cr + 3 * H;
        const @T@* hp = h_prev_all + o;
#pragma GCC ivdep
        for (npy_intp j = 0; j < H; ++j) {
            const @T@ dh_in = dl_gru_clip_@T@(dhr[j] + dhs[j], bound);
            const @T@ r = cr[j], u = cu[j], candidate = cc[j], c_h = ck[j], h_prev = hp[j];
@BACKWARD@
            dgr[j] = @DA_R@; dgr[H + j] = @DA_U@; dgr[2 * H + j] = @DA_C@;
            dzr[j] = @DA_R@; dzr[H + j] = @DA_U@; dzr[2 * H + j] = @DC_H@;
            dhr[j] = @DH_DIRECT@;
        }
    }
}
"""

_DRIVERS = """
/* gate_input (T, B, 3H), W (H, 3H), h0 (B, H), mask (T, B) or NULL; hs (T, B, H), cache (T, B, 4H). */
static void dl_gru_forward_@T@(int T, int B, int H, const @T@* gate_input, const @T@* W, const @T@* h0,
                               const @T@* mask, @T@* hs, @T@* cache)
{
    const npy_intp step = (npy_intp)B * 4 * H, state = (npy_intp)B * H;
    for (int t = 0; t < T; ++t) {
        @T@* z = cache + t * step;
        const @T@* h_prev = t ? hs + (t - 1) * state : h0;
        /* h_prev @ W into the first 3H columns of the step's (B, 4H) cache block */
        dl_gru_gemm_@T@('N', 'N', B, 3 * H, H, 1, h_prev, H, W, 3 * H, 0, z, 4 * H);
        const @T@* keep = mask ? mask + (npy_intp)t * B : NULL;
        dl_gru_step_@T@(B, H, gate_input + (npy_intp)t * B * 3 * H, z, h_prev, keep, hs + t * state);
    }
}

/* Cotangents of the forward inputs from d_hs (T, B, H); bound <= 0: no clipping. d_hid (T, B, 3H) is
   scratch: the cotangents of h_prev @ W_hid. Outputs d_gate_input (T, B, 3H), dW (H, 3H), dh (B, H). */
static void dl_gru_backward_@T@(int T, int B, int H, const @T@* W, const @T@* h0, const @T@* mask, const @T@* hs,
                                const @T@* cache, const @T@* d_hs, double grad_clipping,
                                @T@* d_gate_input, @T@* dW, @T@* dh, @T@* d_hid)
{
    const npy_intp step = (npy_intp)B * 3 * H, state = (npy_intp)B * H;
    const @T@ bound = grad_clipping > 0 ? (@T@)grad_clipping : (@T@)HUGE_VAL;
    memset(dh, 0, sizeof(@T@) * state);
    for (int t = T - 1; t >= 0; --t) {
        const @T@* h_prev = t ? hs + (t - 1) * state : h0;
        const @T@* keep = mask ? mask + (npy_intp)t * B : NULL;
        dl_gru_back_step_@T@(B, H, cache + (npy_intp)t * B * 4 * H, h_prev, d_hs + t * state, keep, bound, dh,
                             d_gate_input + t * step, d_hid + t * step);
        dl_gru_gemm_@T@('N', 'T', B, H, 3 * H, 1, d_hid + t * step, 3 * H, W, 3 * H, 1, dh, H);
    }
    if (T == 0) {
        memset(dW, 0, sizeof(@T@) * (npy_intp)H * 3 * H);
        return;
    }
    dl_gru_gemm_@T@('T', 'N', H, 3 * H, B, 1, h0, H, d_hid, 3 * H, 0, dW, 3 * H);
    if (T > 1) dl_gru_gemm_@T@('T', 'N', H, 3 * H, (T - 1) * B, 1, hs, H, d_hid + step, 3 * H, 1, dW, 3 * H);
}
"""


def forward_step_code(ctype):
    """The forward step of one dtype, with the cell traced from ``recurrent_cells.gru_cell``."""
    tr = CTrace(ctype, "v")
    names = ("r_x", "u_x", "c_x", "r_h", "u_h", "c_h", "h_prev")
    r, u, candidate, h = gru_cell(*(tr.variable(n) for n in names), tr.function(f"dl_gru_sigmoid_{ctype}"), tr.function(f"dl_gru_tanh_{ctype}"))
    body = {"CELL": tr.code(), "R": r.name, "U": u.name, "C": candidate.name, "H": h.name}
    return fill(fill(_FORWARD_STEP, body), {"T": ctype})


def backward_step_code(ctype):
    """The backward step, traced from ``gru_cell_backward_factors`` and ``gru_cell_backward``."""
    tr = CTrace(ctype, "u")
    r, u, candidate, c_h, h_prev, dh_in = (tr.variable(n) for n in ("r", "u", "candidate", "c_h", "h_prev", "dh_in"))
    factors = gru_cell_backward_factors(r, u, candidate, c_h, h_prev)
    da_r, da_u, da_c, dc_h, dh_direct = gru_cell_backward(dh_in, *factors, r, u)
    body = {"BACKWARD": tr.code(), "DA_R": da_r.name, "DA_U": da_u.name, "DA_C": da_c.name}
    body.update(DC_H=dc_h.name, DH_DIRECT=dh_direct.name)
    return fill(fill(_BACKWARD_STEP, body), {"T": ctype})


# The entry points of the kernels built as a library (``native_code``), with the signatures of
# ``dandelion.ops.numba.gru_cfuncs``'s callbacks; p: [T, B, H, has_mask], the mask passed
# (ones) even when unused.
_NATIVE_ENTRIES = """
extern "C" {
@ENTRIES@
}
"""

_NATIVE_DTYPE_ENTRIES = """
void dandelion_native_gru_forward_@T@(const @T@* gi, const @T@* w, const @T@* h0, const @T@* mask, @T@* hs, @T@* cache,
                                      const int64_t* p)
{
    const int T = (int)p[0], B = (int)p[1], H = (int)p[2];
    if ((npy_intp)T * B * H == 0) return;
    dl_gru_forward_@T@(T, B, H, gi, w, h0, p[3] ? mask : NULL, hs, cache);
}

/* d_hid (T, B, 3H): scratch, the cotangents of h_prev @ W_hid (the caller's, so that it reports a failed allocation). */
void dandelion_native_gru_backward_@T@(const @T@* w, const @T@* h0, const @T@* mask, const @T@* hs, const @T@* cache,
                                       const @T@* d_hs, @T@* d_gi, @T@* d_w, @T@* d_h0, @T@* d_hid, const int64_t* p,
                                       double grad_clipping)
{
    const int T = (int)p[0], B = (int)p[1], H = (int)p[2];
    if ((npy_intp)B * H == 0) {
        memset(d_w, 0, sizeof(@T@) * (npy_intp)H * 3 * H);
        return;
    }
    dl_gru_backward_@T@(T, B, H, w, h0, p[3] ? mask : NULL, hs, cache, d_hs, grad_clipping, d_gi, d_w, d_h0, d_hid);
}
"""


@functools.cache
def native_code():
    """The kernels as a stand-alone C++ library (no Python, NumPy or linked BLAS): its GEMMs are the
    pointers ``dandelion_native_gru_init`` receives."""
    head = "#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n"
    parts = [head + "typedef ptrdiff_t npy_intp;\n", pointer_gemm_code("dl_gru", "gru"), math_helpers_code("dl_gru")]
    parts += _kernels()
    entries = "".join(fill(_NATIVE_DTYPE_ENTRIES, {"T": ctype}) for ctype in ("float", "double"))
    return "".join(parts) + fill(_NATIVE_ENTRIES, {"ENTRIES": entries})


def _kernels():
    parts = []
    for ctype in ("float", "double"):
        parts += [forward_step_code(ctype), backward_step_code(ctype), fill(_DRIVERS, {"T": ctype})]
    return parts


@functools.cache
def support_code(link):
    """Every kernel, both dtypes, calling ``link``'s GEMM (one text for every option)."""
    return "".join([gemm_code("dl_gru", link), helpers_code("dl_gru")] + _kernels())


def code_version(link):
    # The kernels are generated from recurrent_cells: a change there must not reuse a cached module.
    return (1, zlib.crc32(support_code(link).encode()), link.sgemm, link.int_type)
