"""Every difference between the supported PyTensor lines (3.0.x and 3.3.x) lives here.

Nothing else in the package may test ``pytensor.__version__`` or probe PyTensor's API;
import the adapters below instead. Workarounds of PyTensor bugs, with the lines each
applies to, live beside this file in ``_workarounds.py``.
"""

from __future__ import annotations

import warnings

import pytensor
from pytensor.graph.op import Op

PYTENSOR_VERSION = tuple(int(part) for part in pytensor.__version__.split(".")[:2])


class ShapeInferringOp(Op):
    """Base for dandelion's Ops: one ``infer_shape`` hook for both PyTensor lines.

    PyTensor 3.0 calls ``infer_shape(fgraph, node, shapes)`` and 3.3 calls
    ``infer_shape(node, shapes)``. Subclasses implement ``output_shapes(node, shapes)``.
    Gradients go in ``pullback(inputs, outputs, cotangents)``, which both lines call.
    """

    def infer_shape(self, *args):
        node, input_shapes = args[-2:]
        return self.output_shapes(node, input_shapes)

    def output_shapes(self, node, input_shapes):  # pragma: no cover - abstract
        raise NotImplementedError


def scan(fn, **kwargs):
    """``pytensor.scan`` returning outputs only.

    Both lines accept ``return_updates``; 3.x warns unless it is False, and the
    default will flip. Recurrences in dandelion never produce scan updates.
    """
    return pytensor.scan(fn, return_updates=False, **kwargs)


def floatx_is_user_choice() -> bool:
    """Whether the user chose PyTensor's ``floatX``.

    True when it came from ``PYTENSOR_FLAGS`` or an rc file (the parameter is then not
    marked default), or when code assigned a value other than PyTensor's default
    (assignment does not clear the default mark, so assigning the default itself cannot
    be told apart from not choosing).
    """
    param = pytensor.config._config_var_dict.get("floatX")
    if param is None:
        return False
    return not getattr(param, "is_default", True) or pytensor.config.floatX != param.default


def read_default_update(variable):
    """The ``default_update`` a shared variable carries (Theano's implicit update).

    Reading is not deprecated, only setting through the property is; a user who sets it
    (the Theano-era Tutorial II did) makes that call themselves.
    """
    expression = getattr(variable, "default_update", None)
    if expression is None:
        expression = getattr(variable.tag, "dandelion_default_update", None)
    return expression


def attach_default_update(variable, expression) -> None:
    """Give a shared variable an implicit update without the deprecated setter.

    Used for random-number states only (dropout's step counter), so that Theano-era code
    compiling with ``pytensor.function(..., no_default_updates=False)`` still sees new
    dropout masks on every call, as it did with ``RandomStreams``. PyTensor 3.0 and 3.3 store the value in
    ``_default_update``; should a later line drop it, ``dandelion.function`` still finds
    the tag.
    """
    variable.tag.dandelion_default_update = expression
    if hasattr(variable, "_default_update"):
        variable._default_update = expression


def compile_without_implicit_updates(inputs, outputs, updates, mode, **kwargs):
    """``pytensor.function`` applying exactly ``updates`` and no ``default_update``.

    ``dandelion.function`` gathers implicit updates itself, so it must switch PyTensor's
    own gathering off; PyTensor 3 deprecates the ``no_default_updates`` switch (a warning
    about PyTensor's API, not the user's code), so it is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no_default_updates.*", category=DeprecationWarning)
        return pytensor.function(inputs, outputs, updates=updates, mode=mode, no_default_updates=True, **kwargs)


# --------------------------------------------------------------------------------------
# Shared storage that a failing call overwrote.
#
# ``pytensor.function`` marks every shared variable with an update as mutable, so the
# inplace rewrites may compute the update *into the variable's own buffer* (BatchNorm's
# ``(1 - a) * mean + a * batch_mean``, Adam's moments, the step counters). The VM runs
# such a node as soon as its inputs are ready, possibly before a later node raises
# (x and y of different batch sizes): on C the nodes before the failure in toposort
# order, on Numba (one compiled function, another order) others. PyTensor hands a
# non-inplace update to its variable only after the whole graph has run, so the
# variables that an inplace node destroys are the only ones a failed call can change.
# JAX never writes into its inputs (no destroy handler on its graphs).


def destroyed_update_containers(function):
    """``[(container, destroyer node)]`` of the shared variables ``function`` overwrites in place.

    Parameters
    ----------
    function : a compiled ``pytensor`` ``Function``

    Returns
    -------
    list of ``(Container, Apply)``: each input with an update that a node of the compiled
    graph destroys (directly or through a view), and that node. Both PyTensor lines keep
    ``fgraph.update_mapping`` (output index -> input index), the destroy handler's
    ``destroyers`` and one input container per fgraph input, in order.
    """
    fgraph = function.maker.fgraph
    mapping = getattr(fgraph, "update_mapping", None) or {}
    if not mapping or not hasattr(fgraph, "destroyers"):
        return []
    found = []
    for index in sorted(set(mapping.values())):
        destroyers = fgraph.destroyers(fgraph.inputs[index])
        if destroyers:
            found.append((function.input_storage[index], destroyers[0]))
    return found


def static_shape_op_types():
    """Op classes that cannot raise at run time once every input and output shape is static.

    Elementwise maps, dimension shuffles, reductions and the dense products: their shape
    checks already ran when the graph was built, and their float arithmetic does not
    raise (out of memory aside).
    """
    from pytensor.scalar.basic import ScalarOp
    from pytensor.tensor import blas
    from pytensor.tensor.basic import TensorFromScalar
    from pytensor.tensor.elemwise import CAReduce, DimShuffle, Elemwise
    from pytensor.tensor.math import Dot

    names = ("Dot22", "Dot22Scalar", "Gemm", "Gemv", "Ger")
    types = (Elemwise, DimShuffle, CAReduce, Dot, ScalarOp, TensorFromScalar)
    try:  # PyTensor 3.3 fuses elementwise maps with the reductions they feed
        from pytensor.tensor.rewriting.fused_elemwise import FusedElemwise

        types += (FusedElemwise,)
    except ImportError:
        pass
    return types + tuple(getattr(blas, n) for n in names if hasattr(blas, n))


def execution_order(function):
    """The compiled graph's nodes in the order its linker runs them, or None if unknown.

    The C VM and the Numba linker run ``linker.schedule(fgraph)`` (the toposort unless a
    scheduler was given) from start to end; lazy nodes (``IfElse``) make a VM skip and
    reorder, so there the order is unknown.
    """
    try:  # PyTensor 3.3 moved IfElse and deprecated the old path
        from pytensor.conditional.op import IfElse
    except ImportError:
        from pytensor.ifelse import IfElse

    fgraph = function.maker.fgraph
    linker = getattr(function.maker, "linker", None)
    if linker is None or not hasattr(linker, "schedule"):
        return None
    order = linker.schedule(fgraph)
    if any(isinstance(node.op, IfElse) for node in order):
        return None
    return order


# --------------------------------------------------------------------------------------
# dandelion's Numba and JAX kernels, registered without importing Numba or JAX with dandelion.
#
# A finder on ``sys.meta_path`` runs the registrations right after PyTensor's dispatch
# package for that backend is first imported (its linker imports it before converting a
# graph; the graph rewrites do not need it). They register dispatches for dandelion's own
# Ops only, so no other graph changes. Importing Numba took 62 MB and JAX 150 MB of a
# process's memory (AMD EPYC): a JAX user's process need not hold Numba, nor a Numba
# user's JAX.

NUMBA_DISPATCH_MODULE = "pytensor.link.numba.dispatch"
JAX_DISPATCH_MODULE = "pytensor.link.jax.dispatch"

_AFTER_DISPATCH = {NUMBA_DISPATCH_MODULE: [], JAX_DISPATCH_MODULE: []}


class _AfterDispatchImport:
    """Meta-path finder: run the queued callbacks right after a backend's dispatch package is imported."""

    def find_spec(self, fullname, path, target=None):
        if not _AFTER_DISPATCH.get(fullname):
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            callbacks = _AFTER_DISPATCH[fullname]
            while callbacks:
                callbacks.pop(0)()

        spec.loader.exec_module = exec_then_register
        return spec


def after_dispatch_import(module_name, callback) -> None:
    """Run ``callback`` once PyTensor's dispatch package ``module_name`` (one of the two above) is
    imported: now, if it already is."""
    import sys

    if module_name in sys.modules:
        callback()
        return
    _AFTER_DISPATCH[module_name].append(callback)
    if not any(isinstance(finder, _AfterDispatchImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterDispatchImport())
