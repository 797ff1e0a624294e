"""Suite-wide configuration: backends, seeds, hypothesis profile, strict warnings.

Every compiled check runs on the C, Numba and JAX backends through the ``backend``
fixture. ``DANDELION_TEST_BACKENDS=c,numba`` (or ``--backends c,numba,none``) narrows the
set while developing; CI runs all three, one pytest run per backend. JAX is skipped only
when it is not installed, and says so.
"""

from __future__ import annotations

import importlib.util
import os

# Two pytest workers share two cores: BLAS thread pools of their own (NumPy's OpenBLAS,
# SciPy's, which Numba's products call) would oversubscribe them, and an OpenBLAS thread
# waiting for a core turns a small product into a wait of a time slice (a 128x128 float32
# product took 31 ms with 2 threads on the loaded machine, 0.11 ms with 1). Read when the
# libraries load, so before NumPy is imported; a value the user set is kept.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_variable, "1")


# The suite compiles hundreds of small C modules and Numba kernels from a cold cache (CI
# always starts cold) and runs each for milliseconds, so the compilers' optimisation passes
# are most of its time. Without gcc's -O passes the C runs of tests/test_train.py and
# tests/test_recurrent_grad.py took 76 s instead of 112 s; at NUMBA_OPT=1 the Numba runs of
# tests/test_recurrent_grad.py and tests/test_ops_conv.py took 143 s instead of 207 s, and
# ``--backends numba --shard 3/3`` with both settings 191 s instead of 244 s (2026-12-03). Neither setting allows fast-math, so the values are the same.
SUITE_C_FLAG = "cmodule__remove_gxx_opt"
SUITE_NUMBA_OPT = "1"
SUITE_COMPILEDIR = os.path.join("~", ".pytensor", "dandelion-tests")


def suite_compile_environment(environ):
    """The variables this suite changes in ``environ`` (a mapping), leaving the user's choices.

    - ``PYTENSOR_FLAGS`` gains ``cmodule__remove_gxx_opt=True``. PyTensor keys its C modules
      on that flag, so they never stand in for optimised ones in a shared cache.
    - ``NUMBA_OPT`` becomes 1. Numba's and PyTensor's kernel caches do not record the level,
      so the suite also gets a ``base_compiledir`` of its own unless a cache folder is given
      (a ``base_compiledir``, ``compiledir`` or ``NUMBA_CACHE_DIR`` you give receives them).
    """
    flags = environ.get("PYTENSOR_FLAGS", "")
    parts = [flags] if flags else []
    if SUITE_C_FLAG not in flags:
        parts.append(f"{SUITE_C_FLAG}=True")
    changed = {}
    if "NUMBA_OPT" not in environ:
        changed["NUMBA_OPT"] = SUITE_NUMBA_OPT
        # PyTensor's ``compiledir`` overrides the folder under ``base_compiledir``
        if not any(flag.startswith(("base_compiledir=", "compiledir=")) for flag in flags.split(",")):
            parts.append(f"base_compiledir={os.path.expanduser(SUITE_COMPILEDIR)}")
    if ",".join(parts) != flags:
        changed["PYTENSOR_FLAGS"] = ",".join(parts)
    return changed


# Read when PyTensor and Numba are imported, which no module has done yet; child processes
# inherit them. The benchmarks and the demo keep the optimised builds.
os.environ.update(suite_compile_environment(os.environ))

import numpy as np  # noqa: E402
import pytensor  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from tests.precompiled_header import use_precompiled_header  # noqa: E402

ALL_BACKENDS = ("c", "numba", "jax")
# "none" stands for the tests that take no ``backend`` argument (they compile nothing
# backend-specific); ``--backends c,none`` runs the C checks and those once.
NO_BACKEND = "none"
HAS_JAX = importlib.util.find_spec("jax") is not None
# Backends are compared at float32 tolerances; on NVIDIA GPUs JAX computes float32 matrix
# products in TF32 (10 mantissa bits) unless told otherwise. Read when JAX is imported,
# and inherited by the child processes of tests/test_distributed.py.
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")

settings.register_profile(
    "dandelion",
    max_examples=8,
    deadline=None,  # compiled code: first calls include compilation
    derandomize=True,  # the same examples on every run and machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dandelion"))



def pytest_addoption(parser):
    parser.addoption(
        "--backends",
        default=None,
        help=(
            "comma-separated backends for the compiled checks (c, numba, jax) and 'none' for the "
            "tests without a backend; default $DANDELION_TEST_BACKENDS (or c,numba,jax) plus none. "
            "Compiled code is never unloaded, so one pytest run per backend bounds each worker's memory."
        ),
    )
    parser.addoption(
        "--shard",
        default="1/1",
        help="K/N: run the K-th of N interleaved shares of the test files (sorted by path); bounds memory as --backends does",
    )


def pytest_configure(config):
    if "c" in selected_backends(config):
        # Half of each C module's compile at -O0 is reading the same system headers.
        use_precompiled_header(pytensor.config.base_compiledir / "precompiled-headers")


def selected_shard(config):
    """(k, n) from ``--shard K/N``, checked."""
    option = config.getoption("--shard")
    try:
        k, n = (int(part) for part in option.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise pytest.UsageError(f"--shard: expected K/N with 1 <= K <= N, got {option!r}")
    return k, n


def selected_backends(config):
    """The ``--backends`` list, checked; the default keeps backend-free tests selected."""
    option = config.getoption("--backends")
    if option is None:
        env = os.environ.get("DANDELION_TEST_BACKENDS", ",".join(ALL_BACKENDS))
        option = f"{env},{NO_BACKEND}"
    names = tuple(dict.fromkeys(b.strip() for b in option.split(",") if b.strip()))
    unknown = [b for b in names if b not in (*ALL_BACKENDS, NO_BACKEND)]
    if unknown or not names:
        raise pytest.UsageError(f"--backends: expected names from {(*ALL_BACKENDS, NO_BACKEND)}, got {option!r}")
    return names


def backend_params(names):
    params = []
    for name in names:
        if name == NO_BACKEND:
            continue
        marks = []
        if name == "jax" and not HAS_JAX:
            marks.append(pytest.mark.skip(reason="jax is not installed (pip install 'dandelion[jax]')"))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        # module scope: a module-scoped fixture can compile once per backend from ``backend``
        params = backend_params(selected_backends(metafunc.config))
        metafunc.parametrize("backend", params, indirect=True, scope="module")


def pytest_collection_modifyitems(config, items):
    _keep_shard(config, items)
    names = selected_backends(config)
    keep_free, keep_compiled = NO_BACKEND in names, len(names) > (NO_BACKEND in names)
    if keep_free and keep_compiled:
        return

    def wanted(item):
        # with no backend selected, a test using one is parametrised over nothing (NOTSET)
        return keep_compiled if "backend" in getattr(item, "fixturenames", ()) else keep_free

    kept = [item for item in items if wanted(item)]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def _keep_shard(config, items):
    k, n = selected_shard(config)
    if n == 1:
        return
    files = sorted({str(item.path) for item in items})
    mine = {path for index, path in enumerate(files) if index % n == k - 1}
    kept = [item for item in items if str(item.path) in mine]
    config.hook.pytest_deselected(items=[item for item in items if str(item.path) not in mine])
    items[:] = kept


@pytest.fixture(scope="module")
def backend(request):
    """Backend name for ``dandelion.function(..., mode=backend)``."""
    return request.param


@pytest.fixture(autouse=True)
def _seed_numpy():
    np.random.seed(1234)
    yield
