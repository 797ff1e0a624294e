"""C code of the pooling Op family (``dandelion.ops.pool``): ``PoolOp`` and ``PoolGradOp``.

The NumPy kernels (``pool_numpy``) cost 11 ms forward and 16 ms backward for a 2x2 max
pool of a float32 (64, 32, 28, 28) batch; these loops take well under a millisecond.
Both work on the canonical (N, D, H, W) layout of ``pool_numpy`` (unpooled axes
flattened into N, missing pooled axes of length 1), read C-contiguous inputs and follow
the same rules: max pooling ignores padding and routes each gradient to the first
maximum of its window in row-major window order; ``average_inc_pad`` divides by the
window clipped to the padded input, ``average_exc_pad`` by its input pixels.
The window geometry is compiled in as constants (one small module per configuration);
the pooled lengths are generated from ``geometry.pool_output_length``, and an adaptive
Op's bin bounds from ``geometry.adaptive_bin_start`` / ``adaptive_bin_end``.
"""

from __future__ import annotations

from dandelion.ops.c.expr import SUPPORT_CODE, CExpr
from dandelion.ops.c.outputs import ensure_output
from dandelion.ops.geometry import adaptive_bin_end, adaptive_bin_start, pool_output_length

C_CODE_VERSION = (6,)


# v where f is 1, +0.0 where it is 0, by the bits: a ternary here compiled to branches,
# mispredicted on every other window of random data (2.5 ms against 0.8 for W3's second
# pooling, whose 7-window rows are too short for the vectorised loop).
_KEEP = """
static inline float dl_pool_keep(int f, float v) {
    uint32_t u; memcpy(&u, &v, sizeof u); u &= (uint32_t)0 - (uint32_t)f; memcpy(&v, &u, sizeof v); return v;
}
static inline double dl_pool_keep(int f, double v) {
    uint64_t u; memcpy(&u, &v, sizeof u); u &= (uint64_t)0 - (uint64_t)f; memcpy(&v, &u, sizeof v); return v;
}
"""


def support_code():
    return SUPPORT_CODE + _KEEP


def _geometry(op, x, where, fail):
    """C statements defining n, sp[3], ws[3], st[3], pd[3], ot[3] for input ``x`` (C-contiguous)."""
    extra = 3 - op.nd
    ws = (1,) * extra + tuple(op.ws)
    st = (1,) * extra + tuple(op.stride)
    pd = (0,) * extra + tuple(op.pad)
    if op.output_size is not None:
        # adaptive: fixed pooled lengths; an empty axis would leave bins without pixels
        sizes = (1,) * extra + tuple(op.output_size)
        lengths = " ".join(f"ot[{a}] = {sizes[a]}; if (sp[{a}] < 1) ot[{a}] = 0;" for a in range(3))
    else:
        lengths = " ".join(
            f"ot[{a}] = {pool_output_length(CExpr(f'sp[{a}]'), ws[a], st[a], pd[a], op.ignore_border)};" for a in range(3)
        )
    return f"""
    const int nd = {op.nd};
    const int ndim = PyArray_NDIM({x});
    const npy_intp ws[3] = {{{ws[0]}, {ws[1]}, {ws[2]}}};
    const npy_intp st[3] = {{{st[0]}, {st[1]}, {st[2]}}};
    const npy_intp pd[3] = {{{pd[0]}, {pd[1]}, {pd[2]}}};
    npy_intp n = 1, sp[3] = {{1, 1, 1}}, ot[3];
    for (int a = 0; a < ndim - nd; ++a) n *= PyArray_DIMS({x})[a];
    for (int a = 0; a < nd; ++a) sp[3 - nd + a] = PyArray_DIMS({x})[ndim - nd + a];
    {lengths}
    for (int a = 0; a < 3; ++a) {{
        if (ot[a] < 1) {{
            PyErr_SetString(PyExc_ValueError, "{where}: window larger than the padded input with ignore_border=True (or an empty axis)");
            {fail}
        }}
    }}
    """


def _bounds(op, axis, index, lo, hi, count):
    """C declarations of output ``index``'s input range [lo, hi) on ``axis`` and its divisor incl. padding."""
    if op.output_size is not None:
        args = (CExpr(index), CExpr(f"sp[{axis}]"), CExpr(f"ot[{axis}]"))
        return f"npy_intp {lo} = {adaptive_bin_start(*args)}, {hi} = {adaptive_bin_end(*args)}, {count} = {hi} - {lo};"
    a, s = axis, f"s{lo[0]}"
    return (
        f"npy_intp {s} = {index} * st[{a}] - pd[{a}], {lo} = {s} < 0 ? 0 : {s}, {hi} = {s} + ws[{a}] < sp[{a}] ? {s} + ws[{a}] : sp[{a}];\n"
        f"        npy_intp {count} = ({s} + ws[{a}] < sp[{a}] + pd[{a}] ? {s} + ws[{a}] : sp[{a}] + pd[{a}]) - {s};"
    )


def _windows(op, body):
    """Loop over every output (b, i, j, k) with its clipped window [d0, d1) x [h0, h1) x [w0, w1)."""
    return f"""
    for (npy_intp b = 0; b < n; ++b)
    for (npy_intp i = 0; i < ot[0]; ++i) {{
        {_bounds(op, 0, "i", "d0", "d1", "cd")}
        for (npy_intp j = 0; j < ot[1]; ++j) {{
            {_bounds(op, 1, "j", "h0", "h1", "ch")}
            for (npy_intp k = 0; k < ot[2]; ++k) {{
                {_bounds(op, 2, "k", "w0", "w1", "cw")}
                npy_intp o = ((b * ot[0] + i) * ot[1] + j) * ot[2] + k;
                (void)cd; (void)ch; (void)cw;
                {body}
            }}
        }}
    }}
    """


_ARGMAX = """
                npy_intp best = ((b * sp[0] + d0) * sp[1] + h0) * sp[2] + w0;
                double best_value = -INFINITY;
                for (npy_intp d = d0; d < d1; ++d)
                for (npy_intp h = h0; h < h1; ++h)
                for (npy_intp w = w0; w < w1; ++w) {
                    npy_intp at = ((b * sp[0] + d) * sp[1] + h) * sp[2] + w;
                    if (xp[at] > best_value) { best_value = xp[at]; best = at; }
                }
"""


def is_tiled_2x2(op):
    """2x2 max pooling with stride 2, no padding, borders ignored: the CNN default, with its own loops.

    The generic loop nest has run-time window bounds and does not vectorise; on W3's first
    pooling, (64, 32, 28, 28) -> 14x14, it took 2.0 ms forward and 2.9 ms back. A third
    pooled axis is allowed with a window and stride of 1.
    """
    ws = (1,) * (3 - op.nd) + tuple(op.ws)
    st = (1,) * (3 - op.nd) + tuple(op.stride)
    return (
        op.mode == "max" and op.output_size is None and op.ignore_border
        and ws == (1, 2, 2) and st == (1, 2, 2) and not any(op.pad)
    )


# The window (a, b, c, d) in row-major order; m is its first maximum by the family's '>'
# scan from a (a NaN first entry wins, a later NaN never does). Selects, not branches: the
# loops vectorise.
_TILED_MAX = """
            const {T} a = r0[2 * k], b = r0[2 * k + 1], c = r1[2 * k], d = r1[2 * k + 1];
            {T} m = a;
            m = b > m ? b : m;
            m = c > m ? c : m;
            m = d > m ? d : m;"""

# Which entry holds m, as flags (none set: d), from comparisons of the same width as the
# values (an int position next to float values kept gcc from vectorising the loop).
_TILED_FIRST = """
            const int in_a = (a == m) | (a != a);
            const int in_b = !in_a & (b == m);
            const int in_c = !in_a & !in_b & (c == m);
            const int in_d = !(in_a | in_b | in_c);"""


def _tiled_planes(body, T):
    """Loop over each plane (N * D of them) and output row j with input rows r0, r1."""
    return f"""
    for (npy_intp q = 0; q < n * sp[0]; ++q)
    for (npy_intp j = 0; j < ot[1]; ++j) {{
        const {T}* r0 = xp + (q * sp[1] + 2 * j) * sp[2];
        const {T}* r1 = r0 + sp[2];
        {body}
    }}
    """


def _divisor(mode):
    if mode == "average_inc_pad":
        return "(double)(cd * ch * cw)"
    if mode == "average_exc_pad":
        return "(double)((d1 - d0) * (h1 - h0) * (w1 - w0))"
    return "1.0"


def pool_forward_c(op, node, name, inputs, outputs, sub):
    (x,) = inputs
    (z,) = outputs
    fail = sub["fail"]
    xt, zt = f"dtype_{x}", f"dtype_{z}"
    typenum = node.outputs[0].type.dtype_specs()[2]
    if is_tiled_2x2(op):
        window = _TILED_MAX.format(T=xt)
        loop = f"""
        {zt}* __restrict__ row = zp + (q * ot[1] + j) * ot[2];
        for (npy_intp k = 0; k < ot[2]; ++k) {{ {window}
            row[k] = ({zt})m;
        }}"""
        return _pool_forward_frame(op, x, z, xt, zt, typenum, fail, _tiled_planes(loop, xt))
    if op.mode == "max":
        body = _ARGMAX + "                zp[o] = (" + zt + ")xp[best];"
    else:
        body = f"""
                double total = 0.0;
                for (npy_intp d = d0; d < d1; ++d)
                for (npy_intp h = h0; h < h1; ++h)
                for (npy_intp w = w0; w < w1; ++w) total += xp[((b * sp[0] + d) * sp[1] + h) * sp[2] + w];
                zp[o] = ({zt})(total / {_divisor(op.mode)});"""
    return _pool_forward_frame(op, x, z, xt, zt, typenum, fail, _windows(op, body))


def _pool_forward_frame(op, x, z, xt, zt, typenum, fail, loops):
    release = "Py_DECREF(xc);"
    return f"""
    {{
    PyArrayObject* xc = PyArray_GETCONTIGUOUS({x});
    if (!xc) {{ {fail} }}
    {_geometry(op, "xc", "pool", release + fail)}
    npy_intp oshape[NPY_MAXDIMS];
    for (int a = 0; a < ndim - nd; ++a) oshape[a] = PyArray_DIMS(xc)[a];
    for (int a = 0; a < nd; ++a) oshape[ndim - nd + a] = ot[3 - nd + a];
    {ensure_output(z, "ndim", "oshape", typenum, release + fail)}
    const {xt}* xp = (const {xt}*)PyArray_DATA(xc);
    {zt}* zp = ({zt}*)PyArray_DATA({z});
    {loops}
    Py_DECREF(xc);
    }}
    """


def pool_backward_c(op, node, name, inputs, outputs, sub):
    x, gy = inputs
    (z,) = outputs
    fail = sub["fail"]
    xt, gt, zt = f"dtype_{x}", f"dtype_{gy}", f"dtype_{z}"
    if is_tiled_2x2(op) and node.outputs[0].dtype in ("float32", "float64"):
        window = _TILED_MAX.format(T=xt) + _TILED_FIRST
        body = f"""
        const {gt}* __restrict__ g = gp + (q * ot[1] + j) * ot[2];
        {zt}* __restrict__ z0 = zp + (q * sp[1] + 2 * j) * sp[2];
        {zt}* __restrict__ z1 = z0 + sp[2];
        for (npy_intp k = 0; k < ot[2]; ++k) {{ {window}
            const {zt} v = ({zt})g[k];
            z0[2 * k] = dl_pool_keep(in_a, v); z0[2 * k + 1] = dl_pool_keep(in_b, v);
            z1[2 * k] = dl_pool_keep(in_c, v); z1[2 * k + 1] = dl_pool_keep(in_d, v);
        }}"""
        # each window writes all four of its entries; only a row or column outside every
        # window (an odd length) needs the zeros
        zeros = f"if (2 * ot[1] != sp[1] || 2 * ot[2] != sp[2]) memset(zp, 0, PyArray_NBYTES({z}));"
        return _pool_backward_frame(op, node, x, gy, z, xt, gt, zt, fail, zeros, _tiled_planes(body, xt))
    if op.mode == "max":
        body = _ARGMAX + "                zp[best] += (" + zt + ")gp[o];"
    else:
        body = f"""
                {zt} share = ({zt})(gp[o] / {_divisor(op.mode)});
                for (npy_intp d = d0; d < d1; ++d)
                for (npy_intp h = h0; h < h1; ++h)
                for (npy_intp w = w0; w < w1; ++w) zp[((b * sp[0] + d) * sp[1] + h) * sp[2] + w] += share;"""
    zeros = f"memset(zp, 0, PyArray_NBYTES({z}));"
    return _pool_backward_frame(op, node, x, gy, z, xt, gt, zt, fail, zeros, _windows(op, body))


def _pool_backward_frame(op, node, x, gy, z, xt, gt, zt, fail, zeros, loops):
    release = "Py_DECREF(xc); Py_DECREF(gc);"
    return f"""
    {{
    PyArrayObject* xc = PyArray_GETCONTIGUOUS({x});
    if (!xc) {{ {fail} }}
    PyArrayObject* gc = PyArray_GETCONTIGUOUS({gy});
    if (!gc) {{ Py_DECREF(xc); {fail} }}
    {_geometry(op, "xc", "pool_grad", release + fail)}
    int same = PyArray_NDIM(gc) == ndim;
    for (int a = 0; same && a < ndim - nd; ++a) same = PyArray_DIMS(gc)[a] == PyArray_DIMS(xc)[a];
    for (int a = 0; same && a < nd; ++a) same = PyArray_DIMS(gc)[ndim - nd + a] == ot[3 - nd + a];
    if (!same) {{
        PyErr_SetString(PyExc_ValueError, "pool_grad: output_grad does not have the pooled shape");
        {release} {fail}
    }}
    {ensure_output(z, "ndim", "PyArray_DIMS(xc)", node.outputs[0].type.dtype_specs()[2], release + fail)}
    const {xt}* xp = (const {xt}*)PyArray_DATA(xc);
    const {gt}* gp = (const {gt}*)PyArray_DATA(gc);
    {zt}* zp = ({zt}*)PyArray_DATA({z});
    {zeros}
    {loops}
    {release}
    }}
    """
