"""C code of the convolution Op family (``dandelion.ops.conv``): per-image im2col / col2im and the BLAS PyTensor links.

Why C and not the NumPy ``perform``: with ``blas__ldflags`` set, PyTensor's own BLAS Ops
(the dense layer's ``Dot22``, BatchNorm's ``Gemv``) call the system BLAS while NumPy's
``matmul`` calls NumPy's bundled one. Two OpenBLAS thread pools then spin against each
other on the same cores, and the filter gradient of W3's second convolution measured
90-330 ms instead of 4 ms. Calling the GEMM of ``dandelion.ops.c.blas`` from C puts every
product of the C backend in one library: the configured one, or without
``blas__ldflags`` NumPy's bundled OpenBLAS, which PyTensor's BLAS Ops then run on too.

Layout (as Theano's CorrMM did): for each image and group, ``col`` (Cg*kh*kw, Ho*Wo)
holds the receptive fields; the forward pass is ``W_g @ col``, the input gradient
``W_g.T @ gy`` folded back by col2im, the filter gradient the sum over images of
``gy @ col.T``. Filters are read through a (O, Cg*kh*kw) matrix, flipped when ``flip``.
Stride, padding, dilation, groups and flip reach the C code as run-time parameters
(a ``ParamsType``), so every configuration shares one compiled module per Op and dtype.
"""

from __future__ import annotations

from pytensor.link.c.params_type import ParamsType
from pytensor.scalar import int64

from dandelion.ops.c.blas import BlasLinkedCOp, gemm_code, linked_blas, require_blas
from dandelion.ops.c.expr import SUPPORT_CODE, CExpr
from dandelion.ops.c.outputs import ensure_output
from dandelion.ops.geometry import conv_output_length

C_CODE_VERSION = (7,)

CONV_PARAMS = ParamsType(sh=int64, sw=int64, ph=int64, pw=int64, dh=int64, dw=int64, groups=int64, flip=int64)

_KERNELS = """
/* The output columns ow whose input column q = ow * sw + off lies in [0, W): [*lo, *hi). */
static void dl_valid_columns_{T}(int W, int Wo, int sw, int off, int* lo, int* hi)
{{
    /* q >= 0  <=>  ow >= ceil(-off / sw);  q < W  <=>  ow <= floor((W - 1 - off) / sw) */
    int a = off >= 0 ? 0 : (-off + sw - 1) / sw;
    int b = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
    *lo = a < Wo ? a : Wo;
    *hi = b < Wo ? b : Wo;
    if (*hi < *lo) *hi = *lo;
}}

/* One image's channels [c0, c0 + Cg) as rows (c, i, j) ``ld`` apart, columns (oh, ow); zero in the padding.
   The valid columns of a row are found once, so the copy itself has no branch (a plain copy at stride 1). */
static void dl_im2col_{T}(const {T}* x, int H, int W, int c0, int Cg, int kh, int kw, int sh, int sw,
                          int ph, int pw, int dh, int dw, int Ho, int Wo, {T}* col, npy_intp ld)
{{
    for (int c = 0; c < Cg; ++c)
    for (int i = 0; i < kh; ++i)
    for (int j = 0; j < kw; ++j) {{
        const {T}* src = x + (npy_intp)(c0 + c) * H * W;
        {T}* dst = col + (npy_intp)((c * kh + i) * kw + j) * ld;
        const int off = j * dw - pw;
        int lo, hi;
        dl_valid_columns_{T}(W, Wo, sw, off, &lo, &hi);
        for (int oh = 0; oh < Ho; ++oh) {{
            int r = oh * sh - ph + i * dh;
            {T}* __restrict__ row = dst + (npy_intp)oh * Wo;
            if (r < 0 || r >= H) {{ memset(row, 0, sizeof({T}) * Wo); continue; }}
            const {T}* __restrict__ line = src + (npy_intp)r * W;
            for (int ow = 0; ow < lo; ++ow) row[ow] = 0;
            if (sw == 1) memcpy(row + lo, line + lo + off, sizeof({T}) * (hi - lo));
            else for (int ow = lo; ow < hi; ++ow) row[ow] = line[(npy_intp)ow * sw + off];
            for (int ow = hi; ow < Wo; ++ow) row[ow] = 0;
        }}
    }}
}}

/* Adjoint of dl_im2col: adds every field entry back onto its pixel of one image. */
static void dl_col2im_{T}(const {T}* col, npy_intp ld, int H, int W, int c0, int Cg, int kh, int kw, int sh, int sw,
                          int ph, int pw, int dh, int dw, int Ho, int Wo, {T}* x)
{{
    for (int c = 0; c < Cg; ++c)
    for (int i = 0; i < kh; ++i)
    for (int j = 0; j < kw; ++j) {{
        {T}* dst = x + (npy_intp)(c0 + c) * H * W;
        const {T}* src = col + (npy_intp)((c * kh + i) * kw + j) * ld;
        const int off = j * dw - pw;
        int lo, hi;
        dl_valid_columns_{T}(W, Wo, sw, off, &lo, &hi);
        for (int oh = 0; oh < Ho; ++oh) {{
            int r = oh * sh - ph + i * dh;
            if (r < 0 || r >= H) continue;
            {T}* __restrict__ line = dst + (npy_intp)r * W;
            const {T}* __restrict__ row = src + (npy_intp)oh * Wo;
            if (sw == 1) {{
#pragma GCC ivdep
                for (int ow = lo; ow < hi; ++ow) line[ow + off] += row[ow];
            }} else {{
                for (int ow = lo; ow < hi; ++ow) line[(npy_intp)ow * sw + off] += row[ow];
            }}
        }}
    }}
}}

/* w (O, Cg, kh, kw) -> (O, Cg*kh*kw), flipped in space when flip. */
static void dl_filter_matrix_{T}(const {T}* w, int O, int Cg, int kh, int kw, int flip, {T}* m)
{{
    for (int o = 0; o < O; ++o)
    for (int c = 0; c < Cg; ++c)
    for (int i = 0; i < kh; ++i)
    for (int j = 0; j < kw; ++j) {{
        int si = flip ? kh - 1 - i : i, sj = flip ? kw - 1 - j : j;
        m[(((npy_intp)o * Cg + c) * kh + i) * kw + j] = w[(((npy_intp)o * Cg + c) * kh + si) * kw + sj];
    }}
}}

/* Copies between (nb, O, P) image-major blocks and (Og, nb * P) channel-major ones of group g. */
static void dl_to_channel_major_{T}(const {T}* y, int nb, int O, int Og, int g, int P, {T}* t)
{{
    for (int q = 0; q < nb; ++q)
    for (int o = 0; o < Og; ++o)
        memcpy(t + (npy_intp)o * nb * P + (npy_intp)q * P, y + ((npy_intp)q * O + g * Og + o) * P, sizeof({T}) * P);
}}

static void dl_to_image_major_{T}(const {T}* t, int nb, int O, int Og, int g, int P, {T}* y)
{{
    for (int q = 0; q < nb; ++q)
    for (int o = 0; o < Og; ++o)
        memcpy(y + ((npy_intp)q * O + g * Og + o) * P, t + (npy_intp)o * nb * P + (npy_intp)q * P, sizeof({T}) * P);
}}

/* mode 0: out = conv(a = x, b = w); 1: out = grad input (a = w, b = gy); 2: out = grad filters (a = x, b = gy).
   Images go through BLAS in chunks of about 4096 output pixels: one product per chunk and group
   is large enough for BLAS to run near its peak while the fields stay in cache. */
static int dl_conv_{T}(int mode, const {T}* a, const {T}* b, {T}* out, const int* s)
{{
    int B = s[0], C = s[1], H = s[2], W = s[3], O = s[4], Cg = s[5], kh = s[6], kw = s[7], Ho = s[8], Wo = s[9];
    int sh = s[10], sw = s[11], ph = s[12], pw = s[13], dh = s[14], dw = s[15], G = s[16], flip = s[17];
    int Og = O / G, K = Cg * kh * kw, P = Ho * Wo;
    int chunk = P >= 4096 ? 1 : (4096 + P - 1) / P;
    if (chunk > B) chunk = B;
    npy_intp image = (npy_intp)C * H * W, out_image = (npy_intp)O * P, cols = (npy_intp)chunk * P;
    {T}* col = ({T}*)malloc(sizeof({T}) * ((npy_intp)K * cols + (npy_intp)Og * cols + (npy_intp)O * K + 1));
    if (!col) return -1;
    {T}* t = col + (npy_intp)K * cols;
    {T}* m = t + (npy_intp)Og * cols;
    if (mode == 0) dl_filter_matrix_{T}(b, O, Cg, kh, kw, flip, m);
    else if (mode == 1) {{ dl_filter_matrix_{T}(a, O, Cg, kh, kw, flip, m); memset(out, 0, sizeof({T}) * B * image); }}
    else memset(m, 0, sizeof({T}) * O * K);
    for (int n0 = 0; n0 < B; n0 += chunk) {{
        int nb = B - n0 < chunk ? B - n0 : chunk;
        int N = nb * P;
        for (int g = 0; g < G; ++g) {{
            {T}* mg = m + (npy_intp)g * Og * K;
            if (mode != 1)
                for (int q = 0; q < nb; ++q)
                    dl_im2col_{T}(a + (n0 + q) * image, H, W, g * Cg, Cg, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, col + (npy_intp)q * P, N);
            if (mode == 0) {{
                dl_conv_gemm_{T}('N', 'N', Og, N, K, 1, mg, K, col, N, 0, t, N);
                dl_to_image_major_{T}(t, nb, O, Og, g, P, out + n0 * out_image);
                continue;
            }}
            dl_to_channel_major_{T}(b + n0 * out_image, nb, O, Og, g, P, t);
            if (mode == 1) {{
                dl_conv_gemm_{T}('T', 'N', K, N, Og, 1, mg, K, t, N, 0, col, N);
                for (int q = 0; q < nb; ++q)
                    dl_col2im_{T}(col + (npy_intp)q * P, N, H, W, g * Cg, Cg, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, out + (n0 + q) * image);
            }} else {{
                dl_conv_gemm_{T}('N', 'T', Og, K, N, 1, t, N, col, N, 1, mg, K);
            }}
        }}
    }}
    /* the gradient of the flipped filters, flipped back */
    if (mode == 2) dl_filter_matrix_{T}(m, O, Cg, kh, kw, flip, out);
    free(col);
    return 0;
}}
"""


def support_code(link):
    return gemm_code("dl_conv", link) + SUPPORT_CODE + "".join(_KERNELS.format(T=t) for t in ("float", "double"))


def _check_supported(node):
    """C code only with a linked BLAS and one float dtype throughout (else ``perform`` runs)."""
    require_blas("dandelion conv")
    dtypes = {v.dtype for v in node.inputs[:2]} | {node.outputs[0].dtype}
    if len(dtypes) != 1 or dtypes.pop() not in ("float32", "float64"):
        raise NotImplementedError("dandelion conv C code needs one float32 or float64 dtype")
    return "float" if node.outputs[0].dtype == "float32" else "double"


def _out_size(n, k, s, p, d):
    """The C expression of ``geometry.conv_output_length`` on C variables / expressions."""
    return f"(int){conv_output_length(CExpr(n), CExpr(k), CExpr(s), CExpr(p), CExpr(d))}"


def _ensure_output(z, shape, typenum, fail):
    dims = ", ".join(str(d) for d in shape)
    return f"""
    {{
        npy_intp dims[4] = {{{dims}}};
        {ensure_output(z, 4, "dims", typenum, fail)}
    }}
    """


def conv_c_code(op, mode, node, inputs, outputs, sub):
    """C for mode 0 (``Conv2dOp``: x, w), 1 (``Conv2dGradInputOp``: w, gy, in_hw), 2 (``Conv2dGradFiltersOp``: x, gy, kernel_hw)."""
    t = _check_supported(node)
    a, b = inputs[0], inputs[1]
    (z,) = outputs
    fail = sub["fail"]
    where = op.op_name
    release = "Py_DECREF(ac); Py_DECREF(bc);"
    params = sub["params"]
    sh, sw, ph, pw, dh, dw, groups, flip = (f"(int){params}->{field}" for field in ("sh", "sw", "ph", "pw", "dh", "dw", "groups", "flip"))
    typenum = node.outputs[0].type.dtype_specs()[2]
    if mode == 0:  # a = x (B, C, H, W), b = w (O, Cg, kh, kw)
        sizes = """
        int B = PyArray_DIMS(ac)[0], C = PyArray_DIMS(ac)[1], H = PyArray_DIMS(ac)[2], W = PyArray_DIMS(ac)[3];
        int O = PyArray_DIMS(bc)[0], Cg = PyArray_DIMS(bc)[1], kh = PyArray_DIMS(bc)[2], kw = PyArray_DIMS(bc)[3];
        """
        out_shape = ("B", "O", "Ho", "Wo")
        derive = f"int Ho = {_out_size('H', 'kh', sh, ph, dh)}, Wo = {_out_size('W', 'kw', sw, pw, dw)};"
        check = f"""
        if (C != Cg * {groups} || O % {groups} != 0) {{
            PyErr_Format(PyExc_ValueError, "{where}: input has %d channels and filters %d outputs; expected %d * num_groups channels "
                         "and outputs divisible by num_groups = %d", C, O, Cg, {groups}); {release} {fail}
        }}
        if (Ho < 1 || Wo < 1) {{
            PyErr_SetString(PyExc_ValueError, "{where}: the padded input is smaller than the dilated filter"); {release} {fail}
        }}
        """
    else:
        hw = inputs[2]
        read_hw = f"int e0 = (int)*(npy_int64*)PyArray_GETPTR1({hw}, 0), e1 = (int)*(npy_int64*)PyArray_GETPTR1({hw}, 1);"
        if mode == 1:  # a = w (O, Cg, kh, kw), b = gy (B, O, Ho, Wo), hw = (H, W)
            sizes = f"""
            {read_hw}
            int O = PyArray_DIMS(ac)[0], Cg = PyArray_DIMS(ac)[1], kh = PyArray_DIMS(ac)[2], kw = PyArray_DIMS(ac)[3];
            int B = PyArray_DIMS(bc)[0], Ho = PyArray_DIMS(bc)[2], Wo = PyArray_DIMS(bc)[3];
            int H = e0, W = e1, C = Cg * {groups};
            """
            out_shape = ("B", "C", "H", "W")
            channel_check = f"PyArray_DIMS(bc)[1] != O || O % {groups} != 0"
        else:  # a = x (B, C, H, W), b = gy (B, O, Ho, Wo), hw = (kh, kw)
            sizes = f"""
            {read_hw}
            int B = PyArray_DIMS(ac)[0], C = PyArray_DIMS(ac)[1], H = PyArray_DIMS(ac)[2], W = PyArray_DIMS(ac)[3];
            int O = PyArray_DIMS(bc)[1], Ho = PyArray_DIMS(bc)[2], Wo = PyArray_DIMS(bc)[3];
            int kh = e0, kw = e1, Cg = C / {groups};
            """
            out_shape = ("O", "Cg", "kh", "kw")
            channel_check = f"PyArray_DIMS(bc)[0] != B || C % {groups} != 0 || O % {groups} != 0"
        derive = ""
        check = f"""
        if ({channel_check}) {{
            PyErr_SetString(PyExc_ValueError, "{where}: inconsistent channels or batch between the inputs"); {release} {fail}
        }}
        if (H < 0 || W < 0 || kh < 1 || kw < 1 || {_out_size('H', 'kh', sh, ph, dh)} != Ho || {_out_size('W', 'kw', sw, pw, dw)} != Wo) {{
            PyErr_Format(PyExc_ValueError, "{where}: an input of size (%d, %d) convolved with a (%d, %d) filter "
                         "(stride (%d, %d), pad (%d, %d), dilation (%d, %d)) does not give the output gradient's (%d, %d)",
                         H, W, kh, kw, {sh}, {sw}, {ph}, {pw}, {dh}, {dw}, Ho, Wo);
            {release} {fail}
        }}
        """
    return f"""
    {{
    PyArrayObject* ac = PyArray_GETCONTIGUOUS({a});
    if (!ac) {{ {fail} }}
    PyArrayObject* bc = PyArray_GETCONTIGUOUS({b});
    if (!bc) {{ Py_DECREF(ac); {fail} }}
    {sizes}
    {derive}
    {check}
    {_ensure_output(z, out_shape, typenum, release + fail)}
    if (PyArray_SIZE({z}) > 0) {{
        if ((npy_intp)B * C * H * W == 0 || (npy_intp)O * Cg * kh * kw == 0 || (npy_intp)Ho * Wo == 0) {{
            memset(PyArray_DATA({z}), 0, PyArray_NBYTES({z}));
        }} else {{
            int s[18] = {{B, C, H, W, O, Cg, kh, kw, Ho, Wo, {sh}, {sw}, {ph}, {pw}, {dh}, {dw}, {groups}, {flip}}};
            if (dl_conv_{t}({mode}, (const {t}*)PyArray_DATA(ac), (const {t}*)PyArray_DATA(bc), ({t}*)PyArray_DATA({z}), s) != 0) {{
                PyErr_NoMemory(); {release} {fail}
            }}
        }}
    }}
    {release}
    }}
    """


class ConvCOp(BlasLinkedCOp):
    """Mixin giving a convolution Op its C implementation (``conv_mode`` picks the kernel)."""

    conv_mode = 0
    params_type = CONV_PARAMS

    def get_params(self, node):
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.pad, self.dilation
        return self.params_type.get_params(
            sh=sh, sw=sw, ph=ph, pw=pw, dh=dh, dw=dw, groups=self.num_groups, flip=int(self.flip)
        )

    def c_code(self, node, name, inputs, outputs, sub):
        return conv_c_code(self, self.conv_mode, node, inputs, outputs, sub)

    def c_support_code(self, **kwargs):
        return support_code(require_blas("dandelion conv"))

    def c_code_cache_version(self):
        link = linked_blas()
        return () if link is None else (*C_CODE_VERSION, link.sgemm, link.int_type)
