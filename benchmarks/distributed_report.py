"""The figures of ``python -m benchmarks.distributed``: runs merged, rounds summarised, one table.

Every configuration runs once per round and the rounds alternate their order, so a change
of machine load during the benchmark touches every configuration alike. A configuration's
speed-up is taken against the one-process, one-device run of the same round, and the table
gives the median over the rounds with the lowest and highest.
"""

from __future__ import annotations

import statistics

BASELINE = (1, 1, False)  # devices per process, processes, half batch
HALF_LABEL = "1 process x 1 device, half batch"


def label(devices, processes, half=False):
    if half:
        return HALF_LABEL
    return f"{processes} process{'es' if processes > 1 else ''} x {devices} device{'s' if devices > 1 else ''}"


def merge(workload, devices, processes, half, results, load):
    """One run's record from its processes' ``RESULT`` lines.

    The step is collective, so the slowest process's median step is the run's; CPU time
    is kept per process (it tells a process short of a core from one doing more work).
    """
    record = {"workload": workload, "devices": devices * processes, "processes": processes, "half_batch": half,
              "load_before": load[0], "load_after": load[1]}
    if len(results) != processes or any(r.get("status") != "ok" for r in results):
        return {**record, "status": "failed"}
    slowest = max(results, key=lambda r: r["ms_per_step"])
    return {
        **record, "status": "ok", "platform": slowest["platform"], "batch": slowest["batch"],
        "samples_per_s": slowest["samples_per_s"], "ms_per_step": slowest["ms_per_step"],
        "ms_per_step_p10": slowest["ms_per_step_p10"], "ms_per_step_p90": slowest["ms_per_step_p90"],
        "cpu_ms_per_step": [r["cpu_ms_per_step"] for r in sorted(results, key=lambda r: r["process_id"])],
        # The thread that runs the step; the rest is communication (gloo polls while it waits).
        "main_thread_cpu_ms_per_step": [r.get("main_thread_cpu_ms_per_step")
                                        for r in sorted(results, key=lambda r: r["process_id"])],
        "all_reduce_ms": max((r["all_reduce_ms"] for r in results if r.get("all_reduce_ms") is not None), default=None),
        "gradient_floats": slowest.get("gradient_floats"),
        "threads": [r["threads"] for r in results], "affinity": [r["affinity"] for r in results],
        "compile_s": max(r["compile_s"] for r in results),
    }


def _key(record):
    return record["devices"] // record["processes"], record["processes"], bool(record.get("half_batch"))


def summarise(records):
    """``[(workload, key, rows)]`` in first-seen order; rows are that configuration's runs."""
    groups = {}
    for record in records:
        groups.setdefault((record["workload"], _key(record)), []).append(record)
    return [(workload, key, rows) for (workload, key), rows in groups.items()]


def _cpu_per_device(record):
    """The CPU ms per step of the busiest device: the step time of an idle machine, waits aside."""
    per_process = record["devices"] // record["processes"]
    return max(cpu / per_process for cpu in record["cpu_ms_per_step"])


def _round_ratios(records, workload, key, cpu=False):
    """Speed-ups of ``key`` over the baseline, pairing the n-th run of each (same round).

    ``cpu=True`` compares CPU time per step of the busiest device instead of wall time:
    less sensitive to other jobs on the machine, blind to time spent waiting.
    """
    runs = [r for r in records if r["workload"] == workload and _key(r) == key]
    bases = [r for r in records if r["workload"] == workload and _key(r) == BASELINE]
    ratios = []
    for run, base in zip(runs, bases):
        if run["status"] != "ok" or base["status"] != "ok":
            continue
        if cpu:
            ratios.append(_cpu_per_device(base) / _cpu_per_device(run))
        elif key[2]:
            # The half batch is one process's share of a 2-way split: its time against the
            # whole batch's is the speed-up two processes would reach with free communication.
            ratios.append(base["ms_per_step"] / run["ms_per_step"])
        else:
            ratios.append(run["samples_per_s"] / base["samples_per_s"])
    return ratios


def _spread(values, digits=2):
    text = f"{statistics.median(values):.{digits}f}"
    return text if len(values) == 1 else f"{text} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _all_reduce(rows):
    times = [r["all_reduce_ms"] for r in rows if r.get("all_reduce_ms") is not None]
    return _spread(times, 1) if times else "-"


def table(records):
    """Markdown: per workload and configuration, medians over the rounds and the speed-up."""
    lines = [
        "| workload | configuration | samples/s | ms/step (p10-p90) | CPU ms/step per process | gradient all-reduce ms "
        "| vs 1 process x 1 device | by CPU time | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for workload, key, rows in summarise(records):
        name = label(*key)
        good = [r for r in rows if r["status"] == "ok"]
        if not good:
            lines.append(f"| {workload} | {name} | {rows[0]['status']} | - | - | - | - | - | - |")
            continue
        typical = sorted(good, key=lambda r: r["ms_per_step"])[len(good) // 2]
        cpu = " / ".join(f"{c:.1f}" for c in typical["cpu_ms_per_step"])
        main = [c for c in typical.get("main_thread_cpu_ms_per_step") or () if c is not None]
        if main and typical["processes"] > 1:
            cpu += " (stepping " + " / ".join(f"{c:.1f}" for c in main) + ")"
        ratios = _round_ratios(records, workload, key)
        prefix = "bound " if key[2] else ""
        ratio = "-" if not ratios else prefix + _spread(ratios) + "x"
        cpu_ratios = _round_ratios(records, workload, key, cpu=True)
        cpu_ratio = "-" if not cpu_ratios else prefix + _spread(cpu_ratios) + "x"
        loads = [r["load_before"] for r in good] + [r["load_after"] for r in good]
        lines.append(
            f"| {workload} | {name} | {_spread([r['samples_per_s'] for r in good], 0)} | "
            f"{typical['ms_per_step']:.1f} ({typical['ms_per_step_p10']:.1f}-{typical['ms_per_step_p90']:.1f}) | "
            f"{cpu} | {_all_reduce(good)} | {ratio} | {cpu_ratio} | {min(loads):.1f}-{max(loads):.1f} |"
        )
    return "\n".join(lines) + "\n"
