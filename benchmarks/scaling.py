"""Scaling runs: step time against one workload parameter, with a least-squares line.

"Cost grows linearly" is checked, not eyeballed: for every framework the medians are
fitted by ``ms = intercept + slope * value`` and the report gives the slope (ms per
unit), the intercept (fixed per-step cost) and the largest relative deviation of a
measurement from the line. A deviation of a few per cent means linear growth.
"""

from __future__ import annotations

from benchmarks.report import FRAMEWORK_ORDER

# (workload, parameter swept, its values): the recurrent workloads in sequence length and in
# batch (issue 17: linear in T 25..200 and in batch 16..128), the CNN in batch
SCALING = [
    ("W1", "steps", [25, 50, 100, 200]),
    ("W1", "batch", [16, 32, 64, 128]),
    ("W2", "steps", [25, 50, 100, 200]),
    ("W2", "batch", [16, 32, 64, 128]),
    ("W3", "batch", [16, 32, 64, 128]),
]
UNIT = {"steps": "time step", "batch": "sample"}


def linear_fit(values, times):
    """Least-squares ``(intercept, slope, max relative deviation)`` of ``times`` against ``values``."""
    n = len(values)
    mean_v = sum(values) / n
    mean_t = sum(times) / n
    spread = sum((v - mean_v) ** 2 for v in values)
    slope = sum((v - mean_v) * (t - mean_t) for v, t in zip(values, times, strict=True)) / spread if spread else 0.0
    intercept = mean_t - slope * mean_v
    deviation = max(abs(t - (intercept + slope * v)) / t for v, t in zip(values, times, strict=True))
    return intercept, slope, deviation


def _series(records, workload, parameter):
    """{framework: [(value, median_ms)]} of the successful scaling runs, values ascending."""
    series = {}
    for record in records:
        if record.get("scaling") != parameter or record["workload"] != workload or record["status"] != "ok":
            continue
        series.setdefault(record["framework"], []).append((record["config"][parameter], record["median_ms"]))
    ordered = [f for f in FRAMEWORK_ORDER if f in series] + sorted(set(series) - set(FRAMEWORK_ORDER))
    return {f: sorted(series[f]) for f in ordered}


def _failures(records, workload, parameter):
    return [r for r in records if r.get("scaling") == parameter and r["workload"] == workload and r["status"] != "ok"]


def scaling_table(records):
    """Markdown: per workload, median ms at each value, and the linear fit per framework."""
    lines = []
    for workload, parameter, values in SCALING:
        series = _series(records, workload, parameter)
        failures = _failures(records, workload, parameter)
        if not series and not failures:
            continue
        lines += [
            f"Scaling of {workload}'s training step with {parameter} (median ms); "
            f"fit `ms = a + b * {parameter}`, worst deviation from the line:",
            "",
            "| framework | " + " | ".join(f"{parameter}={v}" for v in values) + f" | b (ms per {UNIT[parameter]}) | a (ms) | worst deviation |",
            "| --- | " + " | ".join("---" for _ in values) + " | --- | --- | --- |",
        ]
        for framework, points in series.items():
            measured = dict(points)
            cells = [f"{measured[v]:.1f}" if v in measured else "-" for v in values]
            if len(points) >= 3:
                intercept, slope, deviation = linear_fit([v for v, _ in points], [t for _, t in points])
                fit = [f"{slope:.3f}", f"{intercept:.1f}", f"{100 * deviation:.0f}%"]
            else:
                fit = ["-", "-", "too few points"]
            lines.append(f"| {framework} | " + " | ".join(cells + fit) + " |")
        for record in failures:
            value = record.get("config", {}).get(parameter, "?")
            lines.append(f"| {record['framework']} ({parameter}={value}) | {record['status']}: {record.get('error', '')[:80]} |")
        lines.append("")
    return "\n".join(lines)


def scaling_chart(records, path):
    """One panel per scaled workload: median ms against the parameter, with fitted lines."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [(w, p, _series(records, w, p)) for w, p, _ in SCALING]
    panels = [panel for panel in panels if panel[2]]
    if not panels:
        return None
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for axis, (workload, parameter, series) in zip(axes[0], panels, strict=True):
        for framework, points in series.items():
            values = [v for v, _ in points]
            times = [t for _, t in points]
            (line,) = axis.plot(values, times, "o", label=framework)
            if len(points) >= 2:
                intercept, slope, _ = linear_fit(values, times)
                axis.plot(values, [intercept + slope * v for v in values], "-", color=line.get_color(), alpha=0.6)
        axis.set_xlabel(parameter)
        axis.set_ylabel("median ms per training step")
        axis.set_title(f"{workload}: step time against {parameter} (lines: least-squares fit)", fontsize=9)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
