"""Child process: run one (workload, framework, mode) and print one JSON line.

Run in a process of its own so that peak memory is per run, thread settings are applied
before any numerical library loads, and a crash is reported instead of ending the suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--framework", required=True)  # dandelion-c | dandelion-numba | dandelion-jax | torch | jax
    parser.add_argument("--mode", choices=["train", "inference"], required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--override", default="{}", help="JSON dict merged into the workload config")
    args = parser.parse_args(argv)

    from benchmarks.environment import pin_threads

    pin_threads(args.threads)

    from benchmarks.timing import peak_rss_mb, time_steps
    from benchmarks.workloads import WORKLOADS

    record = {"workload": args.workload, "framework": args.framework, "mode": args.mode, "status": "ok"}
    try:
        _, workload = WORKLOADS[args.workload]
        config = dict(workload.config, **json.loads(args.override))
        record["config"] = config
        if args.framework.startswith("dandelion-"):
            compile_s, step = workload.build_dandelion(config, args.mode, args.framework.split("-", 1)[1])
        elif args.framework == "torch":
            from benchmarks.environment import pin_torch_threads

            pin_torch_threads(args.threads)
            compile_s, step = workload.build_torch(config, args.mode)
        elif args.framework == "jax":
            compile_s, step = workload.build_jax(config, args.mode)
        else:
            raise ValueError(f"unknown framework {args.framework!r}")
        record.update(time_steps(step, args.warmup, args.steps))
        record["compile_s"] = compile_s
        record["gflop"] = workload.flops(config, args.mode) / 1e9
        record["gflops"] = record["gflop"] / (record["median_ms"] / 1e3)
    except ModuleNotFoundError as error:
        record.update(status="unavailable", error=f"{type(error).__name__}: {error}")
    except Exception as error:  # noqa: BLE001 - every failure is reported, never dropped
        record.update(status="failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc()[-2000:])
    record["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write("RESULT " + json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
