"""The C modules' common includes as a g++ precompiled header (``dandelion.c_prelude_pch``).

g++ uses a ``.gch`` only when the flags it was built with fit the module's, and otherwise
parses the header's text without a word; ``-Werror=invalid-pch`` turns that silent
fallback into an error, so these checks prove the header is the one the compile used.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytensor.tensor as pt
import pytest
from pytensor.graph.fg import FunctionGraph
from pytensor.link.c.basic import CLinker
from pytensor.link.c.cmodule import dlimport_workdir
from pytensor.link.c.exceptions import CompileError

from dandelion import c_prelude_pch
from dandelion.c_prelude_pch import HEADER, leading_includes, precompiled_prelude
from dandelion.parallel_c_compile import _Job

pytestmark = pytest.mark.skipif(not c_prelude_pch._is_gcc_compiler(), reason="precompiled headers are built for GCC's g++ only")


def test_leading_includes_stop_at_the_first_other_line():
    source = '#include <Python.h>\n\n#include "helper.h"\n// support code\n#include <late.h>\n'
    assert leading_includes(source) == ["#include <Python.h>", '#include "helper.h"']
    assert leading_includes("int x;\n#include <a.h>\n") == []


@pytest.fixture
def job(tmp_path, monkeypatch):
    """Compile arguments of a fresh elementwise module, headers kept under ``tmp_path``."""
    monkeypatch.setattr(c_prelude_pch, "_header_folder", lambda includes, flags: str(tmp_path / "pch" / str(abs(hash((*includes, *flags))))))
    monkeypatch.setattr(c_prelude_pch, "_builds", {})
    x = pt.dvector("x")
    linker = CLinker().accept(FunctionGraph([x], [pt.exp(x) * 3.0 + x]), no_recycling=[])
    return _Job(linker, None, None)


def _compile(job, arguments, tmp_path, *extra_flags):
    location = dlimport_workdir(str(tmp_path))
    arguments = dict(arguments, preargs=[*arguments["preargs"], "-Werror=invalid-pch", *extra_flags])
    # the shared library is built and not imported: only whether g++ accepts the header matters here
    job.linker.c_compiler().compile_str(location=location, py_module=False, **arguments)
    return location


def test_module_source_includes_the_built_header_first(job, tmp_path):
    arguments = precompiled_prelude(job.arguments)
    assert arguments is not job.arguments
    assert arguments["src_code"] == f'#include "{HEADER}"\n' + job.arguments["src_code"]
    folder = Path(arguments["include_dirs"][0])
    assert folder.parent == tmp_path / "pch" and (folder / (HEADER + ".gch")).is_file()
    assert (folder / HEADER).read_text().splitlines() == leading_includes(job.arguments["src_code"])
    # a second module with the same includes and flags reuses the header
    assert precompiled_prelude(job.arguments)["include_dirs"][0] == str(folder)


def test_a_header_built_for_other_flags_is_not_used(job, tmp_path):
    arguments = precompiled_prelude(job.arguments)
    # the fitting header compiles under -Werror=invalid-pch (numbers through the linker:
    # tests/test_parallel_c_compile.py); another -m option makes g++ refuse it
    assert any(name.endswith(".so") for name in os.listdir(_compile(job, arguments, tmp_path)))
    with pytest.raises(CompileError):
        _compile(job, arguments, tmp_path, "-mno-sse4.2")


def test_unusable_compiler_leaves_the_arguments_alone(job, monkeypatch):
    monkeypatch.setattr(c_prelude_pch, "_is_gcc_compiler", lambda: False)
    assert precompiled_prelude(job.arguments) is job.arguments
    monkeypatch.setattr(c_prelude_pch, "_is_gcc_compiler", lambda: True)
    monkeypatch.setattr(c_prelude_pch, "_build", lambda folder, includes, flags: False)
    assert precompiled_prelude(job.arguments) is job.arguments
