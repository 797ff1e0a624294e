"""Suite-wide configuration: backends, seeds, hypothesis profile, strict warnings.

Every compiled check runs on the C, Numba and JAX backends through the ``backend``
fixture. ``DANDELION_TEST_BACKENDS=c,numba`` narrows the set while developing; CI runs
all three. JAX is skipped only when it is not installed, and says so.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

ALL_BACKENDS = ("c", "numba", "jax")
BACKENDS = tuple(
    b.strip() for b in os.environ.get("DANDELION_TEST_BACKENDS", ",".join(ALL_BACKENDS)).split(",") if b.strip()
)
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



def backend_params():
    params = []
    for name in BACKENDS:
        marks = []
        if name == "jax" and not HAS_JAX:
            marks.append(pytest.mark.skip(reason="jax is not installed (pip install 'dandelion[jax]')"))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(params=backend_params())
def backend(request):
    """Backend name for ``dandelion.function(..., mode=backend)``."""
    return request.param


@pytest.fixture(autouse=True)
def _seed_numpy():
    np.random.seed(1234)
    yield
