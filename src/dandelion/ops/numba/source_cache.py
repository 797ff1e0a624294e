"""Numba caches keyed on the source they compile, not on a file's modification time.

Numba keys the on-disk cache of a ``cfunc(..., cache=True)`` on the modification time
and size of the file that defines it, and PyTensor keys its cache of an Op's Numba
function on the Op's props. Neither sees an edit of the kernel modules the function
calls, so such an edit could leave a stale compiled kernel in use. Here both keys hold
a hash of the source of every module a kernel family compiles:

- ``source_cfunc(signature, modules)`` is ``numba.cfunc(signature, cache=True)`` with
  ``SourceHashLocator`` finding its cache: the cache's source stamp is the hash, so a
  changed module recompiles and an unchanged one loads.
- ``register_numba_op(op_type, modules)`` registers an Op's Numba function with
  PyTensor's ``register_funcify_and_cache_key`` under a key of the Op's type, props, the
  node's dtypes and the hash (the one registration style of dandelion's Numba Ops).

A family lists its modules once, e.g. ``CONV_SOURCES`` in ``dandelion.ops.numba.conv_cfuncs``
(every module whose code the compiled functions contain or call: wrappers, kernels,
cfuncs, helpers). To move another family onto these keys, replace its
``@cfunc(signature, cache=True)`` by ``@source_cfunc(signature, SOURCES)`` and its
registration by ``@register_numba_op(OpType, SOURCES)``; every family does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import cache
from pathlib import Path
from weakref import WeakKeyDictionary

import numba
from numba.core.caching import CacheImpl, _CacheLocator
from pytensor import config
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key

from dandelion.ops.numba import blas


def module_source(name):
    """The bytes of module ``name``'s source file (read without importing it)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not os.path.exists(spec.origin):
        raise ValueError(f"source_cache: module {name!r} has no source file to hash")
    return Path(spec.origin).read_bytes()


@cache
def source_hash(modules):
    """sha256 hex digest of the sources of ``modules`` (a tuple of module names), in order."""
    digest = hashlib.sha256()
    for name in modules:
        source = module_source(name)
        digest.update(f"{name}:{len(source)}:".encode())
        digest.update(source)
    if "dandelion.ops.numba.blas" in modules:
        # which product ``dot_into`` is (the C library's or the Numba functions') is chosen when
        # the module loads, by the same source: a kernel cached with one must not load with the other
        digest.update(f"dot_into:{blas.dot_into.py_func.__name__}".encode())
    return digest.hexdigest()


def _cache_dir():
    """``NUMBA_CACHE_DIR`` when set (as Numba's own locators), else beside PyTensor's Numba cache."""
    if numba.config.CACHE_DIR:
        return Path(numba.config.CACHE_DIR)
    return Path(config.base_compiledir) / "numba" / "dandelion_cfuncs"


class SourceHashLocator(_CacheLocator):
    """Numba cache locator of the functions given to ``source_cfunc``: stamped with their source hash."""

    stamps: WeakKeyDictionary = WeakKeyDictionary()

    def __init__(self, py_func, py_file, stamp):
        self._py_file = py_file  # read by Numba's warning about an uncachable function
        self._path = _cache_dir() / self.get_suitable_cache_subpath(py_file)
        self._lineno = py_func.__code__.co_firstlineno
        self._stamp = stamp

    def get_cache_path(self):
        return str(self._path)

    def get_source_stamp(self):
        return self._stamp

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        stamp = cls.stamps.get(py_func)
        if stamp is None:
            return None
        locator = cls(py_func, py_file, stamp)
        try:
            locator.ensure_cache_path()
        except OSError:
            # as Numba's locators: an unwritable cache directory means no cache, not an error
            return None
        return locator


if SourceHashLocator not in CacheImpl._locator_classes:
    CacheImpl._locator_classes.insert(0, SourceHashLocator)


def source_cfunc(signature, modules):
    """Decorator: ``numba.cfunc(signature, cache=True)`` cached under the hash of ``modules``' source."""
    stamp = source_hash(tuple(modules))

    def decorate(py_func):
        SourceHashLocator.stamps[py_func] = stamp
        return numba.cfunc(signature, cache=True)(py_func)

    return decorate


def numba_op_cache_key(op, node, modules):
    """PyTensor's cache key of an Op's Numba function: its type, props, dtypes and source hash.

    The dtypes belong in the key because the funcify functions pick their compiled
    kernels by dtype (PyTensor's default key holds the type and props only).
    """
    dtypes = tuple(str(v.type.dtype) for v in (*node.inputs, *node.outputs)) if node is not None else ()
    props = tuple((name, repr(getattr(op, name))) for name in getattr(op, "__props__", ()))
    identity = (type(op).__module__, type(op).__qualname__, props, dtypes, source_hash(tuple(modules)))
    return hashlib.sha256(repr(identity).encode()).hexdigest()


def register_numba_op(op_type, modules):
    """Decorator registering ``funcify(op, node, **kwargs) -> njit function`` for ``op_type``.

    PyTensor's cache key of the returned function is ``numba_op_cache_key``: the Op's
    type and props, the node's dtypes and the source hash of ``modules``, which must
    include the module defining ``funcify``.
    """

    def decorate(funcify):
        def funcify_with_key(op, node=None, **kwargs):
            return funcify(op, node=node, **kwargs), numba_op_cache_key(op, node, modules)

        funcify_with_key.__name__ = funcify.__name__
        funcify_with_key.__doc__ = funcify.__doc__
        register_funcify_and_cache_key(op_type)(funcify_with_key)
        return funcify

    return decorate
