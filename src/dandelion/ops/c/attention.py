"""C code of the fused attention Ops (``dandelion.ops.attention``): per (batch * head) slice, BLAS GEMMs and one softmax pass.

Forward, per slice n: ``S = scale q k^T`` is one GEMM (alpha = scale) into the weights
output, passes per row mask (causal), shift by the row maximum, exponentiate (float32:
``dandelion.ops.exp32``, which vectorises) and normalise in place (``P``, saved for the
backward), and ``out = (P M) v`` is one GEMM (M the dropout multiplier, applied into a
scratch row block). Backward: ``dV = (P M)^T dO``, ``dP = (dO v^T) M``,
``dS = scale P (dP - rowsum(dP P))`` in one pass, then ``dq = dS k`` and ``dk = dS^T q``:
four GEMMs and no (N, Lq, Lk) temporary beyond one slice. Without a BLAS to link
(``dandelion.ops.c.blas``) the C code declines and ``perform`` runs the NumPy kernel
(``dandelion.ops.attention_numpy``).
"""

from __future__ import annotations

import functools
import zlib

from pytensor.link.c.params_type import ParamsType
from pytensor.scalar import float64, int8

from dandelion.ops.c import exp32
from dandelion.ops.c.blas import BlasKernelCOp, c_type_of, gemm_code, require_blas
from dandelion.ops.c.sequence import arrays_block, data_pointer

PARAMS = ParamsType(scale=float64, causal=int8)

_KERNELS = """
/* C (M x N) = alpha op(A) op(B), row-major; K == 0 gives zeros (BLAS wants leading dimensions >= 1). */
static void dl_attn_product_@T@(char ta, char tb, int M, int N, int K, @T@ alpha, const @T@* A, int lda,
                                const @T@* B, int ldb, @T@* C)
{
    if (M == 0 || N == 0) return;
    if (K == 0) { memset(C, 0, sizeof(@T@) * (size_t)M * N); return; }
    dl_attn_gemm_@T@(ta, tb, M, N, K, alpha, A, lda > 0 ? lda : 1, B, ldb > 0 ? ldb : 1, (@T@)0, C, N);
}

/* Row softmax of S (Lq x Lk) in place; causal drops keys j > i; rows with nothing kept give zeros.
   Without -ffast-math gcc leaves a max or sum reduction scalar (it may not reorder them), so
   both run on DL_ATTN_LANES partial results that it can keep in one vector register. */
static void dl_attn_softmax_@T@(int Lq, int Lk, int causal, @T@* S)
{
    for (int i = 0; i < Lq; ++i) {
        @T@* row = S + (size_t)i * Lk;
        const int kept = causal ? (i + 1 < Lk ? i + 1 : Lk) : Lk;
        const int body = kept - kept % DL_ATTN_LANES;
        @T@ lane[DL_ATTN_LANES];
        for (int l = 0; l < DL_ATTN_LANES; ++l) lane[l] = -INFINITY;
        for (int j = 0; j < body; j += DL_ATTN_LANES)
            for (int l = 0; l < DL_ATTN_LANES; ++l) lane[l] = row[j + l] > lane[l] ? row[j + l] : lane[l];
        @T@ shift = -INFINITY;
        for (int l = 0; l < DL_ATTN_LANES; ++l) shift = lane[l] > shift ? lane[l] : shift;
        for (int j = body; j < kept; ++j) shift = row[j] > shift ? row[j] : shift;
        /* the graph's shift: an infinite maximum (nothing kept) shifts by 0 so exp gives zeros, not NaN */
        if (isinf(shift)) shift = 0;
        for (int j = 0; j < kept; ++j) row[j] = @EXP@(row[j] - shift);
        for (int l = 0; l < DL_ATTN_LANES; ++l) lane[l] = 0;
        for (int j = 0; j < body; j += DL_ATTN_LANES)
            for (int l = 0; l < DL_ATTN_LANES; ++l) lane[l] += row[j + l];
        @T@ total = 0;
        for (int l = 0; l < DL_ATTN_LANES; ++l) total += lane[l];
        for (int j = body; j < kept; ++j) total += row[j];
        for (int j = kept; j < Lk; ++j) row[j] = 0;
        if (!(total > 0)) total = 1;
        for (int j = 0; j < kept; ++j) row[j] = row[j] / total;
    }
}

static void dl_attn_forward_@T@(int N, int Lq, int Lk, int E, int Ev, @T@ scale, int causal, const @T@* q,
                                const @T@* k, const @T@* v, const @T@* mult, @T@* out, @T@* weights, @T@* dropped)
{
    const size_t s_qk = (size_t)Lq * Lk;
    for (int n = 0; n < N; ++n) {
        @T@* P = weights + n * s_qk;
        dl_attn_product_@T@('N', 'T', Lq, Lk, E, scale, q + (size_t)n * Lq * E, E, k + (size_t)n * Lk * E, E, P);
        dl_attn_softmax_@T@(Lq, Lk, causal, P);
        const @T@* A = P;
        if (mult) {
            const @T@* M = mult + n * s_qk;
            for (size_t i = 0; i < s_qk; ++i) dropped[i] = P[i] * M[i];
            A = dropped;
        }
        dl_attn_product_@T@('N', 'N', Lq, Ev, Lk, (@T@)1, A, Lk, v + (size_t)n * Lk * Ev, Ev, out + (size_t)n * Lq * Ev);
    }
}

static void dl_attn_backward_@T@(int N, int Lq, int Lk, int E, int Ev, @T@ scale, const @T@* q, const @T@* k,
                                 const @T@* v, const @T@* weights, const @T@* mult, const @T@* d_out,
                                 @T@* dq, @T@* dk, @T@* dv, @T@* dropped, @T@* dS)
{
    const size_t s_qk = (size_t)Lq * Lk;
    for (int n = 0; n < N; ++n) {
        const @T@* P = weights + n * s_qk;
        const @T@* M = mult ? mult + n * s_qk : NULL;
        const @T@* dO = d_out + (size_t)n * Lq * Ev;
        const @T@* A = P;
        if (M) {
            for (size_t i = 0; i < s_qk; ++i) dropped[i] = P[i] * M[i];
            A = dropped;
        }
        dl_attn_product_@T@('T', 'N', Lk, Ev, Lq, (@T@)1, A, Lk, dO, Ev, dv + (size_t)n * Lk * Ev);
        dl_attn_product_@T@('N', 'T', Lq, Lk, Ev, (@T@)1, dO, Ev, v + (size_t)n * Lk * Ev, Ev, dS);
        for (int i = 0; i < Lq; ++i) {
            @T@* g = dS + (size_t)i * Lk;
            const @T@* p = P + (size_t)i * Lk;
            if (M) for (int j = 0; j < Lk; ++j) g[j] *= M[(size_t)i * Lk + j];
            @T@ r = 0;
            for (int j = 0; j < Lk; ++j) r += g[j] * p[j];
            for (int j = 0; j < Lk; ++j) g[j] = p[j] * (g[j] - r) * scale;
        }
        dl_attn_product_@T@('N', 'N', Lq, E, Lk, (@T@)1, dS, Lk, k + (size_t)n * Lk * E, E, dq + (size_t)n * Lq * E);
        dl_attn_product_@T@('T', 'N', Lk, E, Lq, (@T@)1, dS, Lk, q + (size_t)n * Lq * E, E, dk + (size_t)n * Lk * E);
    }
}
"""

_OUTPUT = """
static int dl_attn_output(PyArrayObject** z, int nd, npy_intp* dims, int typenum)
{
    int same = *z && PyArray_NDIM(*z) == nd && PyArray_TYPE(*z) == typenum && PyArray_ISCARRAY(*z);
    for (int d = 0; same && d < nd; ++d) same = PyArray_DIMS(*z)[d] == dims[d];
    if (same) return 0;
    Py_XDECREF(*z);
    *z = (PyArrayObject*)PyArray_EMPTY(nd, dims, typenum, 0);
    return *z == NULL;
}

static int dl_attn_check(const char* where, const char* argument, PyArrayObject* a, npy_intp d0, npy_intp d1, npy_intp d2)
{
    npy_intp* s = PyArray_DIMS(a);
    if (PyArray_NDIM(a) == 3 && s[0] == d0 && s[1] == d1 && (d2 < 0 || s[2] == d2)) return 0;
    PyErr_Format(PyExc_ValueError, "%s: %s must have shape (%ld, %ld, %ld), got ndim %d shape (%ld, %ld, %ld)", where,
                 argument, (long)d0, (long)d1, (long)d2, PyArray_NDIM(a), (long)(PyArray_NDIM(a) > 0 ? s[0] : -1),
                 (long)(PyArray_NDIM(a) > 1 ? s[1] : -1), (long)(PyArray_NDIM(a) > 2 ? s[2] : -1));
    return 1;
}
"""


@functools.cache
def support_code(link):
    """The kernels for both dtypes, on ``link``'s GEMM."""
    code = gemm_code("dl_attn", link) + _OUTPUT + "\n#define DL_ATTN_LANES 8\n" + exp32.support_code()
    # float32 through dandelion.ops.exp32 (vectorisable), float64 through libm
    for ctype, exp in (("float", "dl_exp32"), ("double", "exp")):
        code += _KERNELS.replace("@T@", ctype).replace("@EXP@", exp)
    return code


def code_version(link):
    return (1, zlib.crc32(support_code(link).encode()), link.sgemm, link.int_type)


def _types(where, node):
    """The node's C type and NumPy type number (declining without a BLAS or for other dtypes)."""
    require_blas(where)
    return c_type_of(where, [v.dtype for v in node.inputs + node.outputs]), node.outputs[0].type.dtype_specs()[2]


def _dims(where):
    """C reading N, Lq, Lk, E, Ev from in_[0..2] (q, k, v) with their checks."""
    return f"""
    for (int a = 0; a < 3 && !err; ++a) if (PyArray_NDIM(in_[a]) != 3) {{
        PyErr_Format(PyExc_ValueError, "{where}: q, k and v must have ndim 3 (N, L, E), got ndim %d", PyArray_NDIM(in_[a]));
        err = 1;
    }}
    npy_intp N = 0, Lq = 0, Lk = 0, E = 0, Ev = 0;
    if (!err) {{
        N = PyArray_DIMS(in_[0])[0]; Lq = PyArray_DIMS(in_[0])[1]; E = PyArray_DIMS(in_[0])[2];
        Lk = PyArray_DIMS(in_[1])[1]; Ev = PyArray_DIMS(in_[2])[2];
        err = dl_attn_check("{where}", "k", in_[1], N, Lk, E) || dl_attn_check("{where}", "v", in_[2], N, Lk, -1);
    }}"""


def _check_multiplier(where, k):
    return f'err = dl_attn_check("{where}", "dropout multiplier", in_[{k}], N, Lq, Lk);'


def forward_c_code(op, where, node, inputs, outputs, sub):
    """C of ``AttentionOp``: inputs q, k, v, [multiplier]; outputs out, weights."""
    ctype, typenum = _types(where, node)
    names = ["q", "k", "v"] + (["dropout multiplier"] if op.has_dropout else [])
    out, weights = outputs
    params = sub["params"]
    mult = data_pointer(3, ctype) if op.has_dropout else "NULL"
    check_mult = f"if (!err) {_check_multiplier(where, 3)}" if op.has_dropout else ""
    body = f"""
    {_dims(where)}
    {check_mult}
    npy_intp d_out[3] = {{N, Lq, Ev}}, d_w[3] = {{N, Lq, Lk}};
    if (!err) err = dl_attn_output(&{out}, 3, d_out, {typenum}) || dl_attn_output(&{weights}, 3, d_w, {typenum});
    if (!err) {{
        {ctype}* dropped = {"(" + ctype + "*)malloc(sizeof(" + ctype + ") * (size_t)(Lq * Lk > 0 ? Lq * Lk : 1))" if op.has_dropout else "NULL"};
        if ({"!dropped" if op.has_dropout else "0"}) {{ PyErr_NoMemory(); err = 1; }}
        else dl_attn_forward_{ctype}((int)N, (int)Lq, (int)Lk, (int)E, (int)Ev, ({ctype}){params}->scale, (int){params}->causal,
                                     {data_pointer(0, ctype)}, {data_pointer(1, ctype)}, {data_pointer(2, ctype)}, {mult},
                                     ({ctype}*)PyArray_DATA({out}), ({ctype}*)PyArray_DATA({weights}), dropped);
        free(dropped);
    }}
    """
    return arrays_block(list(zip(names, inputs, strict=True)), body, sub["fail"])


def backward_c_code(op, where, node, inputs, outputs, sub):
    """C of ``AttentionGradOp``: inputs q, k, v, weights, [multiplier], d_out; outputs dq, dk, dv."""
    ctype, typenum = _types(where, node)
    m = int(op.has_dropout)
    names = ["q", "k", "v", "weights"] + (["dropout multiplier"] if m else []) + ["output_grad"]
    dq, dk, dv = outputs
    mult = data_pointer(4, ctype) if m else "NULL"
    check_mult = f"if (!err) {_check_multiplier(where, 4)}" if m else ""
    body = f"""
    {_dims(where)}
    if (!err) err = dl_attn_check("{where}", "weights", in_[3], N, Lq, Lk) || dl_attn_check("{where}", "output_grad", in_[{4 + m}], N, Lq, Ev);
    {check_mult}
    npy_intp d_q[3] = {{N, Lq, E}}, d_k[3] = {{N, Lk, E}}, d_v[3] = {{N, Lk, Ev}};
    if (!err) err = dl_attn_output(&{dq}, 3, d_q, {typenum}) || dl_attn_output(&{dk}, 3, d_k, {typenum})
                    || dl_attn_output(&{dv}, 3, d_v, {typenum});
    if (!err) {{
        const size_t block = (size_t)(Lq * Lk > 0 ? Lq * Lk : 1);
        {ctype}* scratch = ({ctype}*)malloc(sizeof({ctype}) * 2 * block);
        if (!scratch) {{ PyErr_NoMemory(); err = 1; }}
        else dl_attn_backward_{ctype}((int)N, (int)Lq, (int)Lk, (int)E, (int)Ev, ({ctype}){sub["params"]}->scale,
                                      {data_pointer(0, ctype)}, {data_pointer(1, ctype)}, {data_pointer(2, ctype)}, {data_pointer(3, ctype)}, {mult},
                                      {data_pointer(4 + m, ctype)}, ({ctype}*)PyArray_DATA({dq}), ({ctype}*)PyArray_DATA({dk}),
                                      ({ctype}*)PyArray_DATA({dv}), scratch, scratch + block);
        free(scratch);
    }}
    """
    return arrays_block(list(zip(names, inputs, strict=True)), body, sub["fail"])


class AttentionCOp(BlasKernelCOp):
    """Support code, cache version, params and link flags shared by the two attention Ops' C code."""

    params_type = PARAMS

    def get_params(self, node):
        return self.params_type.get_params(scale=float(self.scale), causal=int(self.causal))

    kernel_support_code = staticmethod(support_code)
    kernel_code_version = staticmethod(code_version)
    kernel_headers = ("<math.h>", "<stdint.h>", "<string.h>", "<stdlib.h>")
