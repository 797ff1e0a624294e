"""C pieces shared by the fused recurrent Ops' C code (``c/lstm``, ``c/gru``).

``helpers_code(prefix)`` is the support code both families need (activations, clip,
shape checks worded as the Ops' ``perform`` words them, outputs), its functions named
``{prefix}_*`` so that each family's module keeps its own names; the Python helpers
build the ``c_code`` around a kernel call, and ``SequenceCOp`` / ``ClipBoundParams`` are
the two Ops' common C plumbing.
"""

from __future__ import annotations

from pytensor.link.c.params_type import ParamsType
from pytensor.scalar import float64

from dandelion.ops.c.blas import BlasKernelCOp

# The gradient Ops' one parameter: the clip bound, read at run time (one module for every bound).
GRAD_PARAMS = ParamsType(grad_clipping=float64)

# The activations (the float32 tanh is ``dandelion.ops.numba.activations.rational_tanh``, same
# coefficients) and the clip.
_HELPERS = """
static inline float @PREFIX@_tanh_float(float x)
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

static inline double @PREFIX@_tanh_double(double x) { return tanh(x); }

static inline float @PREFIX@_sigmoid_float(float x) { return 0.5f + 0.5f * @PREFIX@_tanh_float(0.5f * x); }

static inline double @PREFIX@_sigmoid_double(double x) { return 0.5 + 0.5 * @PREFIX@_tanh_double(0.5 * x); }

static inline float @PREFIX@_clip_float(float x, float b) { return x > b ? b : (x < -b ? -b : x); }

static inline double @PREFIX@_clip_double(double x, double b) { return x > b ? b : (x < -b ? -b : x); }
"""

# What only a Python extension module can use: shape checks worded as ``perform``'s, outputs.
_PYTHON_HELPERS = """
/* Python's repr of a shape tuple, for error messages. */
static void @PREFIX@_shape_repr(char* buf, size_t n, int nd, const npy_intp* dims)
{
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int k = 0; k < nd && used < n; ++k)
        used += (size_t)snprintf(buf + used, n - used, k ? ", %ld" : "%ld", (long)dims[k]);
    if (used < n) snprintf(buf + used, n - used, nd == 1 ? ",)" : ")");
}

/* 0 when ``a`` has shape ``expected``; else a ValueError worded as the Ops' ``perform`` words it. */
static int @PREFIX@_check_shape(const char* where, const char* argument, PyArrayObject* a, int nd, const npy_intp* expected,
                               npy_intp T, npy_intp B, npy_intp H)
{
    int same = PyArray_NDIM(a) == nd;
    for (int k = 0; same && k < nd; ++k) same = PyArray_DIMS(a)[k] == expected[k];
    if (same) return 0;
    char want[96], got[96];
    @PREFIX@_shape_repr(want, sizeof(want), nd, expected);
    @PREFIX@_shape_repr(got, sizeof(got), PyArray_NDIM(a), PyArray_DIMS(a));
    PyErr_Format(PyExc_ValueError, "%s: %s must have shape %s (T=%ld, B=%ld, H=%ld), got %s", where, argument, want,
                 (long)T, (long)B, (long)H, got);
    return -1;
}

/* A C-contiguous output of the given shape in *z, reused when it already has it. */
static int @PREFIX@_output(PyArrayObject** z, int nd, const npy_intp* dims, int typenum)
{
    int reuse = *z != NULL && PyArray_NDIM(*z) == nd && PyArray_IS_C_CONTIGUOUS(*z) && PyArray_TYPE(*z) == typenum;
    for (int k = 0; reuse && k < nd; ++k) reuse = PyArray_DIMS(*z)[k] == dims[k];
    if (reuse) return 0;
    Py_XDECREF(*z);
    *z = (PyArrayObject*)PyArray_EMPTY(nd, (npy_intp*)dims, typenum, 0);
    return *z ? 0 : -1;
}
"""



def math_helpers_code(prefix):
    """The activations and the clip, named ``{prefix}_tanh_float`` ... (plain C: no Python or NumPy)."""
    return _HELPERS.replace("@PREFIX@", prefix)


def helpers_code(prefix):
    """The shared support functions, named ``{prefix}_tanh_float``, ``{prefix}_check_shape`` ..."""
    return math_helpers_code(prefix) + _PYTHON_HELPERS.replace("@PREFIX@", prefix)


def arrays_block(named, body, fail):
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


def shape_checks(prefix, where, shapes):
    """C checks of ``[(argument, input index, expected dims as C expressions)]`` by ``{prefix}_check_shape``."""
    lines = []
    for argument, k, dims in shapes:
        lines.append(
            f"if (!err) {{ npy_intp e_[{len(dims)}] = {{{', '.join(dims)}}}; "
            f'err = {prefix}_check_shape("{where}", "{argument}", in_[{k}], {len(dims)}, e_, T, B, H); }}'
        )
    return "\n    ".join(lines)


def data_pointer(k, ctype):
    """The data of the k-th contiguous input view as ``const ctype*``."""
    return f"(const {ctype}*)PyArray_DATA(in_[{k}])"


def fill(template, values):
    """``template`` with each ``@KEY@`` replaced by ``values[KEY]``."""
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


class SequenceCOp(BlasKernelCOp):
    """Support code, cache version and link flags of a fused recurrent family's two Ops.

    Subclasses set ``kernels``, the family's kernel module (``support_code(link)`` and
    ``code_version(link)``), and may extend ``kernel_headers``.
    """

    kernels = None
    kernel_headers = ("<math.h>", "<string.h>", "<stdio.h>")

    def kernel_support_code(self, link):
        return self.kernels.support_code(link)

    def kernel_code_version(self, link):
        return self.kernels.code_version(link)


class ClipBoundParams:
    """Mixin of a gradient Op's C code: the clip bound is a run-time parameter (one module for every bound)."""

    params_type = GRAD_PARAMS

    def get_params(self, node):
        return self.params_type.get_params(grad_clipping=float(self.grad_clipping))

