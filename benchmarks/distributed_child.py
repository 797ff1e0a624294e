"""One run of ``benchmarks.distributed``: a workload's training step over a mesh.

The parent sets the threads, the device count (``XLA_FLAGS``) and, for several
processes, ``$DANDELION_*``; process 0 prints ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)

    from dandelion.distributed import DataParallelStep, initialize, make_mesh

    process_id = initialize(initialization_timeout=60)[0] if args.processes > 1 else 0
    import jax

    from benchmarks.workloads import WORKLOADS

    workload = WORKLOADS[args.workload][1]
    _, single = workload.build_dandelion(workload.config, "train", "jax")
    inputs, labels = single.data
    started = time.perf_counter()
    step = DataParallelStep(single.function, mesh=make_mesh())
    rows = step.local_rows(len(inputs))
    local = (inputs[rows], labels[rows])
    float(step(*local))
    compile_s = time.perf_counter() - started
    for _ in range(args.warmup):
        float(step(*local))
    started = time.perf_counter()
    for _ in range(args.steps):
        float(step(*local))  # reading the loss waits for the step
    elapsed = time.perf_counter() - started
    if process_id == 0:
        result = {
            "workload": args.workload, "devices": jax.device_count(), "processes": args.processes,
            "platform": jax.devices()[0].platform, "batch": len(inputs),
            "samples_per_s": len(inputs) * args.steps / elapsed, "ms_per_step": 1000 * elapsed / args.steps,
            "compile_s": compile_s, "status": "ok",
        }
        print("RESULT " + json.dumps(result), flush=True)
    if args.processes > 1:
        from dandelion.distributed import shutdown

        shutdown()


if __name__ == "__main__":
    main()
