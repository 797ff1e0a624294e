"""A precompiled header for the C modules the suite compiles (gcc's ``.gch``).

Nearly every C module PyTensor writes starts with the same includes (Python, NumPy,
``<vector>``), and at ``-O0`` reading them is half of each compile: 0.31 s of 0.70 s for
a small elementwise module, 2026-12-03, and a cold c,none run compiles about 760 modules.
gcc looks for ``Python.h.gch`` in each include directory before ``Python.h``, so a folder
holding a precompiled header of those includes under that name, put first on the include
path (``gcc__cxxflags``), stands in for them. gcc uses it only where the module's first
line includes Python.h and the compile options match its own; anywhere else it reads the
real headers, so a stale or unsuitable header costs only the time it would have saved.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytensor
from pytensor.link.c.cmodule import GCC_compiler

from dandelion.c_prelude_pch import header_flags

# The includes PyTensor's C modules open with (pytensor.link.c), in their order.
COMMON_INCLUDES = (
    "<Python.h>",
    '"pytensor_mod_helper.h"',
    "<math.h>",
    "<numpy/arrayobject.h>",
    "<numpy/arrayscalars.h>",
    "<numpy/npy_math.h>",
    "<vector>",
    "<algorithm>",
)

# Options of the Ops' own that change the predefined macros, which must match the
# header's: most elementwise Ops compile with -fno-math-errno (__NO_MATH_ERRNO__), and
# dandelion's float32 FlatElemwise adds -fsingle-precision-constant (__GCC_IEC_559_COMPLEX).
OPTION_VARIANTS = {
    "plain": [],
    "no-math-errno": ["-fno-math-errno"],
    "single-precision-constant": ["-fsingle-precision-constant"],
    "no-math-errno-single-precision-constant": ["-fno-math-errno", "-fsingle-precision-constant"],
}


def use_precompiled_header(folder):
    """Build (once per compiler command) and put first on PyTensor's include path.

    Returns the header's folder, or ``None`` when gcc could not build it (then nothing
    changes). Run before the first C module compiles; the folder's name is a hash of
    the compile command, so another compiler or other flags get a header of their own.
    """
    config = pytensor.config
    source = "".join(f"#include {name}\n" for name in COMMON_INCLUDES)

    def command(output):
        # As pytensor.link.c.cmodule.GCC_compiler.compile_str builds it, up to its output
        flags = header_flags(GCC_compiler.compile_args(), [])
        return [config.cxx, *flags, "-x", "c++-header", "-o", output]

    original = config.gcc__cxxflags
    key = hashlib.sha256(repr([command("{}"), OPTION_VARIANTS, source]).encode()).hexdigest()[:16]
    header_folder = Path(folder) / key
    # the modules' command then holds this flag too; an include path leaves the header valid
    config.gcc__cxxflags = f"{original} -I{header_folder}".strip()
    # gcc tries each header in a ``Python.h.gch`` folder and uses the first that matches
    variants = header_folder / "Python.h.gch"
    for name, extra in OPTION_VARIANTS.items():
        target = variants / f"{name}.gch"
        if target.exists():
            continue
        variants.mkdir(parents=True, exist_ok=True)
        # two workers may build it at once: each writes its own files, the rename is atomic
        with tempfile.TemporaryDirectory(dir=header_folder) as scratch:
            listing = Path(scratch) / "common_includes.h"
            listing.write_text(source)
            partial = Path(scratch) / target.name
            built = subprocess.run([*command(partial), *extra, listing], capture_output=True)
            if built.returncode != 0:
                config.gcc__cxxflags = original
                return None
            os.replace(partial, target)
    return header_folder
