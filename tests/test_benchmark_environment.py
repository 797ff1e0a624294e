"""``benchmarks.environment.pin_threads``: what it tells the thread pools (no benchmark runs)."""

from __future__ import annotations

import os

import pytest
from benchmarks import environment


@pytest.fixture
def pinned(monkeypatch):
    """pin_threads on a fake 4-CPU process: returns (call, affinities set)."""
    calls = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: calls.append(sorted(cpus)), raising=False)
    for name in environment.THREAD_VARIABLES + ("XLA_FLAGS",):
        monkeypatch.delenv(name, raising=False)

    def call(threads, flags=None):
        if flags is not None:
            monkeypatch.setenv("XLA_FLAGS", flags)
        environment.pin_threads(threads)
        return calls

    return call


def test_one_thread_turns_eigen_threads_off_and_pins_one_cpu(pinned):
    assert pinned(1) == [[0]]
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false"
    assert all(os.environ[name] == "1" for name in environment.THREAD_VARIABLES)


def test_xla_flags_keep_only_flags(pinned):
    # Not an XLA flag: skipped after a flag, and taken for a file name (abort) when first.
    pinned(2, "intra_op_parallelism_threads=2 --xla_force_host_platform_device_count=2")
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2"


def test_all_cpus_leave_the_affinity_alone(pinned):
    assert pinned(4) == []
    assert "XLA_FLAGS" not in os.environ
