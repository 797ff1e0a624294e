"""The table of ``python -m benchmarks.distributed`` (no benchmark is run here)."""

from __future__ import annotations

from benchmarks.distributed import table


def record(devices, processes, samples, workload="W4"):
    return {"workload": workload, "devices": devices, "processes": processes, "platform": "cpu",
            "samples_per_s": samples, "ms_per_step": 256e3 / samples, "status": "ok"}


def test_table_gives_speed_up_against_the_first_configuration_of_each_workload():
    rows = table([
        record(1, 1, 1000.0), record(2, 1, 1500.0), record(2, 2, 1800.0),
        record(1, 1, 200.0, "W3"), {"workload": "W3", "devices": 2, "processes": 2, "status": "timed out after 9 s"},
    ]).splitlines()
    assert rows[2] == "| W4 | 1 process(es) x 1 device(s) | cpu | 1000 | 256.0 | 1.00x |"
    assert rows[3].startswith("| W4 | 1 process(es) x 2 device(s) |") and rows[3].endswith("| 1.50x |")
    assert rows[4].startswith("| W4 | 2 process(es) x 1 device(s) |") and rows[4].endswith("| 1.80x |")
    assert rows[5].endswith("| 1.00x |")
    assert rows[6] == "| W3 | 2 process(es) x 1 device(s) | - | timed out after 9 s | - | - |"
