"""gzip + pickle, the Theano-era weight format (``util.gpickle``).

``load`` reads old weight files with a *restricted* unpickler by default: it rebuilds
lists, tuples, dicts, sets, strings, bytes, numbers, None, booleans, NumPy arrays,
dtypes and scalars (what ``Module.get_weights()`` lists of ``[array, name]`` pairs
pickle to), and refuses every other class or function a file names with
``UnsafePickleError``, before calling it. A crafted pickle can otherwise run any code
on load. ``load(path, trusted=True)`` unpickles arbitrary objects: only for files you
made yourself. The checkpoint format (``dandelion.util.checkpoint``) needs no pickle
at all and is the choice for new work.

``dump`` writes atomically (``dandelion.util.atomic``): a kill or a pickling error
half way leaves the previous file intact.
"""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np

from dandelion.util.atomic import atomic_write


class UnsafePickleError(pickle.UnpicklingError):
    """The file names a class or function the restricted loader does not rebuild."""


def _numpy_core_attribute(module, name):
    # NumPy 2 moved numpy.core to numpy._core; pickles name either one.
    for candidate in ("numpy._core." + module, "numpy.core." + module):
        try:
            imported = __import__(candidate, fromlist=[name])
        except ImportError:
            continue
        if hasattr(imported, name):
            return getattr(imported, name)
    raise ImportError(f"numpy has no {module}.{name}")  # pragma: no cover


def _allowed():
    import builtins
    import codecs
    import collections

    allowed = {}
    for name in ("list", "tuple", "dict", "set", "frozenset", "bytearray", "complex", "int", "float", "str", "bytes", "bool"):
        allowed[("builtins", name)] = allowed[("__builtin__", name)] = getattr(builtins, name)  # Python 2 names too
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    # protocol <= 2 pickles of bytes written by Python 3
    allowed[("_codecs", "encode")] = codecs.encode
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")):
        function = _numpy_core_attribute(module, name)
        allowed[(f"numpy.core.{module}", name)] = function
        allowed[(f"numpy._core.{module}", name)] = function
    # NumPy's dtype classes (numpy.dtypes.Float32DType, ...) that NumPy 2 pickles name
    for dtype_class in {type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGSUV"}:
        allowed[("numpy.dtypes", dtype_class.__name__)] = dtype_class
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed = None

    def __init__(self, file, filename, **kwargs):
        super().__init__(file, **kwargs)
        self._filename = filename

    def find_class(self, module, name):
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _allowed()
        try:
            return _RestrictedUnpickler._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"gpickle.load: {self._filename!r} names {module}.{name}, which the restricted loader does not "
                "rebuild (it loads lists, tuples, dicts, str, numbers and NumPy arrays, what weight files hold); "
                "if you made this file yourself, load it with gpickle.load(path, trusted=True)"
            ) from None


def dump(data, filename, compresslevel=9):
    """Pickle ``data`` into a gzip file, atomically when ``filename`` is a path.

    Parameters
    ----------
    data : any picklable object, e.g. ``module.get_weights()``
    filename : str, os.PathLike or binary file object
    compresslevel : int, 0 to 9
    """

    def write(file):
        with gzip.GzipFile(fileobj=file, mode="wb", compresslevel=compresslevel) as zipped:
            pickle.dump(data, zipped, protocol=pickle.HIGHEST_PROTOCOL)

    if isinstance(filename, (str, bytes, os.PathLike)):
        atomic_write(filename, write)
    else:
        write(filename)


def load(filename, trusted=False):
    """Read a file written by ``dump`` (or by the Theano-era library).

    Parameters
    ----------
    filename : str, os.PathLike or binary file object
    trusted : bool
        ``False`` (default): the restricted loader (lists, tuples, dicts, str, numbers,
        NumPy arrays); anything else raises ``UnsafePickleError``. ``True`` unpickles
        arbitrary objects, which runs whatever code the file names: only for files you
        trust.

    Returns
    -------
    The pickled object, e.g. a list of ``[array, name]`` pairs for ``set_weights``.

    Raises
    ------
    UnsafePickleError
        The file names a class or function outside the restricted set.
    """
    name = os.fspath(filename) if isinstance(filename, (str, bytes, os.PathLike)) else getattr(filename, "name", filename)
    with gzip.open(filename, "rb") as file:
        # Files written under Python 2 by the old library hold byte strings.
        if trusted:
            return pickle.load(file, encoding="latin1")
        return _RestrictedUnpickler(file, name, encoding="latin1").load()
