"""The suite's compile settings in tests/conftest.py (and its precompiled header): what they change and what they leave to the user."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.link.c import cmodule

import dandelion
from dandelion import c_prelude_pch
from tests import precompiled_header
from tests.conftest import SUITE_COMPILEDIR, selected_backends, suite_compile_environment

HOME_COMPILEDIR = os.path.expanduser(SUITE_COMPILEDIR)


def test_this_run_reads_the_settings_conftest_chose():
    # set before PyTensor and Numba were imported; a run may still choose other values
    flags = os.environ["PYTENSOR_FLAGS"]
    assert pytensor.config.cmodule__remove_gxx_opt == ("cmodule__remove_gxx_opt=True" in flags)
    assert numba.config.OPT == int(os.environ["NUMBA_OPT"])


def test_a_fresh_environment_gets_all_three():
    assert suite_compile_environment({}) == {
        "NUMBA_OPT": "1",
        "PYTENSOR_FLAGS": f"cmodule__remove_gxx_opt=True,base_compiledir={HOME_COMPILEDIR}",
    }
    assert suite_compile_environment({"PYTENSOR_FLAGS": "floatX=float64"})["PYTENSOR_FLAGS"] == (
        f"floatX=float64,cmodule__remove_gxx_opt=True,base_compiledir={HOME_COMPILEDIR}"
    )


def test_the_users_choices_are_kept():
    chosen = {"PYTENSOR_FLAGS": "cmodule__remove_gxx_opt=False,base_compiledir=/cold", "NUMBA_OPT": "3"}
    assert suite_compile_environment(chosen) == {}
    # a folder the user gives is used as it is
    assert suite_compile_environment({"PYTENSOR_FLAGS": "base_compiledir=/cold"}) == {
        "NUMBA_OPT": "1",
        "PYTENSOR_FLAGS": "base_compiledir=/cold,cmodule__remove_gxx_opt=True",
    }
    assert suite_compile_environment({"PYTENSOR_FLAGS": "compiledir=/cold"})["PYTENSOR_FLAGS"] == (
        "compiledir=/cold,cmodule__remove_gxx_opt=True"
    )
    # an optimisation level the user gives keeps PyTensor's default folder
    assert suite_compile_environment({"NUMBA_OPT": "3"}) == {"PYTENSOR_FLAGS": "cmodule__remove_gxx_opt=True"}


@pytest.mark.parametrize("compiled_by", ["pytensor", "dandelion"])
def test_c_modules_compile_with_the_precompiled_header(request, monkeypatch, tmp_path, compiled_by):
    """PyTensor's own compile command for a new module finds and accepts the header.

    gcc's ``-H`` marks a precompiled header it uses with ``!`` (``x``: found, not valid).
    Through ``dandelion.function`` the module is a ``FlatElemwise`` compiled with
    ``-fsingle-precision-constant``, which changes a predefined macro: a variant of its own;
    ``dandelion.parallel_c_compile`` compiles it, opening with the library's own header
    (``dandelion.c_prelude_pch``), which gcc must use in the suite's place.
    """
    if "c" not in selected_backends(request.config):
        pytest.skip("the precompiled header is built for runs with the C backend only (--backends c,...)")
    assert "-I" in pytensor.config.gcc__cxxflags, "conftest did not put the header on the include path"
    commands = []
    compile_module = cmodule.output_subprocess_Popen
    monkeypatch.setattr(
        cmodule, "output_subprocess_Popen", lambda cmd, *a, **k: commands.append(cmd) or compile_module(cmd, *a, **k)
    )
    x = pt.fmatrix("x")
    scale = np.float32(np.random.default_rng().uniform(2, 3))  # a new constant: a new module
    if compiled_by == "pytensor":
        f = pytensor.function([x], pt.exp(x) * scale, mode="CVM")
    else:
        from dandelion.ops.flat_elemwise import FlatElemwise

        f = dandelion.function([x], pt.exp(x) * scale, mode="c")
        ops = [node.op for node in f.maker.fgraph.apply_nodes]
        assert any(isinstance(op, FlatElemwise) and op.single_precision_constants for op in ops)
    value = np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(f(value), np.exp(value) * scale, rtol=1e-6)

    first_include = {"pytensor": "#include <Python.h>", "dandelion": f'#include "{c_prelude_pch.HEADER}"'}[compiled_by]

    def opens_like_an_op_module(cmd):
        # PyTensor's helper modules (lazylinker_ext, cutils_ext, built on a cold cache) open differently
        source = next(arg for arg in cmd if arg.endswith(".cpp"))
        return Path(source).read_text().lstrip().startswith(first_include)

    builds = [
        cmd for cmd in commands if cmd[0] == pytensor.config.cxx and "-shared" in cmd and opens_like_an_op_module(cmd)
    ]
    assert builds, "no C module of an Op was compiled"
    for cmd in builds:
        again = list(cmd)
        again[again.index("-o") + 1] = str(tmp_path / "again.so")
        report = subprocess.run([*again, "-H"], capture_output=True, text=True).stderr
        used = [line for line in report.splitlines() if line.startswith("! ") and line.endswith(".gch")]
        assert used, f"gcc did not use the precompiled header:\n{report[:2000]}"
        if compiled_by == "dandelion":
            assert all(line.endswith(c_prelude_pch.HEADER + ".gch") for line in used), used


def test_a_header_gcc_cannot_build_changes_nothing(monkeypatch, tmp_path):
    flags = pytensor.config.gcc__cxxflags
    monkeypatch.setattr(precompiled_header.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    assert precompiled_header.use_precompiled_header(tmp_path) is None
    assert pytensor.config.gcc__cxxflags == flags
