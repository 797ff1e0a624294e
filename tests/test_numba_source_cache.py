"""``dandelion.ops.numba.source_cache``: Numba caches keyed on the source of the modules a
kernel family compiles, not on the defining file's modification time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytensor.tensor as pt
from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

from dandelion.ops.numba import pool_cfuncs, source_cache
from dandelion.ops.pool import PoolOp

FAMILY = textwrap.dedent(
    """
    import sys
    from numba import cfunc, types

    import kern
    from dandelion.ops.numba.source_cache import source_cfunc

    signature = types.int64(types.int64)


    @source_cfunc(signature, ("kern", "fam"))
    def keyed(x):
        return kern.bump(x)


    # control: Numba's own cache, stamped with this file's modification time and size only
    @cfunc(signature, cache=True)
    def plain(x):
        return kern.bump(x)


    print(keyed.ctypes(1), keyed.cache_hits, plain.ctypes(1), plain.cache_hits)
    """
)
KERNEL = "import numba\n\n\n@numba.njit\ndef bump(x):\n    return x + {step}\n"


def run_family(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    result = subprocess.run([sys.executable, str(tmp_path / "fam.py")], env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return tuple(int(v) for v in result.stdout.split())


def test_kernel_edit_misses_the_cache_and_unchanged_source_hits(tmp_path):
    (tmp_path / "fam.py").write_text(FAMILY)
    (tmp_path / "kern.py").write_text(KERNEL.format(step=1))
    assert run_family(tmp_path) == (2, 0, 2, 0)  # both compiled
    assert run_family(tmp_path) == (2, 1, 2, 1)  # both loaded
    # an edit of the kernel module only: the defining file keeps its time and size
    (tmp_path / "kern.py").write_text(KERNEL.format(step=5))
    keyed, keyed_hits, plain, plain_hits = run_family(tmp_path)
    assert (keyed, keyed_hits) == (6, 0), "the source-keyed cache missed the kernel edit"
    assert (plain, plain_hits) == (2, 1), "control: Numba's mtime-keyed cache should have been stale"


def test_source_hash_follows_every_listed_module(monkeypatch):
    modules = ("dandelion.ops.geometry", "dandelion.ops.numba.pool_kernels")
    before = source_cache.source_hash(modules)
    original = source_cache.module_source
    source_cache.source_hash.cache_clear()
    monkeypatch.setattr(
        source_cache, "module_source", lambda name: original(name) + (b"# edited\n" if name.endswith("pool_kernels") else b"")
    )
    try:
        assert source_cache.source_hash(modules) != before
    finally:
        source_cache.source_hash.cache_clear()


def test_pytensor_cache_key_holds_the_family_source_version(monkeypatch):
    """PyTensor's key of an Op's Numba function changes with the family's source, not only its props."""
    x = pt.tensor("x", shape=(None, 4, 4), dtype="float64")
    node = PoolOp(2, (2, 2))(x).owner
    _, key = numba_funcify_and_cache_key(node.op, node=node)
    assert pool_cfuncs.POOL_SOURCES and "dandelion.ops.numba.pool" in pool_cfuncs.POOL_SOURCES
    monkeypatch.setattr(source_cache, "source_hash", lambda modules: "edited")
    _, edited_key = numba_funcify_and_cache_key(node.op, node=node)
    assert key is not None and edited_key is not None and key != edited_key


def test_pytensor_cache_key_holds_the_dtypes():
    """The funcify functions pick their kernels by dtype: a float32 node must not reuse a float64 one's code."""
    keys = []
    for dtype in ("float32", "float64"):
        node = PoolOp(2, (2, 2))(pt.tensor("x", shape=(None, 4, 4), dtype=dtype)).owner
        keys.append(numba_funcify_and_cache_key(node.op, node=node)[1])
    assert None not in keys and keys[0] != keys[1]
