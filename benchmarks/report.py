"""Markdown table and PNG charts from benchmark records."""

from __future__ import annotations

FRAMEWORK_ORDER = ["dandelion-c", "dandelion-numba", "dandelion-jax", "torch", "jax"]
REFERENCE = "torch"


def _cell(record, reference_ms):
    if record is None:
        return "-"
    if record["status"] != "ok":
        return record["status"]
    text = f"{record['median_ms']:.1f}"
    if reference_ms:
        text += f" ({record['median_ms'] / reference_ms:.2f}x)"
    return text


def markdown_table(records, environment, peak_gflops, descriptions):
    """One row per workload and mode: median ms (ratio to PyTorch eager) per framework."""
    main = [r for r in records if not r.get("scaling")]
    frameworks = [f for f in FRAMEWORK_ORDER if any(r["framework"] == f for r in main)]
    machine = (
        f"Machine: {environment['cpu']}, {environment['threads']} threads; "
        f"float32 matmul peak {peak_gflops:.1f} GFLOP/s; "
        + ", ".join(f"{k} {v}" for k, v in environment["versions"].items() if v)
    )
    if not main:  # a scaling-only run
        return machine + "\n"
    lines = [
        machine,
        "",
        "Median ms per step (ratio to PyTorch eager); lower is better.",
        "",
        "| workload | mode | " + " | ".join(frameworks) + " |",
        "| --- | --- | " + " | ".join("---" for _ in frameworks) + " |",
    ]
    keys = sorted({(r["workload"], r["mode"]) for r in main}, key=lambda k: (k[0], k[1] != "train"))
    for workload, mode in keys:
        row = {r["framework"]: r for r in main if r["workload"] == workload and r["mode"] == mode}
        reference = row.get(REFERENCE)
        reference_ms = reference["median_ms"] if reference and reference["status"] == "ok" else None
        cells = [_cell(row.get(f), reference_ms) for f in frameworks]
        lines.append(f"| {workload} {descriptions.get(workload, '')} | {mode} | " + " | ".join(cells) + " |")
    lines += ["", "Compile seconds (first call, including tracing) and share of the matmul peak:", ""]
    lines += ["| workload | mode | framework | compile s | min ms | GFLOP/s | % of peak | peak RSS MB |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(main, key=lambda r: (r["workload"], r["mode"], FRAMEWORK_ORDER.index(r["framework"]) if r["framework"] in FRAMEWORK_ORDER else 99)):
        if r["status"] == "ok":
            share = 100 * r["gflops"] / peak_gflops if peak_gflops else float("nan")
            lines.append(
                f"| {r['workload']} | {r['mode']} | {r['framework']} | {r['compile_s']:.1f} | {r['min_ms']:.1f} | "
                f"{r['gflops']:.1f} | {share:.1f} | {r['peak_rss_mb']:.0f} |"
            )
        else:
            lines.append(f"| {r['workload']} | {r['mode']} | {r['framework']} | {r['status']}: {r.get('error', '')[:80]} | | | | |")
    return "\n".join(lines) + "\n"


def chart(records, path):
    """Grouped bars of training and inference medians per workload (log scale)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    main = [r for r in records if not r.get("scaling") and r["status"] == "ok"]
    if not main:
        return None
    frameworks = [f for f in FRAMEWORK_ORDER if any(r["framework"] == f for r in main)]
    keys = sorted({(r["workload"], r["mode"]) for r in main}, key=lambda k: (k[0], k[1] != "train"))
    figure, axis = plt.subplots(figsize=(max(6, 1.4 * len(keys)), 4.5))
    width = 0.8 / max(1, len(frameworks))
    for index, framework in enumerate(frameworks):
        values = []
        for key in keys:
            match = [r for r in main if (r["workload"], r["mode"]) == key and r["framework"] == framework]
            values.append(match[0]["median_ms"] if match else 0)
        axis.bar([k + index * width for k in range(len(keys))], values, width, label=framework)
    axis.set_xticks([k + 0.4 - width / 2 for k in range(len(keys))], [f"{w}\n{m}" for w, m in keys])
    axis.set_yscale("log")
    axis.set_ylabel("median ms per step (log)")
    axis.legend(fontsize=8)
    axis.set_title("dandelion backends and peers, same machine, same run")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
