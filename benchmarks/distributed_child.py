"""One run of ``benchmarks.distributed``: a workload's training step over a mesh.

The parent sets the threads, the device count (``XLA_FLAGS``), the CPU affinity and,
for several processes, ``$DANDELION_*``; every process prints ``RESULT {json}`` with its
own per-step timings, so the parent can tell a slow process from a slow step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time


def thread_cpu_seconds():
    """``{thread id: user + system CPU seconds}`` of this process's threads (Linux; {} elsewhere)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        found = {}
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
            found[tid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return found
    except OSError:
        return {}


def release_communication_threads(cores):
    """Let the distributed runtime's threads run on ``cores``; returns how many were moved.

    The parent pins each process to its own core so that XLA sizes its thread pool to
    one. Threads inherit that pin, gloo's too, which then shares the core with the step
    it waits for: on this 2-core machine a 4 KB all-reduce between two pinned processes
    took 4.1 ms against 0.8 ms unpinned (200 in a row). The threads are the ones
    ``initialize`` saw start (gloo's, the coordination client's, XLA's workers); the
    calling thread, which runs the step, keeps the pin.
    """
    from dandelion.distributed import communication_threads

    moved = 0
    for tid in communication_threads():
        try:
            os.sched_setaffinity(tid, cores)
            moved += 1
        except OSError:  # a thread that ended meanwhile
            continue
    return moved


def summarise(walls, cpus, batch):
    """Per-step figures of one process: medians, the spread, and samples/s of the global batch."""
    walls_sorted = sorted(walls)
    median = statistics.median(walls)
    return {
        "samples_per_s": batch / median,
        "ms_per_step": 1000 * median,
        "ms_per_step_p10": 1000 * walls_sorted[len(walls) // 10],
        "ms_per_step_p90": 1000 * walls_sorted[(9 * len(walls)) // 10],
        "cpu_ms_per_step": 1000 * statistics.median(cpus),
    }


def time_gradient_all_reduce(mesh, floats, repeats=10):
    """Median wall and CPU ms of one all-reduce of ``floats`` float32 values over the data axis.

    The size of the gradients: what the step's all-reduce moves, here alone, so the
    table can split a step into the local computation and the communication.
    """
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    size = mesh.shape["data"]
    split, whole = NamedSharding(mesh, PartitionSpec("data")), NamedSharding(mesh, PartitionSpec())
    total = jax.jit(lambda rows: rows.sum(axis=0), in_shardings=split, out_shardings=whole)
    local = len(mesh.local_devices)  # this process's rows (model axis of size 1)
    rows = jax.make_array_from_process_local_data(split, np.ones((local, floats), np.float32), (size, floats))
    for _ in range(3):
        total(rows).block_until_ready()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        total(rows).block_until_ready()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return 1000 * statistics.median(walls), 1000 * statistics.median(cpus)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--batch", type=int, default=None, help="global batch (default: the workload's)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--communication-cores", default=None,
                        help="comma-separated cores the non-computing threads may use (default: keep the pin)")
    parser.add_argument("--communication-nice", type=int, default=None,
                        help="nice value of the distributed runtime's threads (initialize's communication_nice)")
    parser.add_argument("--communication-idle", action="store_true",
                        help="run the distributed runtime's threads under SCHED_IDLE (initialize's communication_idle)")
    args = parser.parse_args(argv)

    from dandelion.distributed import DataParallelStep, initialize, make_mesh

    process_id = 0
    if args.processes > 1:
        process_id = initialize(initialization_timeout=60, communication_nice=args.communication_nice,
                                communication_idle=args.communication_idle)[0]
    import jax
    import numpy as np

    from benchmarks.workloads import WORKLOADS

    workload = WORKLOADS[args.workload][1]
    config = dict(workload.config)
    if args.batch:
        config["batch"] = args.batch
    started = time.perf_counter()
    # warm=False: the step compiles the graph itself; running the single-device
    # Function first would compile it a second time.
    _, single = workload.build_dandelion(config, "train", "jax", warm=False)
    inputs, labels = single.data
    step = DataParallelStep(single.function, mesh=make_mesh())
    rows = step.local_rows(len(inputs))
    local = (inputs[rows], labels[rows])
    float(step(*local))
    compile_s = time.perf_counter() - started
    moved = 0
    if args.communication_cores:
        moved = release_communication_threads({int(c) for c in args.communication_cores.split(",")})
    for _ in range(args.warmup):
        float(step(*local))
    threads_before = thread_cpu_seconds()
    walls, cpus = [], []
    for _ in range(args.steps):
        wall, cpu = time.perf_counter(), time.process_time()
        float(step(*local))  # reading the loss waits for the step (and its collectives)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    threads_after = thread_cpu_seconds()
    floats = sum(int(np.prod(p.get_value(borrow=True).shape)) for p in single.params)
    all_reduce = time_gradient_all_reduce(step.mesh, floats) if jax.device_count() > 1 else (None, None)
    busy = sum(1 for tid, seconds in threads_after.items() if seconds - threads_before.get(tid, 0.0) > 0)
    main = str(threading.get_native_id())
    main_cpu = threads_after.get(main, 0.0) - threads_before.get(main, 0.0)
    result = {
        "workload": args.workload, "devices": jax.device_count(), "processes": args.processes,
        "process_id": process_id, "platform": jax.devices()[0].platform, "batch": len(inputs),
        "local_batch": len(local[0]), **summarise(walls, cpus, len(inputs)), "compile_s": compile_s,
        "gradient_floats": floats, "all_reduce_ms": all_reduce[0], "all_reduce_cpu_ms": all_reduce[1],
        "threads": len(threads_after), "threads_busy_in_steps": busy, "threads_released": moved,
        "main_thread_cpu_ms_per_step": 1000 * main_cpu / args.steps,
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "status": "ok",
    }
    print("RESULT " + json.dumps(result), flush=True)
    if args.processes > 1:
        from dandelion.distributed import shutdown

        shutdown()


if __name__ == "__main__":
    main()
