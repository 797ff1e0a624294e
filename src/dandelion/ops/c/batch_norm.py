"""C code of the fused BatchNorm Ops (``dandelion.ops.batch_norm``): plain loops, no BLAS.

Both read C-contiguous inputs in the canonical (P, K, S) view and follow
``batch_norm_numpy``: statistics and reductions accumulate in double per channel;
the forward makes three passes over x (sum, centred squares, y = x * scale + shift),
the backward two over x and gy (the two sums, then dx). The loop order is
(p, k, s) throughout, so memory is read in order whatever S is; the inner sums over s
keep eight independent accumulators, which GCC vectorises without ``-ffast-math``
(a single accumulator is a serial dependency chain it may not reorder).
"""

from __future__ import annotations

from dandelion.ops.axis_sum import kept_block
from dandelion.ops.c.outputs import ensure_output

C_CODE_VERSION = (1,)

_SUPPORT = """
#define DL_BN_LANES 8
"""


def support_code():
    return _SUPPORT


def _row_sum(total, term):
    """C statements adding ``sum over s < S of term(s)`` (an expression in ``s``) to double ``total``."""
    return f"""
        {{
            double lane[DL_BN_LANES] = {{0}};
            npy_intp s = 0;
            for (; s + DL_BN_LANES <= S; s += DL_BN_LANES)
                for (int l = 0; l < DL_BN_LANES; ++l) {{ const npy_intp q = s + l; lane[l] += {term("q")}; }}
            for (; s < S; ++s) lane[0] += {term("s")};
            for (int l = 0; l < DL_BN_LANES; ++l) {total} += lane[l];
        }}"""


def _contiguous(names, fail):
    """C statements: ``<v>c = PyArray_GETCONTIGUOUS(<v>)`` for each (name, variable), and the release code."""
    code, taken = [], []
    for c_name, var in names:
        release = " ".join(f"Py_DECREF({t});" for t in taken)
        code.append(f"PyArrayObject* {c_name} = PyArray_GETCONTIGUOUS({var}); if (!{c_name}) {{ {release} {fail} }}")
        taken.append(c_name)
    return "\n    ".join(code), " ".join(f"Py_DECREF({t});" for t in taken)


def _canonical(op, node, x):
    start, stop = kept_block(node.inputs[0].ndim, op.axes)
    ndim = node.inputs[0].ndim
    return f"""
    npy_intp P = 1, K = 1, S = 1;
    for (int a = 0; a < {start}; ++a) P *= PyArray_DIMS({x})[a];
    for (int a = {start}; a < {stop}; ++a) K *= PyArray_DIMS({x})[a];
    for (int a = {stop}; a < {ndim}; ++a) S *= PyArray_DIMS({x})[a];
    const npy_intp n = P * S;
    npy_intp* kept_dims = PyArray_DIMS({x}) + {start};
    """, stop - start


def _check_kept(where, argument, var, kept_ndim, release, fail):
    return f"""
    {{
        int ok = PyArray_NDIM({var}) == {kept_ndim};
        for (int a = 0; ok && a < {kept_ndim}; ++a) ok = PyArray_DIMS({var})[a] == kept_dims[a];
        if (!ok) {{
            PyErr_SetString(PyExc_ValueError, "{where}: {argument} does not have the shape of x's kept axes");
            {release} {fail}
        }}
    }}"""


def _outputs(outputs, kept_ndim, typenum, fail):
    """C statements (re)allocating both Ops' outputs: the first shaped as x, the other two as its kept axes."""
    full, first, second = outputs
    shapes = ((full, "PyArray_NDIM(xc)", "PyArray_DIMS(xc)"), (first, kept_ndim, "kept_dims"), (second, kept_ndim, "kept_dims"))
    return "".join(ensure_output(z, nd, dims, typenum, fail) for z, nd, dims in shapes)


def _factors(op, gamma_at):
    """C statements: double ``sk`` (inv_std or 1) and ``gk`` (gamma or 1) of channel k."""
    s = "r" if op.scale_by_inv_std else "1.0"
    g = f"(double){gamma_at}" if op.has_gamma else "1.0"
    return f"const double sk = {s}; const double gk = {g};"


def forward_c(op, node, inputs, outputs, sub):
    x, *params = inputs
    y, mean, inv = outputs
    fail = sub["fail"]
    names = [("xc", x)] + [(f"p{i}c", p) for i, p in enumerate(params)]
    take, release = _contiguous(names, fail)
    canonical, kept_ndim = _canonical(op, node, "xc")
    gamma_c = "p0c" if op.has_gamma else None
    beta_c = ("p1c" if op.has_gamma else "p0c") if op.has_beta else None
    xt = f"dtype_{x}"
    typenum = node.outputs[0].type.dtype_specs()[2]
    checks = "".join(_check_kept("batch_norm_train", name, c, kept_ndim, release, fail) for name, c in (("gamma", gamma_c), ("beta", beta_c)) if c)
    gamma_ptr = f"const {xt}* gp = (const {xt}*)PyArray_DATA({gamma_c});" if gamma_c else ""
    beta_ptr = f"const {xt}* bp = (const {xt}*)PyArray_DATA({beta_c});" if beta_c else ""
    shift = "(double)bp[k]" if op.has_beta else "0.0"
    centre = "shift[k] -= mp[k] * scale[k];" if op.subtract_mean else ""
    ensure = _outputs((y, mean, inv), kept_ndim, typenum, release + fail)
    return f"""
    {{
    {take}
    {canonical}
    {checks}
    {ensure}
    const {xt}* xp = (const {xt}*)PyArray_DATA(xc);
    {gamma_ptr}
    {beta_ptr}
    {xt}* yp = ({xt}*)PyArray_DATA({y});
    {xt}* mp = ({xt}*)PyArray_DATA({mean});
    {xt}* rp = ({xt}*)PyArray_DATA({inv});
    double* acc = (double*)calloc(4 * (K > 0 ? K : 1), sizeof(double));
    if (!acc) {{ PyErr_NoMemory(); {release} {fail} }}
    double *centre_sum = acc, *square_sum = acc + K, *scale = acc + 2 * K, *shift = acc + 3 * K;
    for (npy_intp p = 0; p < P; ++p)
        for (npy_intp k = 0; k < K; ++k) {{
            const {xt}* row = xp + (p * K + k) * S;
            {_row_sum("centre_sum[k]", lambda s: f"row[{s}]")}
        }}
    for (npy_intp k = 0; k < K; ++k) centre_sum[k] /= (double)n;
    for (npy_intp p = 0; p < P; ++p)
        for (npy_intp k = 0; k < K; ++k) {{
            const {xt}* row = xp + (p * K + k) * S;
            const double m = centre_sum[k];
            {_row_sum("square_sum[k]", lambda s: f"((double)row[{s}] - m) * ((double)row[{s}] - m)")}
        }}
    for (npy_intp k = 0; k < K; ++k) {{
        mp[k] = ({xt})centre_sum[k];
        const double r = 1.0 / sqrt(square_sum[k] / (double)n + {op.eps!r});
        rp[k] = ({xt})r;
        {_factors(op, "gp[k]")}
        scale[k] = sk * gk;
        shift[k] = {shift};
        {centre}
    }}
    for (npy_intp p = 0; p < P; ++p)
        for (npy_intp k = 0; k < K; ++k) {{
            const {xt}* row = xp + (p * K + k) * S;
            {xt}* out = yp + (p * K + k) * S;
            const {xt} a = ({xt})scale[k], b = ({xt})shift[k];
            for (npy_intp s = 0; s < S; ++s) out[s] = row[s] * a + b;
        }}
    free(acc);
    {release}
    }}
    """


def backward_c(op, node, inputs, outputs, sub):
    x, *rest = inputs
    dx, dgamma, dbeta = outputs
    fail = sub["fail"]
    labels = (["gamma"] if op.has_gamma else []) + ["mean", "inv_std", "gy", "gmean", "ginv_std"]
    names = [("xc", x)] + [(f"{label}c", var) for label, var in zip(labels, rest)]
    take, release = _contiguous(names, fail)
    canonical, kept_ndim = _canonical(op, node, "xc")
    xt = f"dtype_{x}"
    typenum = node.outputs[0].type.dtype_specs()[2]
    where = "batch_norm_train_grad"
    checks = "".join(_check_kept(where, label, f"{label}c", kept_ndim, release, fail) for label in labels if label != "gy")
    checks += f"""
    {{
        int ok = PyArray_NDIM(gyc) == PyArray_NDIM(xc);
        for (int a = 0; ok && a < PyArray_NDIM(xc); ++a) ok = PyArray_DIMS(gyc)[a] == PyArray_DIMS(xc)[a];
        if (!ok) {{ PyErr_SetString(PyExc_ValueError, "{where}: gy does not have the shape of x"); {release} {fail} }}
    }}"""
    pointers = "\n    ".join(f"const {xt}* {label}_p = (const {xt}*)PyArray_DATA({label}c);" for label in labels)
    ensure = _outputs((dx, dgamma, dbeta), kept_ndim, typenum, release + fail)
    gy_u = "sc[k]" if op.subtract_mean else "sc[k] + m * s1[k]"
    scale_term = " + gk * su" if op.scale_by_inv_std else ""
    centre_term = " - sk * gk * s1[k] / (double)n" if op.subtract_mean else ""
    return f"""
    {{
    {take}
    {canonical}
    {checks}
    {ensure}
    const {xt}* xp = (const {xt}*)PyArray_DATA(xc);
    {pointers}
    {xt}* dxp = ({xt}*)PyArray_DATA({dx});
    {xt}* dgp = ({xt}*)PyArray_DATA({dgamma});
    {xt}* dbp = ({xt}*)PyArray_DATA({dbeta});
    double* acc = (double*)calloc(5 * (K > 0 ? K : 1), sizeof(double));
    if (!acc) {{ PyErr_NoMemory(); {release} {fail} }}
    double *s1 = acc, *sc = acc + K, *ca = acc + 2 * K, *cb = acc + 3 * K, *cc = acc + 4 * K;
    for (npy_intp p = 0; p < P; ++p)
        for (npy_intp k = 0; k < K; ++k) {{
            const npy_intp at = (p * K + k) * S;
            const {xt}* row = xp + at;
            const {xt}* grow = gy_p + at;
            const double m = (double)mean_p[k];
            {_row_sum("s1[k]", lambda s: f"(double)grow[{s}]")}
            {_row_sum("sc[k]", lambda s: f"(double)grow[{s}] * ((double)row[{s}] - m)")}
        }}
    for (npy_intp k = 0; k < K; ++k) {{
        const double m = (double)mean_p[k], r = (double)inv_std_p[k];
        {_factors(op, "gamma_p[k]")}
        const double su = {gy_u};
        ca[k] = gk * sk;
        cb[k] = -((double)ginv_std_p[k]{scale_term}) * r * r * r / (double)n;
        cc[k] = (double)gmean_p[k] / (double)n{centre_term};
        dgp[k] = ({xt})(sk * su);
        dbp[k] = ({xt})s1[k];
    }}
    for (npy_intp p = 0; p < P; ++p)
        for (npy_intp k = 0; k < K; ++k) {{
            const npy_intp at = (p * K + k) * S;
            const {xt}* row = xp + at;
            const {xt}* grow = gy_p + at;
            {xt}* out = dxp + at;
            const {xt} a = ({xt})ca[k], b = ({xt})cb[k], m = mean_p[k];
            const {xt} c = ({xt})cc[k];
            for (npy_intp s = 0; s < S; ++s) out[s] = a * grow[s] + b * (row[s] - m) + c;
        }}
    free(acc);
    {release}
    }}
    """
