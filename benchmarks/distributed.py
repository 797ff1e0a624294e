"""``python -m benchmarks.distributed``: samples/s of W3 and W4 training over 1 and 2 devices.

Configurations, each in fresh processes with one thread per device, each process pinned
to its own core: one process with one CPU device; the same at half the batch (one
process's share of a 2-way split: its step time is what two processes would take if
communication and the replicated optimizer update were free); one process with two
simulated CPU devices (``--xla_force_host_platform_device_count=2``); two processes with
one CPU device each, joined over 127.0.0.1 (gloo collectives; the threads ``initialize``
starts keep their process's core and run under SCHED_IDLE, see ``--communication``). ``--repeats`` rounds run
every configuration, alternating their order; the table gives medians over the rounds,
the speed-up against the one-device run of the same round, the CPU time per step of each
process (a step on a core shared with other jobs takes longer without taking more CPU
time) and the load average around the runs. ``--accelerator`` instead runs one process on
the devices JAX finds (GPUs) with all of them on the data axis.
Writes ``benchmarks/results/distributed-<timestamp>/`` (``results.jsonl``, ``table.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.distributed_report import label, merge, table

# One thread per device: XLA's CPU thread pool is sized from the CPUs a process may run
# on (its affinity, set below; there is no XLA flag for it) and Eigen's multi-threading
# is switched off.
ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"
CPU_CONFIGS = [  # simulated devices per process, processes, half batch
    (1, 1, False),
    (1, 1, True),
    (2, 1, False),
    (1, 2, False),
]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(devices, cpu, extra=None):
    env = dict(os.environ)
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "src"), str(root), env.get("PYTHONPATH")) if p)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[name] = "1"
    if cpu:
        env["JAX_PLATFORMS"] = "cpu"
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices} {ONE_THREAD}"
    env.update(extra or {})
    return env


def _communication(value):
    """``--communication``: 'idle', 'default' or 'nice<0..19>'."""
    if value in ("idle", "default"):
        return value
    if value.startswith("nice") and value[len("nice"):].isdigit() and 0 <= int(value[len("nice"):]) <= 19:
        return value
    raise argparse.ArgumentTypeError(f"expected idle, default or nice0..nice19, got {value!r}")


def _load():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _batch(workload, half):
    if not half:
        return None
    from benchmarks.workloads import WORKLOADS

    return WORKLOADS[workload][1].config["batch"] // 2


def run(workload, devices, processes, args, cpu=True, half=False):
    """One configuration in fresh processes; returns their merged record (or a failure record)."""
    command = [sys.executable, "-m", "benchmarks.distributed_child", "--workload", workload,
               "--processes", str(processes), "--warmup", str(args.warmup), "--steps", str(args.steps)]
    cores = sorted(os.sched_getaffinity(0))
    if processes > 1 and cpu and args.release_communication:
        command += ["--communication-cores", ",".join(map(str, cores))]
    if processes > 1 and args.communication == "idle":
        command += ["--communication-idle"]
    elif processes > 1 and args.communication.startswith("nice"):
        command += ["--communication-nice", args.communication[len("nice"):]]
    batch = _batch(workload, half)
    if batch:
        command += ["--batch", str(batch)]
    port = _free_port()
    children = []
    load_before = _load()
    try:
        for process_id in range(processes):
            extra = {}
            if processes > 1:
                extra = {"DANDELION_COORDINATOR": f"127.0.0.1:{port}", "DANDELION_NUM_PROCESSES": str(processes),
                         "DANDELION_PROCESS_ID": str(process_id)}
            mine = cores[process_id * devices:(process_id + 1) * devices] or cores
            children.append(subprocess.Popen(
                command, env=_env(devices, cpu, extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                preexec_fn=(lambda mine=mine: os.sched_setaffinity(0, mine)) if cpu else None,
            ))
        outputs = [child.communicate(timeout=args.timeout) for child in children]
    except subprocess.TimeoutExpired:
        return {"workload": workload, "devices": devices * processes, "processes": processes, "half_batch": half,
                "status": f"timed out after {args.timeout} s"}
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    results = [json.loads(line[len("RESULT "):]) for stdout, _ in outputs for line in stdout.splitlines()
               if line.startswith("RESULT ")]
    record = merge(workload, devices, processes, half, results, (load_before, _load()))
    if record["status"] != "ok":
        record["error"] = " | ".join(stderr[-300:] for _, stderr in outputs)
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__)
    parser.add_argument("--workloads", default="W3,W4")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="rounds of every configuration")
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--accelerator", action="store_true", help="one process on the devices JAX finds")
    parser.add_argument("--release-communication", action="store_true",
                        help="let gloo's threads use every core (default: they keep their process's core)")
    parser.add_argument("--communication", default="idle", type=_communication,
                        help="scheduling of gloo's threads in the 2-process runs: idle (SCHED_IDLE, the default), "
                             "niceN (nice value N in 0..19) or default (left alone)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    configs = [(1, 1, False)] if args.accelerator else CPU_CONFIGS
    records = []
    for workload in args.workloads.split(","):
        for round_index in range(args.repeats):
            for devices, processes, half in configs[:: -1 if round_index % 2 else 1]:
                records.append(run(workload, devices, processes, args, cpu=not args.accelerator, half=half))
                print(f"round {round_index + 1}, {workload}, {label(devices, processes, half)}: "
                      + json.dumps(records[-1]), flush=True)
    out = Path(args.out or Path(__file__).resolve().parent / "results" / time.strftime("distributed-%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    text = table(records)
    (out / "table.md").write_text(text)
    print(text)
    return records


if __name__ == "__main__":
    main()
