"""C text that gives an Op's output a C-contiguous buffer of the right shape, shared by the C kernels."""

from __future__ import annotations


def ensure_output(z, ndim_expr, shape, typenum, fail):
    """(Re)allocate ``z`` as a C-contiguous array of ``shape`` (a C ``npy_intp`` array) unless it already is one.

    PyTensor hands back the previous call's output; reusing it when it fits saves an
    allocation per call.
    """
    return f"""
    {{
        int reuse = {z} != NULL && PyArray_NDIM({z}) == {ndim_expr} && PyArray_IS_C_CONTIGUOUS({z});
        for (int a = 0; reuse && a < {ndim_expr}; ++a) reuse = PyArray_DIMS({z})[a] == {shape}[a];
        if (!reuse) {{
            Py_XDECREF({z});
            {z} = (PyArrayObject*)PyArray_EMPTY({ndim_expr}, {shape}, {typenum}, 0);
            if (!{z}) {{ {fail} }}
        }}
    }}
    """
