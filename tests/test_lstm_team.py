"""The float32 LSTM kernels on a thread team (``dandelion.ops.c.lstm_packed``, ``dandelion.ops.c.team``).

The team's size is read once per process, so each configuration runs the Ops in a child
process (``tests.lstm_team_child``) with ``perform`` patched to fail. The shapes are
chosen to cross every edge of the packed kernels: 11 rows (a partial block of 8 rows),
68 hidden units (the forward's blocks of 8 units end in a partial one of 4, the
backward's three blocks of 32 in one of 4), peepholes, a mask and a binding clip bound.
Forward values are checked against ``tests.recurrent_reference`` (float64 NumPy written
from the equations), gradients against the NumPy kernel ``lstm_numpy.lstm_backward``.

Configurations: OpenBLAS's pool (2 threads of a 2-thread pool; there two more Python
threads call functions of their own at once, with NumPy products between the calls),
threads of the team's own (3 threads, more than the pool has), one thread, and the fallbacks
without a C++ compiler (``DANDELION_NATIVE_KERNELS=0``): the Numba loops, JAX's scans. On
JAX the kernels run as XLA custom calls (``dandelion.ops.jax.lstm_native``) on a team
from XLA's own pool. The kernels built without AVX-512 (the narrower tile of other machines)
are checked on the same shapes through their library build.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytensor
import pytest

from dandelion.ops import lstm_numpy
from tests import recurrent_reference as ref
from tests.helpers import assert_close, c_kernel_blas_flags

T, B, H = 5, 11, 68
CLIP = 0.5  # tests.lstm_team_child's bound
# (name, environment): OpenBLAS's pool, own threads (more than the pool's 2), one thread
CONFIGURATIONS = [
    ("pool", {"OPENBLAS_NUM_THREADS": "2", "DANDELION_KERNEL_THREADS": "2"}),
    ("own threads", {"OPENBLAS_NUM_THREADS": "2", "DANDELION_KERNEL_THREADS": "3"}),
    ("one thread", {"OPENBLAS_NUM_THREADS": "1", "DANDELION_KERNEL_THREADS": "1"}),
]
# the library's last team (the backward's: 3 blocks of units), size * 10 + kind; on JAX the
# pool is XLA's (kind 3), as large as the CPUs the process may use
EXPECTED_TEAM = {"pool": 22, "own threads": 31, "one thread": 10}


def _expected_team(backend, name):
    if backend != "jax" or name == "one thread":
        return EXPECTED_TEAM[name]
    threads = 2 if name == "pool" else 3
    return 10 * threads + (3 if threads <= len(os.sched_getaffinity(0)) else 1)


def _case():
    rng = np.random.default_rng(11)
    f32 = lambda x: np.asarray(x, dtype="float32")  # noqa: E731
    case = {
        "gi": f32(rng.standard_normal((T, B, 4 * H))),
        "W": f32(0.3 * rng.standard_normal((H, 4 * H))),
        "w_ci": f32(0.5 * rng.standard_normal(H)),
        "w_cf": f32(0.5 * rng.standard_normal(H)),
        "w_co": f32(0.5 * rng.standard_normal(H)),
        "h0": f32(0.5 * rng.standard_normal((B, H))),
        "c0": f32(0.5 * rng.standard_normal((B, H))),
        "mask": f32(rng.random((T, B)) < 0.7),
        "d_hs": f32(rng.standard_normal((T, B, H))),
        "d_cs": f32(rng.standard_normal((T, B, H))),
    }
    return case


def _run_child(mode, case_path, out_path, env, callers=1):
    environment = {**os.environ, **env}
    command = [sys.executable, "-m", "tests.lstm_team_child", mode, str(case_path), str(out_path), str(callers)]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"child ({mode}, {env}) failed:\n{done.stderr[-4000:]}"
    return dict(np.load(out_path))


def _check(outputs, case):
    peep = np.stack([case["w_ci"], case["w_cf"], case["w_co"]])
    h, c = case["h0"].astype("float64"), case["c0"].astype("float64")
    for t in range(T):
        h_new, c_new = ref.lstm_cell(case["gi"][t], h, c, case["W"], peep)
        keep = case["mask"][t][:, None] != 0
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        assert_close(outputs["out0"][t], h, rtol=1e-4, atol=1e-5, err_msg=f"hs[{t}]")
        assert_close(outputs["out1"][t], c, rtol=1e-4, atol=1e-5, err_msg=f"cs[{t}]")
    hs, cs, gates = outputs["out0"], outputs["out1"], outputs["out2"]
    expected = lstm_numpy.lstm_backward(
        case["W"], peep, case["h0"], case["c0"], case["mask"], hs, cs, gates, case["d_hs"], case["d_cs"], CLIP, True, True
    )
    d_gi, d_W, d_peep, d_h0, d_c0 = expected
    names = ["d_gate_input", "d_W_hid", "d_w_ci", "d_w_cf", "d_w_co", "d_h0", "d_c0"]
    for k, (name, e) in enumerate(zip(names, [d_gi, d_W, *d_peep, d_h0, d_c0], strict=True)):
        assert_close(outputs[f"out{3 + k}"], e, rtol=1e-4, atol=1e-4, err_msg=name)
    assert np.abs(outputs["out3"]).max() <= CLIP * (1 + 1e-6)


@pytest.fixture(scope="module")
def case_file(tmp_path_factory):
    case = _case()
    path = tmp_path_factory.mktemp("lstm_team") / "case.npz"
    np.savez(path, **case)
    return path, case


@pytest.mark.parametrize("name, env", CONFIGURATIONS, ids=[name for name, _ in CONFIGURATIONS])
def test_team_kernels_match_the_references(backend, case_file, tmp_path, name, env):
    if backend == "c" and c_kernel_blas_flags() is None:
        pytest.skip("no BLAS here: the LSTM C code declines and perform runs")
    path, case = case_file
    env = {**env, "PYTENSOR_FLAGS": f"{os.environ.get('PYTENSOR_FLAGS', '')},blas__ldflags={c_kernel_blas_flags() or ''}"}
    # in the pool's configuration two more Python threads call the kernels at once
    outputs = _run_child(backend, path, tmp_path / "out.npz", env, callers=3 if name == "pool" else 1)
    _check(outputs, case)
    assert outputs["agree"], "calls from several threads at once gave other results (or did not all finish)"
    if backend != "c":
        # with a compiler the library serves the Numba and JAX backends (they fall back only without one)
        assert bool(outputs["native"]) == bool(pytensor.config.cxx)
    if outputs["native"]:
        assert int(outputs["team"]) == _expected_team(backend, name)


def test_fallback_without_the_native_library(backend, case_file, tmp_path):
    """``DANDELION_NATIVE_KERNELS=0``: the Numba cfuncs, or JAX's scans (its path on GPUs), with the same results."""
    if backend == "c":
        pytest.skip("the C backend compiles the kernels into its own modules: it has no library to go without")
    path, case = case_file
    outputs = _run_child(backend, path, tmp_path / "out.npz", {"DANDELION_NATIVE_KERNELS": "0"})
    assert not outputs["native"]
    _check(outputs, case)


def _call_native_library(library, case):
    """hs, cs, gates and the gradients from a library build of the kernels, called as the Numba backend calls it."""
    from dandelion.ops.scipy_blas import scipy_gemm_addresses

    gemms = scipy_gemm_addresses()
    library.dandelion_native_lstm_init(ctypes.c_void_p(gemms["float32"]), ctypes.c_void_p(gemms["float64"]))
    f32 = lambda *shape: np.zeros(shape, dtype="float32")  # noqa: E731
    peep = np.ascontiguousarray(np.stack([case["w_ci"], case["w_cf"], case["w_co"]]))
    hs, cs, gates = f32(T, B, H), f32(T, B, H), f32(T, B, 4 * H)
    params = np.array([T, B, H, 1, 1], dtype=np.int64)
    pointer = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    gi, W, h0, c0, mask = (np.ascontiguousarray(case[n]) for n in ("gi", "W", "h0", "c0", "mask"))
    library.dandelion_native_lstm_forward_float(*map(pointer, (gi, W, peep, h0, c0, mask, hs, cs, gates, params)))
    d_gi, d_W, d_peep, d_h0, d_c0 = f32(T, B, 4 * H), f32(H, 4 * H), f32(3, H), f32(B, H), f32(B, H)
    d_hs, d_cs = np.ascontiguousarray(case["d_hs"]), np.ascontiguousarray(case["d_cs"])
    arrays = (W, peep, h0, c0, mask, hs, cs, gates, d_hs, d_cs, d_gi, d_W, d_peep, d_h0, d_c0, params)
    library.dandelion_native_lstm_backward_float(*map(pointer, arrays), ctypes.c_double(CLIP))
    grads = [d_gi, d_W, *d_peep, d_h0, d_c0]
    return {f"out{k}": v for k, v in enumerate([hs, cs, gates, *grads])}


@pytest.mark.skipif(not pytensor.config.cxx, reason="no C++ compiler (pytensor.config.cxx is empty)")
def test_kernels_built_without_avx512_match_the_references():
    """The narrower tile (2 rows, for AVX2 and older) on the same shapes, through the library build."""
    from dandelion.ops import native
    from dandelion.ops.c import lstm_kernels
    from dandelion.ops.numba.blas import HAVE_SCIPY_BLAS

    if not HAVE_SCIPY_BLAS:
        pytest.skip("the library build takes SciPy's GEMMs (no SciPy here)")
    library = native.load_library("lstm", lstm_kernels.native_code(), ("-mno-avx512f",))
    case = _case()
    _check(_call_native_library(library, case), case)
