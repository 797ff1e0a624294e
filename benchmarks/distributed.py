"""``python -m benchmarks.distributed``: samples/s of W3 and W4 training over 1 and 2 devices.

Configurations, each in fresh processes with one thread per device, each process pinned
to its own cores: one process with one CPU device; one process with two simulated CPU
devices (``--xla_force_host_platform_device_count=2``); two processes with one CPU device
each, joined over 127.0.0.1 (gloo collectives). ``--accelerator`` instead runs one process
on the devices JAX finds (GPUs) with all of them on the data axis.
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

# XLA stops reading XLA_FLAGS at the first word that is not a --flag (such as
# "intra_op_parallelism_threads=1", which benchmarks.environment appends): keep to flags.
ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"
CPU_CONFIGS = [  # label, simulated devices per process, processes
    ("1 process x 1 device", 1, 1),
    ("1 process x 2 devices", 2, 1),
    ("2 processes x 1 device", 1, 2),
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


def run(workload, devices, processes, args, cpu=True):
    """One configuration; returns process 0's record (or a failure record)."""
    command = [sys.executable, "-m", "benchmarks.distributed_child", "--workload", workload,
               "--processes", str(processes), "--warmup", str(args.warmup), "--steps", str(args.steps)]
    port = _free_port()
    cores = sorted(os.sched_getaffinity(0))
    children = []
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
        return {"workload": workload, "devices": devices * processes, "processes": processes,
                "status": f"timed out after {args.timeout} s"}
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for stdout, _ in outputs:
        for line in stdout.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
    return {"workload": workload, "devices": devices * processes, "processes": processes, "status": "failed",
            "error": " | ".join(stderr[-300:] for _, stderr in outputs)}


def table(records):
    lines = ["| workload | configuration | platform | samples/s | ms/step | vs 1 device |", "| --- | --- | --- | --- | --- | --- |"]
    base = {}
    for record in records:
        label = f"{record['processes']} process(es) x {record['devices'] // record['processes']} device(s)"
        if record["status"] != "ok":
            lines.append(f"| {record['workload']} | {label} | - | {record['status']} | - | - |")
            continue
        base.setdefault(record["workload"], record["samples_per_s"])
        ratio = record["samples_per_s"] / base[record["workload"]]
        lines.append(
            f"| {record['workload']} | {label} | {record['platform']} | {record['samples_per_s']:.0f} | "
            f"{record['ms_per_step']:.1f} | {ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__)
    parser.add_argument("--workloads", default="W3,W4")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--accelerator", action="store_true", help="one process on the devices JAX finds")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    records = []
    for workload in args.workloads.split(","):
        configs = [(1, 1, False)] if args.accelerator else [(d, p, True) for _, d, p in CPU_CONFIGS]
        for devices, processes, cpu in configs:
            records.append(run(workload, devices, processes, args, cpu=cpu))
            print(json.dumps(records[-1]), flush=True)
    out = Path(args.out or Path(__file__).resolve().parent / "results" / time.strftime("distributed-%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    text = table(records)
    (out / "table.md").write_text(text)
    print(text)
    return records


if __name__ == "__main__":
    main()
