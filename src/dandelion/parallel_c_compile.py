"""A graph's C modules compiled side by side before PyTensor links it (the C backend's cold start).

PyTensor's C linker compiles one module per distinct node, one after another, holding the
compile directory's lock while the compiler runs: W3's training step compiles 39 modules
of 0.5 to 0.9 s each, 21 s on a machine whose other cores sit idle. ``precompile_nodes``
finds the nodes whose modules the cache lacks, runs the compiler for them on a thread pool
(one job per available core), and files each module in PyTensor's cache as
``ModuleCache.module_from_key`` does; linking then finds them there. Only the compiler runs
outside the lock, each module in a new directory of its own; filing takes the lock and
first rereads the cache, so a module another process filed meanwhile is kept and ours
dropped. Keys and sources come from the ``CLinker`` PyTensor itself builds for a node
(``COp.make_c_thunk``), so a module filed here is the one linking asks for; anything that
fails here (a node without C code, a compile error) is left to the linker, which compiles
or reports it as it always does.

Two more savings apply to the modules compiled here (on one core too, where the pool has
one thread): the includes every module opens with come from a precompiled header
(``dandelion.c_prelude_pch``), and ``-g0`` drops the debug information PyTensor's ``-g``
asks for (the same machine code, a quarter less compiler time on large modules; switch
this module off to keep it). W5's cold training compile: 23.8 -> 17.9 s.

``DANDELION_PARALLEL_C_COMPILE=0`` turns it off; ``DandelionVMLinker`` (the C backend's
linker in ``dandelion.function``) calls it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

from pytensor.compile.compilelock import lock_ctx
from pytensor.graph.fg import FunctionGraph
from pytensor.link.c import cmodule
from pytensor.link.c.basic import CLinker, get_module_cache
from pytensor.link.c.op import COp
from pytensor.link.vm import VMLinker

from dandelion.c_prelude_pch import precompiled_prelude

ENV_SWITCH = "DANDELION_PARALLEL_C_COMPILE"


def compile_workers():
    """How many compilers to run at once: the cores this process may use (0 when switched off)."""
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return 0
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Job:
    """One missing module: the node's linker, its cache key and source hash, where it compiles."""

    def __init__(self, linker, key, module_hash):
        self.linker, self.key, self.module_hash = linker, key, module_hash
        module = linker.get_dynamic_module()  # code generation: on the calling thread
        self.arguments = {
            "module_name": module.code_hash,
            "src_code": module.code(),
            "include_dirs": linker.header_dirs(),
            "lib_dirs": linker.lib_dirs(),
            "libs": linker.libraries(),
            # -g0 after compile_str's -g: the same machine code without debug information,
            # a quarter less compiler time on the largest modules
            "preargs": [*linker.compile_args(), "-g0"],
        }
        self.location = None
        self.module = None


def _missing_module(node, cache):
    """``(linker, key, module_hash)`` of the node's module when the cache lacks it, else None.

    None too for a node PyTensor compiles no cacheable module for (not a ``COp``, float16,
    an unversioned key).
    """
    if not isinstance(node.op, COp):
        return None
    if any(getattr(v.type, "dtype", "") == "float16" for v in node.inputs + node.outputs):
        return None  # PyTensor declines C code for float16
    # as COp.make_c_thunk builds it (the VM linker passes no no_recycling)
    linker = CLinker().accept(FunctionGraph(node.inputs, node.outputs), no_recycling=[])
    key = linker.cmodule_key()
    if not key or not key[0]:
        return None  # unversioned: PyTensor keeps such modules per process
    if cache._get_from_key(key) is not None:
        return None
    module_hash = cmodule.get_module_hash(linker.get_src_code(), key)
    if cache._get_from_hash(module_hash, key) is not None:
        return None
    return linker, key, module_hash


def missing_jobs(nodes, cache):
    """One ``_Job`` per distinct missing module among ``nodes`` (nodes sharing a module share it)."""
    found = {}
    for node in nodes:
        try:
            missing = _missing_module(node, cache)
        except Exception:  # noqa: BLE001 - no C code, or any other trouble: the linker decides
            continue
        if missing is not None and missing[2] not in found:
            found[missing[2]] = _Job(*missing)
    return list(found.values())


@contextlib.contextmanager
def _one_import_at_a_time():
    """``cmodule.dlimport`` serialised: it edits ``sys.path`` and the warning filters around the import."""
    original = cmodule.dlimport
    lock = threading.Lock()

    def dlimport(*args, **kwargs):
        with lock:
            return original(*args, **kwargs)

    cmodule.dlimport = dlimport
    try:
        yield
    finally:
        cmodule.dlimport = original


def _compile(job):
    job.module = None
    with_header = precompiled_prelude(job.arguments)
    # with the precompiled header first; should that ever fail, as PyTensor would compile it
    for arguments in [with_header] + ([job.arguments] if with_header is not job.arguments else []):
        try:
            job.module = job.linker.c_compiler().compile_str(location=job.location, **arguments)
            return job
        except Exception:  # noqa: BLE001 - the linker compiles it again and reports the error
            continue
    return job


def _file(jobs, cache):
    """File compiled modules in the cache, under its lock, as ``module_from_key`` does."""
    with lock_ctx():
        cache.refresh(cleanup=False)
        for job in jobs:
            if job.module is None:
                shutil.rmtree(job.location, ignore_errors=True)
                continue
            taken = cache._get_from_key(job.key) is not None or cache._get_from_hash(job.module_hash, job.key) is not None
            if taken:
                shutil.rmtree(job.location, ignore_errors=True)  # filed by another process meanwhile
                continue
            cache.module_from_name[job.module.__file__] = job.module
            cache.module_hash_to_key_data[job.module_hash] = cache._add_to_cache(job.module, job.key, job.module_hash)
            cache.stats[2] += 1


def precompile_nodes(nodes, workers=None):
    """Compile the missing C modules of ``nodes`` in parallel; returns how many were filed."""
    workers = compile_workers() if workers is None else workers
    if workers < 1:
        return 0
    cache = get_module_cache()
    jobs = missing_jobs(nodes, cache)
    if not jobs:
        return 0
    for job in jobs:
        job.location = cmodule.dlimport_workdir(cache.dirname)
    with _one_import_at_a_time(), ThreadPoolExecutor(min(workers, len(jobs))) as pool:
        done = list(pool.map(_compile, jobs))
    _file(done, cache)
    return sum(job.module is not None for job in done)


class DandelionVMLinker(VMLinker):
    """PyTensor's VM linker (the C backend) that compiles a graph's missing C modules in parallel first."""

    def make_all(self, *args, **kwargs):
        if self.c_thunks is not False:
            precompile_nodes(self.schedule(self.fgraph))
        return super().make_all(*args, **kwargs)
