"""Elementwise loops the C backend's compiler vectorises: one flat pass over contiguous buffers.

PyTensor's C ``Elemwise`` has a flat loop only when every input has the output's static
shape. A broadcast scalar (Adam's step size, a dropout key: an input of shape (1, 1))
sends it to the strided loop nest instead, which GCC leaves scalar. Its float32
Composites also compute in double wherever a constant appears, because the constant is
written as a C ``double`` literal (``(0.999) * V7_i``). W4's C training step spent
9.8 of its 24 ms in its two large Adam updates, 5.1 times what the same update takes
on Numba.

``FlatElemwise`` is PyTensor's ``Elemwise`` (same scalar op, inplace pattern, checks,
output allocation, Python and strided C loops) with one more C branch: when every
full-size input and output is C-contiguous, one flat loop in a function of its own
(``dandelion.ops.c.flat_elemwise``), broadcast scalars read once. A float32 node whose
scalar code is only the graph's arithmetic (no support code, nothing wider than
float32) is compiled with ``-fsingle-precision-constant``: its constants are float32
values already, and Numba and JAX compute them in float32.

The rewrite runs last (after fusion and the inplace rewrites, whose inplace pattern it
keeps) and only in the modes ``dandelion.function`` builds for the C backend
(``with_flat_elemwise``, from ``dandelion.compile.with_backend_lowerings``); graphs
compiled with PyTensor's own modes are left alone.
"""

from __future__ import annotations

from pytensor.compile import optdb
from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter
from pytensor.graph.utils import MethodNotDefined
from pytensor.tensor.elemwise import Elemwise

from dandelion.ops.c import flat_elemwise as flat_c

TAG = "dandelion_flat_elemwise"

# dtypes a single-precision constant cannot change: float32 itself and the exact types
_SINGLE_PRECISION_SAFE = {"float32", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}


def _broadcast_scalar(variable):
    return all(length == 1 for length in variable.type.shape)


def _full_inputs(node):
    return [not _broadcast_scalar(x) for x in node.inputs]


def _ctype(variable):
    return variable.type.dtype_specs()[1]


class FlatElemwise(Elemwise):
    """``Elemwise`` with a vectorisable flat C loop over contiguous buffers (see the module docstring).

    ``single_precision_constants`` compiles the node with ``-fsingle-precision-constant``;
    the rewrite sets it only where ``_single_precision_safe`` holds for the node.
    """

    __props__ = ("scalar_op", "inplace_pattern", "single_precision_constants")

    def __init__(self, scalar_op, inplace_pattern=None, single_precision_constants=False, **kwargs):
        super().__init__(scalar_op, inplace_pattern, **kwargs)
        self.single_precision_constants = bool(single_precision_constants)

    def __str__(self):
        # "FlatComposite{...}" in profiles and debugprint, not every prop written out
        return f"Flat{Elemwise.__str__(self)}"

    def _scalar_code(self, node, nodename):
        self.prepare_node(node, None, None, "c")
        inames, onames = flat_c.scalar_names(len(node.inputs), len(node.outputs))
        return self.scalar_op.c_code(node.tag.fake_node, nodename + "_scalar_", inames, onames, {"fail": flat_c.FAIL})

    def c_support_code_apply(self, node, nodename):
        flat = flat_c.flat_function(
            f"{nodename}_flat",
            _full_inputs(node),
            [_ctype(x) for x in node.inputs],
            [_ctype(y) for y in node.outputs],
            self._scalar_code(node, nodename),
        )
        return super().c_support_code_apply(node, nodename) + flat

    def _c_all(self, node, nodename, inames, onames, sub):
        decl, checks, alloc, strided_loop, rest = super()._c_all(node, nodename, inames, onames, sub)
        loop = flat_c.flat_call(
            f"{nodename}_flat",
            _full_inputs(node),
            inames,
            [_ctype(x) for x in node.inputs],
            onames,
            [_ctype(y) for y in node.outputs],
            strided_loop,
            sub["fail"],
        )
        return decl, checks, alloc, loop, rest

    def c_compile_args(self, **kwargs):
        args = list(super().c_compile_args(**kwargs))
        if self.single_precision_constants:
            args.append("-fsingle-precision-constant")
        return args

    def c_code_cache_version_apply(self, node):
        version = super().c_code_cache_version_apply(node)
        return (*version, ("dandelion_flat", flat_c.C_CODE_VERSION)) if version else version


def _scalar_variables(scalar_op):
    graph = getattr(scalar_op, "fgraph", None)
    return graph.variables if graph is not None else []


def _single_precision_safe(scalar_op, node):
    """Whether every float constant the node's C code can contain is a float32 value of the graph."""
    dtypes = {v.type.dtype for v in node.inputs + node.outputs} | {v.type.dtype for v in _scalar_variables(scalar_op)}
    if "float32" not in dtypes or not dtypes <= _SINGLE_PRECISION_SAFE:
        return False
    try:
        return not scalar_op.c_support_code().strip() and not scalar_op.c_support_code_apply(None, "probe").strip()
    except (MethodNotDefined, NotImplementedError, AttributeError, TypeError):
        return False


def _eligible(node):
    op = node.op
    if type(op) is not Elemwise:
        return False
    output = node.outputs[0]
    if output.type.ndim == 0 or _broadcast_scalar(output):
        return False
    if any(v.type.dtype in ("float16", "complex64", "complex128") for v in node.inputs + node.outputs):
        return False
    # every input is either the output's shape or one value broadcast everywhere
    return all(_broadcast_scalar(x) or x.type.broadcastable == output.type.broadcastable for x in node.inputs)


@node_rewriter([Elemwise])
def flat_elemwise_loops(fgraph, node):
    """C backend: ``Elemwise`` -> ``FlatElemwise`` where every input is full-size or a broadcast scalar."""
    if not _eligible(node):
        return False
    single = _single_precision_safe(node.op.scalar_op, node)
    op = FlatElemwise(
        node.op.scalar_op,
        node.op.inplace_pattern,
        single_precision_constants=single,
        name=node.op.name,
        nfunc_spec=node.op.nfunc_spec,
    )
    new_node = op.make_node(*node.inputs)
    try:
        op._scalar_code(new_node, "probe")
    except (MethodNotDefined, NotImplementedError, KeyError):
        return False  # no C code for this scalar op: leave it to PyTensor
    return new_node.outputs


# last of the compile-time rewrites (after fusion at 49 and the inplace rewrites at 50-95);
# "cxx_only" keeps it out of the Numba and JAX linkers even where TAG is included
if "dandelion_flat_elemwise_loops" not in optdb:
    optdb.register("dandelion_flat_elemwise_loops", dfs_rewriter(flat_elemwise_loops), TAG, "cxx_only", position=99)


def with_flat_elemwise(mode):
    """``mode`` with the flat loops included (they apply on the C backend only)."""
    return mode.including(TAG)
