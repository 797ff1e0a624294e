"""Recurrent training and inference steps per backend, beside PyTorch eager and JAX
(``python -m benchmarks.bench_recurrent``).

Workloads W1 (LSTM(256)) and W2 (GRU(256)) of the shared suite: a classifier on input
(T=50, B=32, D=128), final hidden state -> Dense(10) -> softmax cross-entropy, Adam
(``dandelion.update.adam``; ``torch.optim.Adam``; Adam written out for hand-written
JAX). dandelion's LSTM runs without peepholes, as ``torch.nn.LSTM`` does. Every run is
a child process with the same thread settings (``benchmarks.run_one``); "compile" is
the seconds to build and compile the step function (first call for JAX and PyTorch).

Each run is ``benchmarks.run_one`` in a child process, with one change: a dandelion JAX
step blocks until its result is ready (PyTensor's JAX functions return JAX arrays
asynchronously, so an unblocked step times only the dispatch). The C backend needs a
BLAS that PyTensor can link; without one (PyTensor warns "could not link to a BLAS")
its matrix products run a slow fallback. When ``blas__ldflags`` is unset and a system
OpenBLAS exists, ``dandelion-c+openblas`` runs the C backend linked to it as well.

dandelion's LSTM runs as one fused Op (``dandelion.ops.lstm_sequence``: forward loop and
back-propagation through time in one kernel per backend); its GRU scans ``gru_step``.

``--scan-cost`` adds what one recurrent step costs: inference at T=50 and T=10, the
difference per step, beside NumPy doing one step's arithmetic (the floor for a loop
that launches the same kernels one step at a time).

Numbers depend on the machine's load; on a shared machine, say so with them.
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import subprocess
import sys
import time

import numpy as np

FRAMEWORKS = ["dandelion-c", "dandelion-numba", "dandelion-jax", "torch", "jax"]
WORKLOADS = {"W1": "lstm", "W2": "gru"}
THEANO_REFERENCE_MS = {"W1": 277.0, "W2": 183.0}  # the old library on Theano 1.0.5, measured on this machine


def numpy_step_floor_ms(cell, batch=32, hidden=256, repeats=200):
    """One recurrent step's arithmetic in NumPy: the hidden matmul and the gate math."""
    rng = np.random.default_rng(0)
    gates = 4 if cell == "lstm" else 3
    h = rng.standard_normal((batch, hidden)).astype("float32")
    c = rng.standard_normal((batch, hidden)).astype("float32")
    W = rng.standard_normal((hidden, gates * hidden)).astype("float32")
    x = rng.standard_normal((batch, gates * hidden)).astype("float32")

    def step():
        a = x + h @ W
        s = 1 / (1 + np.exp(-a))
        return s[:, :hidden] * c + s[:, hidden : 2 * hidden] * np.tanh(a[:, -hidden:])

    step()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats * 1e3


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1:])
    if argv[:1] == ["--numpy-floor"]:
        print(f"FLOOR {numpy_step_floor_ms(argv[1]):.6f}")
        return None
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_recurrent", description=__doc__)
    parser.add_argument("--workloads", default="W1,W2")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--modes", default="train,inference", help='"" to skip the main table')
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--scan-cost", action="store_true")
    args = parser.parse_args(argv)

    from benchmarks.environment import describe, pin_threads

    pin_threads(args.threads)
    frameworks = args.frameworks.split(",")
    if "dandelion-c" in frameworks and _openblas_flags() and "dandelion-c+openblas" not in frameworks:
        frameworks.insert(frameworks.index("dandelion-c") + 1, "dandelion-c+openblas")
    args.frameworks = ",".join(frameworks)
    environment = describe(args.threads)
    print(f"{environment['cpu']}, {args.threads} threads; load average {os.getloadavg()[0]:.1f}", flush=True)
    results = {}
    for workload in args.workloads.split(","):
        for mode in filter(None, args.modes.split(",")):
            for framework in args.frameworks.split(","):
                result = run_child(workload, framework, mode, args)
                results[workload, mode, framework] = result
                if result.get("status") == "ok":
                    shown = f"{result['median_ms']:8.1f} ms   compile {result['compile_s']:5.1f} s"
                else:
                    shown = f"{result.get('status')}: {result.get('error', '')[-200:]}"
                print(f"{workload} {WORKLOADS[workload]:<4} {mode:<9} {framework:<16} {shown}", flush=True)
    _summary(results)
    if args.scan_cost:
        _scan_cost(args)


def _openblas_flags():
    """``-lopenblas`` when PyTensor has no BLAS flags of its own and the library exists."""
    import pytensor

    if pytensor.config.blas__ldflags or ctypes.util.find_library("openblas") is None:
        return None
    return "-lopenblas"


def run_child(workload, framework, mode, args, override=None):
    """One measurement in a child process; returns its result record."""
    env = dict(os.environ)
    if framework == "dandelion-c+openblas":
        framework = "dandelion-c"
        env["PYTENSOR_FLAGS"] = ",".join(filter(None, [env.get("PYTENSOR_FLAGS"), f"blas__ldflags={_openblas_flags()}"]))
    command = [
        sys.executable, "-m", "benchmarks.bench_recurrent", "--child",
        "--workload", workload, "--framework", framework, "--mode", mode, "--threads", str(args.threads),
        "--warmup", str(args.warmup), "--steps", str(args.steps), "--override", json.dumps(override or {}),
    ]  # fmt: skip
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"timed out after {args.timeout} s"}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if lines:
        return json.loads(lines[-1][len("RESULT ") :])
    return {"status": "failed", "error": (completed.stderr or completed.stdout)[-500:]}


def child(argv):
    """``benchmarks.run_one`` with dandelion's JAX steps made blocking."""
    from benchmarks import run_one
    from benchmarks.workloads import WORKLOADS

    for _, workload in WORKLOADS.values():
        build = workload.build_dandelion

        def blocking_build(config, mode, backend, build=build):
            compile_s, step = build(config, mode, backend)
            return compile_s, lambda: np.asarray(step())

        workload.build_dandelion = blocking_build
    run_one.main(argv)


def _summary(results):
    print("\nTargets (training step): best dandelion backend <= 2.0x PyTorch eager; every backend faster than Theano")
    for workload, cell in WORKLOADS.items():
        ok = {k[2]: r["median_ms"] for k, r in results.items() if k[0] == workload and k[1] == "train" and r.get("status") == "ok"}
        ours = {f: ms for f, ms in ok.items() if f.startswith("dandelion")}
        if not ours:
            continue
        best = min(ours, key=ours.get)
        torch_ms = ok.get("torch")
        ratio = f"{ours[best] / torch_ms:.2f}x PyTorch" if torch_ms else "PyTorch not measured"
        slower = [f for f, ms in ours.items() if ms >= THEANO_REFERENCE_MS[workload]]
        print(
            f"  {workload} {cell}: best {best} {ours[best]:.1f} ms = {ratio}; "
            f"Theano {THEANO_REFERENCE_MS[workload]:.0f} ms; slower than Theano: {slower or 'none'}"
        )


def _numpy_floor_in_child(cell):
    # NumPy's BLAS reads its thread count when NumPy is imported; a child process sees
    # the pinned count, this one (NumPy already imported) would not.
    command = [sys.executable, "-m", "benchmarks.bench_recurrent", "--numpy-floor", cell]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300).stdout
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("FLOOR ")))


def _scan_cost(args):
    print("\nPer-step cost of the recurrence (LSTM: fused Op, GRU: scan; inference, (T=50 - T=10) / 40), against NumPy doing one step's arithmetic")
    for workload, cell in WORKLOADS.items():
        if workload not in args.workloads.split(","):
            continue
        floor = _numpy_floor_in_child(cell)
        for framework in args.frameworks.split(","):
            long = run_child(workload, framework, "inference", args, {"steps": 50})
            short = run_child(workload, framework, "inference", args, {"steps": 10})
            if long.get("status") != "ok" or short.get("status") != "ok":
                print(f"  {workload} {framework}: failed")
                continue
            per_step = (long["median_ms"] - short["median_ms"]) / 40
            print(f"  {workload} {cell} {framework:<16} {per_step * 1e3:7.0f} us/step  (NumPy step {floor * 1e3:5.0f} us)")


if __name__ == "__main__":
    main()
