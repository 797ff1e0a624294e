"""A precompiled header for the includes that open every C module PyTensor generates.

Each module's source starts with the same includes (``Python.h``, PyTensor's helper,
NumPy's array headers, ``<vector>``, ``<algorithm>``), and g++ spends 0.24 s parsing them:
most of a small module's 0.27 s, a third of an elementwise one's. A training graph
compiles dozens of modules from a cold cache (W5's: 56, 35 s of compiler time).
``precompiled_prelude(arguments)`` builds those includes once into a g++ precompiled
header (``dandelion_prelude.h.gch`` in PyTensor's compile directory, one per compiler,
flag set and include list; keyed on the versions and include folders too, since g++
does not notice that the headers inside one changed) and returns compile arguments
whose source includes it first. ``dandelion.parallel_c_compile`` uses it for the modules
it compiles.

The module's own includes stay in its source after it; their include guards make them
no-ops. A header g++ cannot use (other flags) it parses as text instead, so a module
compiles to the same code either way, only slower. Compilers other than GCC's, and any
failure to build the header, leave the arguments unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from functools import cache

import numpy as np
import pytensor
from pytensor import config
from pytensor.link.c.cmodule import std_include_dirs

HEADER = "dandelion_prelude.h"
# bump when the header's construction changes, so stale headers are not picked up
LAYOUT_VERSION = 1
_builds = {}
_builds_lock = threading.Lock()

__all__ = ["HEADER", "header_flags", "leading_includes", "precompiled_prelude"]


def leading_includes(src_code):
    """The ``#include`` lines a module's source opens with, up to its first other line."""
    lines = []
    for line in src_code.splitlines():
        if not line.strip():
            continue
        if not line.startswith("#include"):
            break
        lines.append(line)
    return lines


@cache
def _compiler_version(compiler):
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _mtime(folder):
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


def _is_gcc_compiler():
    compiler = config.cxx
    if not compiler or "clang" in os.path.basename(compiler):
        return False
    version = _compiler_version(compiler)
    return "Free Software Foundation" in version or "GCC" in version


def header_flags(preargs, include_dirs):
    """The flags ``compile_str`` compiles a module with, without output and linking: a header built
    with them is one g++ may use for that module (the test suite's header is built with them too)."""
    # linker options (-Wl,...) do not shape a header, and g++ would try to link one with them
    preargs = [flag for flag in preargs or [] if not flag.startswith("-Wl,")]
    if config.cmodule__remove_gxx_opt:
        preargs = [flag for flag in preargs if not flag.startswith("-O")]
    include_dirs = [d for d in include_dirs or [] if d] + std_include_dirs()
    # compile_str passes -g and hides symbols; a header must be built with the same
    return ["-g", *preargs, *(f"-I{d}" for d in include_dirs), "-fvisibility=hidden"]


def _header_folder(includes, flags):
    # g++ checks a header's flags, not whether the headers it holds changed since: the
    # versions and the include folders' modification times (an upgrade rewrites them) do
    versions = [sys.version, np.__version__, pytensor.__version__, _compiler_version(config.cxx)]
    folders = [f"{flag}:{_mtime(flag[2:])}" for flag in flags if flag.startswith("-I")]
    identity = "\n".join([str(LAYOUT_VERSION), config.cxx, *versions, *includes, *flags, *folders])
    key = hashlib.sha256(identity.encode()).hexdigest()[:20]
    return os.path.join(config.compiledir, "dandelion_prelude_pch", key)


def _build(folder, includes, flags):
    """Write ``HEADER`` and its ``.gch`` into ``folder``; True when both exist afterwards."""
    if os.path.exists(os.path.join(folder, HEADER + ".gch")):
        return True
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="building-", dir=os.path.dirname(folder))
    try:
        header = os.path.join(scratch, HEADER)
        with open(header, "w") as file:
            file.write("\n".join(includes) + "\n")
        command = [config.cxx, *flags, "-x", "c++-header", header, "-o", header + ".gch"]
        done = subprocess.run(command, capture_output=True, timeout=300)
        if done.returncode != 0:
            return False
        try:
            os.rename(scratch, folder)  # atomic: another process's finished header wins
        except OSError:
            pass
        return os.path.exists(os.path.join(folder, HEADER + ".gch"))
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _header_for(includes, flags):
    """The folder holding a usable header for ``includes`` under ``flags``, or None; built once per process."""
    folder = _header_folder(includes, flags)
    with _builds_lock:
        event = _builds.get(folder)
        owner = event is None
        if owner:
            event = _builds[folder] = [threading.Event(), False]
    if owner:
        event[1] = _build(folder, includes, flags)
        event[0].set()
    else:
        event[0].wait()
    return folder if event[1] else None


def precompiled_prelude(arguments):
    """``compile_str`` keyword arguments whose source starts by including the precompiled header.

    ``arguments`` holds at least ``src_code``, ``include_dirs`` and ``preargs``; it is
    returned unchanged where no header can be used (see the module's docstring).
    """
    includes = leading_includes(arguments["src_code"])
    if not includes or not _is_gcc_compiler():
        return arguments
    folder = _header_for(includes, header_flags(arguments.get("preargs"), arguments.get("include_dirs")))
    if folder is None:
        return arguments
    return dict(
        arguments,
        src_code=f'#include "{HEADER}"\n' + arguments["src_code"],
        include_dirs=[folder, *(arguments.get("include_dirs") or [])],
    )
