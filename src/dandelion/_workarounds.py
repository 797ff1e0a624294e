"""Every PyTensor bug dandelion works around, with the PyTensor lines it applies to.

Each ``Workaround`` names the PyTensor lines (``major.minor``) where the bug was seen;
``last=None`` means it is still present in the newest line checked (3.3), so the
workaround stays on for later lines until ``tests/test_workarounds.py``, which shows each
bug in the installed PyTensor, starts failing: then the bug is fixed upstream and
``last`` gets the final affected line. Code that works around a bug asks ``.active``.

Only the two backend linkers that dandelion's modes use (``linker_for``) carry the
fixes to PyTensor's generated code; graphs compiled with PyTensor's own modes are left
exactly as PyTensor builds them.
"""

from __future__ import annotations

import copy
import functools
from collections import Counter
from dataclasses import dataclass

from pytensor.link.jax.linker import JAXLinker
from pytensor.link.numba.linker import NumbaLinker
from pytensor.link.vm import VMLinker

from dandelion._compat import PYTENSOR_VERSION
from dandelion.parallel_c_compile import DandelionVMLinker


@dataclass(frozen=True)
class Workaround:
    """One PyTensor bug: where it shows, why dandelion cares, and where it is tracked."""

    name: str
    reason: str
    first: tuple = (3, 0)
    last: tuple | None = None
    upstream: str | None = None

    @property
    def active(self) -> bool:
        """Whether the installed PyTensor line is one the bug applies to."""
        return self.applies_to(PYTENSOR_VERSION)

    def applies_to(self, version) -> bool:
        return tuple(version) >= self.first and (self.last is None or tuple(version) <= self.last)


SCAN_PUSHOUT_TRUNCATED = Workaround(
    name="scan_pushout_add with truncate_gradient",
    reason=(
        "scan_pushout_add moves the weight-gradient sums of a truncated gradient scan out of the "
        "loop with T-step and k-step operands (a shape error at run time); dandelion.function "
        "excludes the rewrite from graphs that hold a truncated scan"
    ),
    upstream="https://github.com/Theano/Theano/issues/4652 (inherited from Theano's PushOutScanOutput)",
)

SOFTMAX_IN_PYTHON_ON_C = Workaround(
    name="Softmax / LogSoftmax Ops without C code",
    reason=(
        "PyTensor's Softmax and LogSoftmax have no C implementation, so the C backend runs "
        "them in Python; dandelion writes softmax as exp(x - logsumexp(x)), which no rewrite "
        "turns back into those Ops; PyTensor 3.3 rewrites them into elementwise sums with C code"
    ),
    last=(3, 0),
)

ZERO_STEP_SCAN_GRADIENT = Workaround(
    name="gradient of a zero-step scan",
    reason=(
        "the gradient of a scan that runs zero steps (a CRF's recursion over x[:, 1:] at T = 1) "
        "fails with a broadcast error; crf_log_partition and crf_viterbi take their first step "
        "inside the scan, switching to the start scores, so the scan always runs T steps"
    ),
)

JAX_REDUCE_ACCUMULATOR_DTYPE = Workaround(
    name="JAX CAReduce returns the accumulator dtype",
    reason=(
        "PyTensor's JAX dispatch of CAReduce casts the result to acc_dtype (float64 for a "
        "float32 sum), so float32 losses turn float64 and a float32 scan carry meets a "
        "float64 update; dandelion's JAX linker casts to the node's output dtype"
    ),
)

DUPLICATE_ARGUMENT_NAMES = Workaround(
    name="unique_name_generator repeats a name",
    reason=(
        "pytensor.link.utils.unique_name_generator gives a second 'W@Conv2D|conv5' the name "
        "W_Conv2D_conv5_1 even when a variable named 'W@Conv2D|conv5_1' already took it: "
        "SyntaxError: duplicate argument when the Numba or JAX code is generated; "
        "dandelion's linkers pass a generator that skips taken names"
    ),
)

DOT22SCALAR_DUPLICATES_PRODUCT = Workaround(
    name="local_dot22_to_dot22scalar duplicates a shared product",
    reason=(
        "the C backend's BLAS rewrite folds a scalar factor into the product it multiplies, "
        "scale * dot(x, y) -> Dot22Scalar(x, y, scale), without asking whether dot(x, y) has "
        "other clients; Adam's (1 - beta1) * g beside g**2 then computes every weight gradient "
        "twice (W4's C training step: 11 products instead of 8); dandelion's modes run the "
        "rewrite only on products the multiplication alone consumes"
    ),
)

SPECIFY_SHAPE_LEFT_AFTER_FUSION = Workaround(
    name="SpecifyShape left on a fused elementwise output",
    reason=(
        "local_useless_specify_shape runs before elementwise fusion; a SpecifyShape whose input "
        "gets its full static shape only from the fused Composite stays in the compiled graph "
        "(categorical_crossentropy's one-hot comparison at static shapes, on every backend): a "
        "run-time check of a shape the type already proves, and on Numba 4 s of W4's cold "
        "compile (25 -> 21 s) for its formatted message; dandelion's modes run the rewrite again "
        "after fusion"
    ),
)

ALL = (
    SCAN_PUSHOUT_TRUNCATED,
    SOFTMAX_IN_PYTHON_ON_C,
    ZERO_STEP_SCAN_GRADIENT,
    JAX_REDUCE_ACCUMULATOR_DTYPE,
    DUPLICATE_ARGUMENT_NAMES,
    DOT22SCALAR_DUPLICATES_PRODUCT,
    SPECIFY_SHAPE_LEFT_AFTER_FUSION,
)


# --------------------------------------------------------------------------------------
# Names in generated code


def collision_free_name_generator(external_names=(), suffix_sep="_"):
    """A drop-in for ``pytensor.link.utils.unique_name_generator`` that never repeats a name.

    Same names as PyTensor's where PyTensor's are unique (``x``, ``x_1``, ``x_2`` for three
    variables called ``x``); a suffixed name that is already taken (by a variable whose own
    name ends in ``_1``) moves on to the next free suffix.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> name = collision_free_name_generator()
    >>> [name(pt.scalar(n)) for n in ("w|a_1", "w|a", "w|a")]
    ['w_a_1', 'w_a', 'w_a_2']
    """
    from pytensor.link.utils import get_name_for_object

    taken = set(external_names)
    suffixes = Counter()
    names = {}

    def unique_name(x, force_unique=False):
        if not force_unique and x in names:
            return names[x]
        base = get_name_for_object(x)
        local = base
        while local in taken:
            suffixes[base] += 1
            local = f"{base}{suffix_sep}{suffixes[base]}"
        taken.add(local)
        names[x] = local
        return local

    return unique_name


# --------------------------------------------------------------------------------------
# JAX reductions in the output dtype
#
# The dispatch is registered for every CAReduce once (singledispatch has no other hook),
# but it changes only conversions that dandelion's JAX linker starts: they carry the
# keyword below, which PyTensor forwards to every node and into scan's inner graphs.

_OUTPUT_DTYPE_KEY = "dandelion_reduce_in_output_dtype"


class _AccumulatingIn:
    """A ``CAReduce`` seen with another ``acc_dtype``, for PyTensor's JAX conversion, which reads attributes only."""

    def __init__(self, op, acc_dtype):
        self._op = op
        self.acc_dtype = acc_dtype

    def __getattr__(self, name):
        return getattr(self._op, name)


def _register_jax_reduce_in_output_dtype():
    from pytensor.link.jax.dispatch.basic import jax_funcify
    from pytensor.tensor.elemwise import CAReduce

    pytensor_impl = jax_funcify.dispatch(CAReduce)
    if getattr(pytensor_impl, "_dandelion_output_dtype", False):
        return

    def careduce(op, node=None, **kwargs):
        in_output_dtype = kwargs.pop(_OUTPUT_DTYPE_KEY, False)
        if not in_output_dtype or node is None:
            return pytensor_impl(op, node=node, **kwargs)
        dtype = node.outputs[0].dtype
        if dtype.startswith("float"):
            # Accumulating in the output dtype itself: a cast to float64 and back
            # after the reduction would leave float64 in a float32 model's program.
            op = _AccumulatingIn(op, dtype)
        reduce = pytensor_impl(op, node=node, **kwargs)

        def reduce_in_output_dtype(x):
            return reduce(x).astype(dtype)

        return reduce_in_output_dtype

    careduce._dandelion_output_dtype = True
    jax_funcify.register(CAReduce)(careduce)


# --------------------------------------------------------------------------------------
# Scalar factors folded into products only when nothing else reads the product

_SINGLE_CLIENT_DOT22SCALAR = "dandelion_single_client_dot22scalar"


@functools.cache
def _register_single_client_dot22scalar():
    """Register, once and under a tag no PyTensor mode includes, PyTensor's rewrite behind a client check."""
    from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter
    from pytensor.tensor.blas import _dot22
    from pytensor.tensor.math import mul
    from pytensor.tensor.rewriting.blas import blas_optdb, local_dot22_to_dot22scalar

    @node_rewriter([mul])
    def single_client_dot22_to_dot22scalar(fgraph, node):
        # PyTensor's rewrite folds the scalar into the first Dot22 among the inputs
        products = [x for x in node.inputs if x.owner is not None and x.owner.op == _dot22]
        if not products or len(fgraph.clients[products[0]]) != 1:
            return False
        return local_dot22_to_dot22scalar.transform(fgraph, node)

    # same place in the BLAS sequence as PyTensor's (after the GEMM rewrite)
    blas_optdb.register(_SINGLE_CLIENT_DOT22SCALAR, dfs_rewriter(single_client_dot22_to_dot22scalar), position=12)


# --------------------------------------------------------------------------------------
# Useless SpecifyShapes removed once more, after fusion

_LATE_USELESS_SPECIFY_SHAPE = "dandelion_late_useless_specify_shape"


def _late_useless_specify_shape():
    """PyTensor's ``local_useless_specify_shape``, also seeing through a stale elementwise type.

    An elementwise node built before its constant inputs were folded keeps a partly unknown
    static shape (PyTensor 3.3's JAX mode, which does not fuse, leaves the one-hot ``Eq`` at
    (6, ?) against a folded (1, 4) constant); rebuilt from its current inputs it has the
    full shape, and the SpecifyShape on it proves nothing.
    """
    from pytensor.graph.rewriting.basic import node_rewriter
    from pytensor.tensor.elemwise import Elemwise
    from pytensor.tensor.rewriting.shape import local_useless_specify_shape
    from pytensor.tensor.shape import SpecifyShape

    @node_rewriter([SpecifyShape])
    def late_useless_specify_shape(fgraph, node):
        removed = local_useless_specify_shape.transform(fgraph, node)
        if removed:
            return removed
        producer = node.inputs[0].owner
        if producer is None or not isinstance(producer.op, Elemwise) or len(producer.outputs) != 1:
            return None
        rebuilt = producer.op.make_node(*producer.inputs).outputs[0]
        if rebuilt.type != node.outputs[0].type:
            return None
        return local_useless_specify_shape.transform(fgraph, node.op.make_node(rebuilt, *node.inputs[1:]))

    return late_useless_specify_shape


@functools.cache
def _register_late_useless_specify_shape():
    """Register, once and under a tag no PyTensor mode includes, the rewrite after fusion."""
    from pytensor.compile import optdb
    from pytensor.graph.rewriting.basic import dfs_rewriter

    # after elemwise_fusion (49), before the destroy handler and the inplace rewrites (49.5)
    optdb.register(_LATE_USELESS_SPECIFY_SHAPE, dfs_rewriter(_late_useless_specify_shape()), position=49.2)


def with_rewrite_fixes(mode):
    """``mode`` with dandelion's replacements for PyTensor rewrites that make graphs slower.

    Only the C backend runs the BLAS rewrites; on Numba and JAX that change selects nothing.
    """
    if DOT22SCALAR_DUPLICATES_PRODUCT.active:
        _register_single_client_dot22scalar()
        mode = mode.excluding("local_dot22_to_dot22scalar").including(_SINGLE_CLIENT_DOT22SCALAR)
    if SPECIFY_SHAPE_LEFT_AFTER_FUSION.active:
        _register_late_useless_specify_shape()
        mode = mode.including(_LATE_USELESS_SPECIFY_SHAPE)
    return mode


# --------------------------------------------------------------------------------------
# The linkers of dandelion's modes


class DandelionNumbaLinker(NumbaLinker):
    """PyTensor's Numba linker with collision-free names in the generated code."""

    def fgraph_convert(self, fgraph, **kwargs):
        if DUPLICATE_ARGUMENT_NAMES.active:
            kwargs.setdefault("unique_name", collision_free_name_generator(["numba_funcified_fgraph"]))
        return super().fgraph_convert(fgraph, **kwargs)


def with_jax_fixes(kwargs):
    """``kwargs`` for ``jax_funcify(fgraph, **kwargs)`` with the fixes of dandelion's JAX graphs.

    For every conversion of a dandelion graph to JAX: the JAX linker's and
    ``dandelion.distributed``'s, which hands the graph to JAX itself.
    """
    kwargs = dict(kwargs)
    if DUPLICATE_ARGUMENT_NAMES.active:
        kwargs.setdefault("unique_name", collision_free_name_generator(["jax_funcified_fgraph"]))
    if JAX_REDUCE_ACCUMULATOR_DTYPE.active:
        _register_jax_reduce_in_output_dtype()
        kwargs[_OUTPUT_DTYPE_KEY] = True
    return kwargs


class DandelionJAXLinker(JAXLinker):
    """PyTensor's JAX linker with collision-free names, reductions in their output dtype, and
    shared variables' NumPy values moved to the device once per value (``dandelion.jax_device_inputs``)."""

    def fgraph_convert(self, fgraph, input_storage, storage_map, **kwargs):
        return super().fgraph_convert(fgraph, input_storage, storage_map, **with_jax_fixes(kwargs))

    def create_thunk_inputs(self, storage_map):
        from dandelion.jax_device_inputs import cached_shared_inputs

        return cached_shared_inputs(self.fgraph.inputs, super().create_thunk_inputs(storage_map))


_DANDELION_LINKERS = {NumbaLinker: DandelionNumbaLinker, JAXLinker: DandelionJAXLinker, VMLinker: DandelionVMLinker}


def linker_for(mode):
    """``mode`` with dandelion's subclass of its linker when it is PyTensor's Numba, JAX or VM (C) one.

    The linker keeps its settings (a copy changes only its class); any other mode comes
    back unchanged.
    """
    ours = _DANDELION_LINKERS.get(type(mode.linker))
    if ours is None:
        return mode
    linker = copy.copy(mode.linker)
    linker.__class__ = ours
    return type(mode)(linker=linker, optimizer=mode.provided_optimizer)
