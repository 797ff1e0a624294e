"""The float32 exp of the softmax kernels (``dandelion.ops.exp32``) and its Numba version.

The NumPy statement against float64 exp (ulps over the whole float32 range, the
underflow and overflow bounds, NaN); the Numba ``exp32`` equal to it bit for bit (it is
compiled without fast-math, whatever its caller's flags) and vectorising in a loop. The C
version is checked through the attention kernel (``test_ops_attention``'s long rows).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops import exp32 as definition
from dandelion.ops.numba.exp32 import exp32 as numba_exp32
from tests.numba_ir import row_pass_ir, vector_lanes

SWEEP = np.linspace(-110, 100, 400_001, dtype=np.float32)


# With PyTensor's default Numba flags (fast-math among them), as the kernels that call it.
@numba_basic.numba_njit(boundscheck=False, final_function=True)
def _exp_into(x, out):
    for i in range(x.shape[0]):
        out[i] = numba_exp32(x[i])


def _ulps(approx, exact):
    """|approx - exact| in units of float32's spacing at ``exact`` (float64)."""
    return np.abs(approx.astype(np.float64) - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)


def test_within_two_ulps_of_exp_between_the_bounds():
    inside = SWEEP[(SWEEP >= definition.LOWEST) & (SWEEP <= definition.HIGHEST)]
    assert _ulps(definition.exp32(inside), np.exp(inside.astype(np.float64))).max() <= 2


def test_bounds_nan_and_exact_points():
    x = np.array([definition.LOWEST, -87.4, -200, -np.inf, 88.37, 88.5, 1e6, np.inf, np.nan, 0, 1, -1], dtype=np.float32)
    y = definition.exp32(x)
    assert y[0] > 0 and np.all(y[1:4] == 0)
    assert np.isfinite(y[4]) and np.all(np.isinf(y[5:8]))
    assert np.isnan(y[8]) and y[9] == 1
    np.testing.assert_allclose(y[10:], np.exp(x[10:].astype(np.float64)), rtol=2 * 2**-23)


def test_numba_version_matches_the_definition_bit_for_bit():
    out = np.empty_like(SWEEP)
    _exp_into(SWEEP, out)
    np.testing.assert_array_equal(out.view(np.int32), definition.exp32(SWEEP).view(np.int32))
    special = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=np.float32)
    got = np.empty_like(special)
    _exp_into(special, got)
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == 0 and got[3] == 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-120, 120, width=32), min_size=1, max_size=40))
def test_numba_version_matches_the_definition_under_hypothesis(values):
    x = np.array(values, dtype=np.float32)
    out = np.empty_like(x)
    _exp_into(x, out)
    np.testing.assert_array_equal(out.view(np.int32), definition.exp32(x).view(np.int32))


def test_numba_loop_vectorises():
    lanes = vector_lanes(row_pass_ir(_exp_into, (1, 1), "float32"), "float")
    assert lanes and max(lanes) >= 4, "a loop of exp32 has no vector instructions"
