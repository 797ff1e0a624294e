"""The float32 LSTM recurrence on a thread team with ``W_hid`` packed once per call.

Forward: each thread owns blocks of ``UB = NR / 4`` hidden units and packs, once, the
columns of ``W_hid`` its units' four gates read into panels (H rows of
``[i(UB) f(UB) g(UB) o(UB)]``). Per step it multiplies ``h_{t-1}`` by its panels
(``tile``: MR rows at a time, the panel in L1) and applies the cell to the tile while it
is in registers' reach, writing the gates, ``c_t`` and its part of ``h_t``; the threads
meet once per step, because the next step reads every unit of ``h_t``.

Backward: each thread owns blocks of NR units, packs the rows of ``W_hid`` of its units
(``W_hid^T``'s columns), runs the step's cell backward over its units, meets the others
(the product reads every unit's ``dA``), then adds ``dA_t @ W_hid^T`` to its units of
``dh``. ``dW_hid`` is one BLAS product over all steps after the loop (the caller's).

The per-unit arithmetic is the traced cell of ``lstm_kernels`` (``forward_cell``) and
its backward step restricted to a unit range: there is still one definition. When the
buffers cannot be allocated the entry points return 0 and the caller runs its one-thread
BLAS loop; float64 has no packed kernel (stubs returning 0).
"""

from __future__ import annotations

from dandelion.ops.c.sequence import fill

_TILE_CELL = """
/* The cell for one row of a forward tile: acc (NR) is h_prev @ W over the panel's units
   [i(UB) f(UB) g(UB) o(UB)]; the other pointers are at the panel's first unit; nu <= UB units are real. */
static inline __attribute__((always_inline)) void dl_lstm_tile_cell_@P@(
    int H, int nu, const float* __restrict__ acc, const float* __restrict__ gin, const float* __restrict__ cp,
    const float* wci, const float* wcf, const float* wco, float* __restrict__ gt, float* __restrict__ ho,
    float* __restrict__ co)
{
#pragma GCC ivdep
    for (int j = 0; j < nu; ++j) {
        const float a_i = acc[j] + gin[j], a_f = acc[DL_LSTM_UB + j] + gin[H + j];
        const float a_g = acc[2 * DL_LSTM_UB + j] + gin[2 * H + j], a_o = acc[3 * DL_LSTM_UB + j] + gin[3 * H + j];
        const float c_prev = cp[j];
@LOAD_PEEP@
@CELL@
        gt[j] = @I@; gt[H + j] = @F@; gt[2 * H + j] = @G@; gt[3 * H + j] = @O@;
        co[j] = @C@;
        ho[j] = @H@;
    }
}
"""

_MEMBERS = """
static void dl_lstm_forward_member_@P@(void* arg, int thread, int n_threads)
{
    dl_lstm_forward_job* job = (dl_lstm_forward_job*)arg;
    const int T = job->T, B = job->B, H = job->H, panels = (H + DL_LSTM_UB - 1) / DL_LSTM_UB;
    const int p0 = panels * thread / n_threads, p1 = panels * (thread + 1) / n_threads;
    const npy_intp state = (npy_intp)B * H, step = 4 * state;
    float* scratch = job->scratch + (npy_intp)thread * dl_lstm_MR * H;
    float out[dl_lstm_MR * dl_lstm_NR];
    int phase = 0;
    dl_lstm_pack_gate_panels(H, job->W, p0, p1, job->packed);
    for (int t = 0; t < T; ++t) {
        const float* h_prev = t ? job->hs + (t - 1) * state : job->h0;
        const float* c_prev = t ? job->cs + (t - 1) * state : job->c0;
        const float* keep = job->mask ? job->mask + (npy_intp)t * B : NULL;
        for (int p = p0; p < p1; ++p) {
            const int n0 = p * DL_LSTM_UB, nu = H - n0 < DL_LSTM_UB ? H - n0 : DL_LSTM_UB;
            const float* panel = job->packed + (npy_intp)p * H * dl_lstm_NR;
            const float* wci = job->wci ? job->wci + n0 : NULL;
            const float* wcf = job->wcf ? job->wcf + n0 : NULL;
            const float* wco = job->wco ? job->wco + n0 : NULL;
            for (int r0 = 0; r0 < B; r0 += dl_lstm_MR) {
                npy_intp ld;
                const float* rows = dl_lstm_tile_rows(h_prev, H, r0, B, H, scratch, &ld);
                dl_lstm_tile(H, rows, ld, panel, out);
                for (int r = 0; r < dl_lstm_MR && r0 + r < B; ++r) {
                    const npy_intp b = r0 + r, o = t * state + b * H + n0, og = t * step + b * 4 * H + n0;
                    dl_lstm_tile_cell_@P@(H, nu, out + r * dl_lstm_NR, job->gate_input + og, c_prev + b * H + n0,
                                         wci, wcf, wco, job->gates + og, job->hs + o, job->cs + o);
                    if (keep && keep[b] == 0) {
                        /* a skipped step carries the states over (its gates are computed all the same) */
                        memcpy(job->hs + o, h_prev + b * H + n0, sizeof(float) * nu);
                        memcpy(job->cs + o, c_prev + b * H + n0, sizeof(float) * nu);
                    }
                }
            }
        }
        dl_lstm_barrier(&job->barrier, n_threads, &phase);
    }
}

static void dl_lstm_backward_member_@P@(void* arg, int thread, int n_threads)
{
    dl_lstm_backward_job* job = (dl_lstm_backward_job*)arg;
    const int T = job->T, B = job->B, H = job->H, panels = (H + dl_lstm_NR - 1) / dl_lstm_NR;
    const int q0 = panels * thread / n_threads, q1 = panels * (thread + 1) / n_threads;
    const int j0 = q0 * dl_lstm_NR, j1 = q1 * dl_lstm_NR < H ? q1 * dl_lstm_NR : H;
    const npy_intp state = (npy_intp)B * H, step = 4 * state;
    float* scratch = job->scratch + (npy_intp)thread * dl_lstm_MR * 4 * H;
    float out[dl_lstm_MR * dl_lstm_NR];
    int phase = 0;
    dl_lstm_pack_unit_panels(H, job->W, q0, q1, job->packed);
    for (int b = 0; b < B; ++b) {
        memset(job->dh + b * H + j0, 0, sizeof(float) * (j1 - j0));
        memset(job->dc + b * H + j0, 0, sizeof(float) * (j1 - j0));
    }
    if (job->wci) {
        memset(job->dwci + j0, 0, sizeof(float) * (j1 - j0));
        memset(job->dwcf + j0, 0, sizeof(float) * (j1 - j0));
        memset(job->dwco + j0, 0, sizeof(float) * (j1 - j0));
    }
    for (int t = T - 1; t >= 0; --t) {
        const float* c_prev = t ? job->cs + (t - 1) * state : job->c0;
        const float* keep = job->mask ? job->mask + (npy_intp)t * B : NULL;
        float* da = job->d_gate_input + t * step;
        dl_lstm_back_step_float_@P@(B, H, j0, j1, job->gates + t * step, c_prev, job->cs + t * state, job->d_hs + t * state,
                                    job->d_cs + t * state, keep, job->wci, job->wcf, job->wco, job->bound, job->dh,
                                    job->dc, da, job->dwci, job->dwcf, job->dwco);
        dl_lstm_barrier(&job->barrier, n_threads, &phase);
        for (int q = q0; q < q1; ++q) {
            const int u0 = q * dl_lstm_NR, nu = H - u0 < dl_lstm_NR ? H - u0 : dl_lstm_NR;
            const float* panel = job->packed + (npy_intp)q * 4 * H * dl_lstm_NR;
            for (int r0 = 0; r0 < B; r0 += dl_lstm_MR) {
                npy_intp ld;
                const float* rows = dl_lstm_tile_rows(da, 4 * H, r0, B, 4 * H, scratch, &ld);
                dl_lstm_tile(4 * H, rows, ld, panel, out);
                for (int r = 0; r < dl_lstm_MR && r0 + r < B; ++r) {
                    float* __restrict__ d = job->dh + (npy_intp)(r0 + r) * H + u0;
                    const float* __restrict__ s = out + r * dl_lstm_NR;
                    for (int c = 0; c < nu; ++c) d[c] += s[c];
                }
            }
        }
    }
}
"""

_COMMON = """
#define DL_LSTM_UB (dl_lstm_NR / 4)

typedef struct {
    int T, B, H;
    const float *gate_input, *W, *wci, *wcf, *wco, *h0, *c0, *mask;
    float *hs, *cs, *gates, *packed, *scratch;
    dl_lstm_team_barrier barrier;
} dl_lstm_forward_job;

typedef struct {
    int T, B, H;
    const float *W, *wci, *wcf, *wco, *c0, *mask, *cs, *gates, *d_hs, *d_cs;
    float bound;
    float *d_gate_input, *dwci, *dwcf, *dwco, *dh, *dc, *packed, *scratch;
    dl_lstm_team_barrier barrier;
} dl_lstm_backward_job;

/* Panels p0..p1 of the forward: panel p holds, for k < H, W[k, g * H + p * UB + u] at [k][g * UB + u] (zero past H). */
static void dl_lstm_pack_gate_panels(int H, const float* W, int p0, int p1, float* packed)
{
    for (int p = p0; p < p1; ++p) {
        float* panel = packed + (npy_intp)p * H * dl_lstm_NR;
        for (int k = 0; k < H; ++k)
            for (int g = 0; g < 4; ++g)
                for (int u = 0; u < DL_LSTM_UB; ++u) {
                    const int n = p * DL_LSTM_UB + u;
                    panel[(npy_intp)k * dl_lstm_NR + g * DL_LSTM_UB + u] = n < H ? W[(npy_intp)k * 4 * H + g * H + n] : 0.0f;
                }
    }
}

/* Panels q0..q1 of the backward: panel q holds, for k < 4H, W[q * NR + c, k] at [k][c] (zero past H). */
static void dl_lstm_pack_unit_panels(int H, const float* W, int q0, int q1, float* packed)
{
    for (int q = q0; q < q1; ++q) {
        float* panel = packed + (npy_intp)q * 4 * H * dl_lstm_NR;
        for (int c = 0; c < dl_lstm_NR; ++c) {
            const int j = q * dl_lstm_NR + c;
            for (npy_intp k = 0; k < 4 * H; ++k) panel[k * dl_lstm_NR + c] = j < H ? W[(npy_intp)j * 4 * H + k] : 0.0f;
        }
    }
}

static void* dl_lstm_aligned(size_t n_floats)
{
    const size_t bytes = (sizeof(float) * n_floats + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

/* Work below about a million multiply-adds per step is not worth a thread's start. */
static int dl_lstm_threads(int blocks, int B, int H)
{
    return dl_lstm_team_size(blocks, (double)B * H * 4 * H < 1048576.0);
}

"""

# The entry points, after the team members they start.
_ENTRIES = """static int dl_lstm_packed_forward_float(int T, int B, int H, const float* gate_input, const float* W, const float* wci,
                                        const float* wcf, const float* wco, const float* h0, const float* c0,
                                        const float* mask, float* hs, float* cs, float* gates)
{
    const int panels = (H + DL_LSTM_UB - 1) / DL_LSTM_UB, n = dl_lstm_threads(panels, B, H);
    float* packed = (float*)dl_lstm_aligned((size_t)panels * H * dl_lstm_NR);
    float* scratch = (float*)dl_lstm_aligned((size_t)n * dl_lstm_MR * H);
    if (!packed || !scratch) {
        free(packed);
        free(scratch);
        return 0;
    }
    dl_lstm_forward_job job = {T, B, H, gate_input, W, wci, wcf, wco, h0, c0, mask, hs, cs, gates, packed, scratch, {0}};
    dl_lstm_team_run(n, wci ? dl_lstm_forward_member_1 : dl_lstm_forward_member_0, &job);
    free(packed);
    free(scratch);
    return 1;
}

static int dl_lstm_packed_backward_float(int T, int B, int H, const float* W, const float* wci, const float* wcf,
                                         const float* wco, const float* c0, const float* mask, const float* cs,
                                         const float* gates, const float* d_hs, const float* d_cs, float bound,
                                         float* d_gate_input, float* dwci, float* dwcf, float* dwco, float* dh, float* dc)
{
    const int panels = (H + dl_lstm_NR - 1) / dl_lstm_NR, n = dl_lstm_threads(panels, B, H);
    float* packed = (float*)dl_lstm_aligned((size_t)panels * 4 * H * dl_lstm_NR);
    float* scratch = (float*)dl_lstm_aligned((size_t)n * dl_lstm_MR * 4 * H);
    if (!packed || !scratch) {
        free(packed);
        free(scratch);
        return 0;
    }
    dl_lstm_backward_job job = {T, B, H, W, wci, wcf, wco, c0, mask, cs, gates, d_hs, d_cs, bound,
                                d_gate_input, dwci, dwcf, dwco, dh, dc, packed, scratch, {0}};
    dl_lstm_team_run(n, wci ? dl_lstm_backward_member_1 : dl_lstm_backward_member_0, &job);
    free(packed);
    free(scratch);
    return 1;
}

/* float64 keeps the BLAS loop. */
static int dl_lstm_packed_forward_double(int T, int B, int H, const double* gate_input, const double* W,
                                         const double* wci, const double* wcf, const double* wco, const double* h0,
                                         const double* c0, const double* mask, double* hs, double* cs, double* gates)
{
    return 0;
}

static int dl_lstm_packed_backward_double(int T, int B, int H, const double* W, const double* wci, const double* wcf,
                                          const double* wco, const double* c0, const double* mask, const double* cs,
                                          const double* gates, const double* d_hs, const double* d_cs, double bound,
                                          double* d_gate_input, double* dwci, double* dwcf, double* dwco, double* dh,
                                          double* dc)
{
    return 0;
}
"""


def packed_code(forward_cells):
    """The packed kernels; ``forward_cells[p]`` is ``lstm_kernels.forward_cell("float", p)``'s fill values.

    Needs ``team_code("dl_lstm")`` and the float back steps before it.
    """
    parts = [_COMMON]
    for peephole in (False, True):
        parts.append(fill(fill(_TILE_CELL, forward_cells[peephole]), {"P": str(int(peephole))}))
        parts.append(fill(_MEMBERS, {"P": str(int(peephole))}))
    parts.append(_ENTRIES)
    return "".join(parts)
