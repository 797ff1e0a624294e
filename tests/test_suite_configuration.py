"""The suite's compile settings in tests/conftest.py: what they change and what they leave to the user."""

from __future__ import annotations

import os

import numba
import pytensor

from tests.conftest import SUITE_COMPILEDIR, suite_compile_environment

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
