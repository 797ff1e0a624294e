"""``python -m benchmarks.cold_compile``: first-call compile time of each workload from empty caches.

#19 asks for cold-cache compile times, which users meet on every new machine and CI. Each
(workload, backend) runs in a child process (``benchmarks.run_one``, one step) whose
PyTensor ``base_compiledir`` and ``NUMBA_CACHE_DIR`` are new empty folders, so nothing
compiled by an earlier run, or by the other backends, is reused. The time reported is the
child's ``compile_s``: graph building, compilation and the first call.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks.__main__ import run_child

BACKENDS = ["dandelion-c", "dandelion-numba", "dandelion-jax"]


def cold_environment(environment, folder):
    """``environment`` with PyTensor's and Numba's caches moved into the empty ``folder``."""
    cold = dict(environment)
    flags = [flag for flag in cold.get("PYTENSOR_FLAGS", "").split(",") if flag and not flag.startswith(("base_compiledir=", "compiledir="))]
    cold["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={Path(folder) / 'pytensor'}"])
    cold["NUMBA_CACHE_DIR"] = str(Path(folder) / "numba")
    return cold


def run_cold(workload, framework, mode, threads, timeout):
    """The child's result record for one cold compile (``status`` 'failed' with the reason otherwise)."""
    settings = argparse.Namespace(threads=threads, warmup=0, steps=1, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="dandelion-cold-") as folder:
        return run_child(workload, framework, mode, settings, env=cold_environment(os.environ, folder))


def table(records, workloads, frameworks, mode):
    """Markdown: one row per workload, the cold compile seconds per backend."""
    by_key = {(r["workload"], r["framework"]): r for r in records}
    lines = [f"| workload ({mode}) | " + " | ".join(frameworks) + " |", "| --- |" + " --- |" * len(frameworks)]
    for workload in workloads:
        cells = []
        for framework in frameworks:
            record = by_key.get((workload, framework))
            cells.append(f"{record['compile_s']:.1f} s" if record and record.get("status") == "ok" else "failed")
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_compile", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5")
    parser.add_argument("--frameworks", default=",".join(BACKENDS))
    parser.add_argument("--mode", choices=["train", "inference"], default="train")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    workloads, frameworks = args.workloads.split(","), args.frameworks.split(",")
    records = []
    for workload in workloads:
        for framework in frameworks:
            record = run_cold(workload, framework, args.mode, args.threads, args.timeout)
            records.append(record)
            shown = f"{record['compile_s']:.1f} s" if record.get("status") == "ok" else record.get("error", "failed")[-200:]
            print(f" {workload} {framework:16s} cold compile {shown}", flush=True)
    print(table(records, workloads, frameworks, args.mode))
    return records


if __name__ == "__main__":
    main()
