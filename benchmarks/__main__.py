"""``python -m benchmarks``: every workload on every framework, one table and one chart.

Each (workload, framework, mode) runs in a child process with the same thread settings.
Results go to ``benchmarks/results/<timestamp>/``: ``results.jsonl``, ``table.md``,
``chart.png`` and, with the scaling runs, ``scaling.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FRAMEWORKS = ["dandelion-c", "dandelion-numba", "dandelion-jax", "torch", "jax"]


def run_child(workload, framework, mode, args, override=None, env=None):
    """The child's result record (``status`` 'failed' with the reason when it gave none); ``env`` replaces the environment."""
    command = [
        sys.executable, "-m", "benchmarks.run_one", "--workload", workload, "--framework", framework,
        "--mode", mode, "--threads", str(args.threads), "--warmup", str(args.warmup), "--steps", str(args.steps),
    ]
    if override:
        command += ["--override", json.dumps(override)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env)
        lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
        if lines:
            return json.loads(lines[-1][len("RESULT "):])
        error = (completed.stderr or completed.stdout)[-500:]
    except subprocess.TimeoutExpired:
        error = f"timed out after {args.timeout} s"
    return {"workload": workload, "framework": framework, "mode": mode, "status": "failed", "error": error}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--modes", default="train,inference")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling runs")
    parser.add_argument("--only-scaling", action="store_true", help="run only the scaling runs")
    parser.add_argument("--no-distributed", action="store_true", help="skip the 1 vs 2 devices/processes runs")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from benchmarks.environment import describe, pin_threads

    pin_threads(args.threads)
    from benchmarks.peak import matmul_peak_gflops
    from benchmarks.report import chart, markdown_table
    from benchmarks.scaling import SCALING, scaling_chart, scaling_table
    from benchmarks.workloads import WORKLOADS

    out = Path(args.out or Path(__file__).parent / "results" / time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    environment = describe(args.threads)
    peak = matmul_peak_gflops()
    print(f"{environment['cpu']}, {args.threads} threads, float32 matmul peak {peak:.1f} GFLOP/s", flush=True)
    records = []
    workloads = args.workloads.split(",")
    frameworks = args.frameworks.split(",")
    with open(out / "results.jsonl", "w") as jsonl:
        jsonl.write(json.dumps({"environment": environment, "matmul_peak_gflops": peak}) + "\n")

        def record(result):
            records.append(result)
            jsonl.write(json.dumps(result) + "\n")
            jsonl.flush()
            shown = f"{result['median_ms']:.1f} ms (compile {result['compile_s']:.1f} s)" if result["status"] == "ok" else f"{result['status']}: {result.get('error', '')[:120]}"
            swept = f" {result['scaling']}={result['config'][result['scaling']]}" if result.get("scaling") else ""
            print(f"{result['workload']:>3} {result['mode']:<9} {result['framework']:<16} {shown}{swept}", flush=True)

        for workload in [] if args.only_scaling else workloads:
            for mode in args.modes.split(","):
                for framework in frameworks:
                    record(run_child(workload, framework, mode, args))
        if not args.no_scaling:
            for workload, parameter, values in SCALING:
                if workload not in workloads:
                    continue
                for framework in frameworks:
                    for value in values:
                        result = run_child(workload, framework, "train", args, {parameter: value})
                        result["scaling"] = parameter
                        result.setdefault("config", {parameter: value})
                        record(result)
    descriptions = {key: f"({text})" for key, (text, _) in WORKLOADS.items()}
    table = markdown_table(records, environment, peak, descriptions) + "\n" + scaling_table(records)
    parallel = [w for w in ("W3", "W4") if w in workloads]
    if parallel and "dandelion-jax" in frameworks and not args.no_distributed:
        from benchmarks import distributed

        rows = distributed.main(["--workloads", ",".join(parallel), "--warmup", str(args.warmup), "--steps",
                                 str(args.steps), "--out", str(out / "distributed")])
        table += "\nData-parallel training (dandelion-jax, one thread per device), samples/s:\n\n" + distributed.table(rows)
    (out / "table.md").write_text(table)
    chart(records, out / "chart.png")
    scaling_chart(records, out / "scaling.png")
    print(table)
    print(f"results in {out}")


if __name__ == "__main__":
    main()
