"""The benchmark report's arithmetic and bookkeeping, on synthetic records (nothing is timed)."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.report import markdown_table
from benchmarks.scaling import linear_fit, scaling_chart, scaling_table

ENVIRONMENT = {"cpu": "test cpu", "threads": 2, "versions": {"python": "3"}}


def _record(framework, ms, workload="W1", mode="train", **extra):
    base = {"workload": workload, "framework": framework, "mode": mode, "status": "ok", "median_ms": ms,
            "min_ms": ms, "compile_s": 1.0, "gflops": 10.0, "peak_rss_mb": 100.0}
    return {**base, **extra}


def _scaling(framework, value, ms, status="ok"):
    record = _record(framework, ms, scaling="steps", config={"steps": value})
    record["status"] = status
    if status != "ok":
        record["error"] = "RuntimeError: boom"
    return record


def test_linear_fit_recovers_a_line_and_flags_a_curve():
    values = [25, 50, 100, 200]
    rng = np.random.default_rng(0)
    intercept, slope = rng.uniform(1, 5), rng.uniform(0.1, 2)
    a, b, deviation = linear_fit(values, [intercept + slope * v for v in values])
    assert a == pytest.approx(intercept) and b == pytest.approx(slope) and deviation < 1e-9
    # quadratic growth is far from any line through these points
    assert linear_fit(values, [1 + 0.01 * v * v for v in values])[2] > 0.2


def test_scaling_table_reports_fit_and_never_drops_failures(tmp_path):
    records = [_scaling("torch", v, 2.0 + 0.5 * v) for v in (25, 50, 100, 200)]
    records += [_scaling("dandelion-c", v, 3.0 + v) for v in (25, 50, 100)]
    records.append(_scaling("dandelion-c", 200, 0, status="failed"))
    table = scaling_table(records)
    torch_row = next(line for line in table.splitlines() if line.startswith("| torch |"))
    assert torch_row.split(" | ")[5:7] == ["0.500", "2.0"]  # slope, intercept
    c_row = next(line for line in table.splitlines() if line.startswith("| dandelion-c |"))
    assert c_row.split(" | ")[4] == "-"  # the failed value has no time
    assert "failed: RuntimeError: boom" in table
    assert scaling_chart(records, tmp_path / "scaling.png") is None or (tmp_path / "scaling.png").stat().st_size > 0


def test_markdown_table_ratios_are_against_torch():
    records = [_record("torch", 10.0), _record("dandelion-jax", 25.0), _record("jax", 5.0, status="failed", error="x")]
    table = markdown_table(records, ENVIRONMENT, 100.0, {})
    row = next(line for line in table.splitlines() if line.startswith("| W1"))
    assert "25.0 (2.50x)" in row and "10.0 (1.00x)" in row and "failed" in row
    # a scaling-only run gives the machine line and no empty table
    assert markdown_table([_scaling("torch", 25, 1.0)], ENVIRONMENT, 100.0, {}).count("\n") == 1


def test_cold_compile_children_get_empty_caches_and_keep_other_flags(tmp_path):
    from benchmarks.cold_compile import cold_environment, table

    env = cold_environment({"PYTENSOR_FLAGS": "floatX=float32,base_compiledir=/warm", "PATH": "/bin"}, tmp_path)
    assert env["PYTENSOR_FLAGS"] == f"floatX=float32,base_compiledir={tmp_path / 'pytensor'}"
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path / "numba") and env["PATH"] == "/bin"
    assert cold_environment({}, tmp_path)["PYTENSOR_FLAGS"] == f"base_compiledir={tmp_path / 'pytensor'}"
    records = [
        {"workload": "W4", "framework": "dandelion-c", "status": "ok", "compile_s": 12.34},
        {"workload": "W4", "framework": "dandelion-numba", "status": "failed", "error": "boom"},
    ]
    rows = table(records, ["W4"], ["dandelion-c", "dandelion-numba", "dandelion-jax"], "train").splitlines()
    assert rows[-1] == "| W4 | 12.3 s | failed | failed |"
