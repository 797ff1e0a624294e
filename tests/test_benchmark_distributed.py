"""The figures of ``python -m benchmarks.distributed`` (no benchmark is run here)."""

from __future__ import annotations

from benchmarks.distributed_report import merge, table


def process(process_id, ms, cpu, batch=256, all_reduce=None):
    return {"process_id": process_id, "status": "ok", "platform": "cpu", "batch": batch,
            "samples_per_s": batch * 1000.0 / ms, "ms_per_step": ms, "ms_per_step_p10": ms - 1, "ms_per_step_p90": ms + 1,
            "cpu_ms_per_step": cpu, "threads": 20, "affinity": [process_id], "compile_s": 3.0,
            "all_reduce_ms": all_reduce, "gradient_floats": 1000}


def run(devices, processes, ms, half=False, workload="W4", load=(1.0, 2.0), all_reduce=None):
    batch = 128 if half else 256
    results = [process(i, ms + i, 10.0 + i, batch, all_reduce) for i in range(processes)]
    return merge(workload, devices, processes, half, results, load)


def test_merge_takes_the_slowest_process_and_keeps_cpu_time_per_process():
    record = run(1, 2, 100.0, all_reduce=8.0)
    assert record["status"] == "ok"
    assert record["ms_per_step"] == 101.0  # process 1 is 1 ms slower; the step waits for it
    assert record["samples_per_s"] == 256 * 1000.0 / 101.0  # the global batch, not a process's rows
    assert record["cpu_ms_per_step"] == [10.0, 11.0]
    assert record["all_reduce_ms"] == 8.0


def test_merge_fails_when_a_process_gave_no_result():
    assert merge("W4", 1, 2, False, [process(0, 100.0, 10.0)], (1.0, 1.0))["status"] == "failed"


def test_table_pairs_each_configuration_with_the_baseline_of_its_own_round():
    records = [
        # round 1: the machine is slow; round 2: twice as fast; speed-ups within a round are 1.5x and 2x
        run(1, 1, 200.0), run(1, 1, 120.0, half=True), run(1, 2, 200.0 / 1.5 - 1, all_reduce=8.0),
        run(1, 2, 50.0 - 1, all_reduce=6.0), run(1, 1, 40.0, half=True), run(1, 1, 100.0),
    ]
    rows = table(records).splitlines()
    assert rows[2].startswith("| W4 | 1 process x 1 device | ")
    assert "| 1.00 (1.00-1.00)x |" in rows[2]
    # the half batch: one process's share; its bound is the baseline's time over its own
    assert rows[3].startswith("| W4 | 1 process x 1 device, half batch |")
    assert f"| bound {(200 / 120 + 100 / 40) / 2:.2f} ({200 / 120:.2f}-{100 / 40:.2f})x |" in rows[3]
    assert rows[4].startswith("| W4 | 2 processes x 1 device |")
    assert "| 1.75 (1.50-2.00)x |" in rows[4]
    assert "| 7.0 (6.0-8.0) |" in rows[4]  # the gradient all-reduce, median of the rounds
    assert rows[4].endswith("| 1.0-2.0 |")
    # by CPU time: the busiest process (11 ms) against the baseline's 10 ms, in both rounds
    assert f"| {10 / 11:.2f} ({10 / 11:.2f}-{10 / 11:.2f})x | 1.0-2.0 |" in rows[4]


def test_cpu_time_of_simulated_devices_is_shared_between_them():
    # One process, two devices: 10 ms of CPU per step is 5 ms per device when they run at once.
    rows = table([run(1, 1, 100.0), run(2, 1, 80.0)]).splitlines()
    assert rows[3].startswith("| W4 | 1 process x 2 devices |")
    assert rows[3].endswith("| 1.25x | 2.00x | 1.0-2.0 |")


def test_table_reports_a_failed_configuration():
    records = [run(1, 1, 100.0), {"workload": "W3", "devices": 2, "processes": 2, "status": "timed out after 9 s"}]
    rows = table(records).splitlines()
    assert rows[-1] == "| W3 | 2 processes x 1 device | timed out after 9 s | - | - | - | - | - | - |"


def test_table_splits_a_process_cpu_time_into_stepping_and_the_rest():
    # gloo polls while a process waits for the other: CPU time that is not the step's
    results = [dict(process(i, 100.0, 30.0 + i), main_thread_cpu_ms_per_step=20.0 + i) for i in range(2)]
    rows = table([run(1, 1, 100.0), merge("W4", 1, 2, False, results, (1.0, 1.0))]).splitlines()
    assert "| 30.0 / 31.0 (stepping 20.0 / 21.0) |" in rows[3]
    assert "stepping" not in rows[2]  # one process: all of its CPU time is the step's
