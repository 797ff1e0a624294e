"""Kernel-only time of the fused LSTM Op on the Python/C backends
(``python -m benchmarks.bench_lstm_kernel``).

Times the forward pass and the backward pass (``LSTMSequenceOp`` and
``LSTMSequenceGradOp``) alone, without the input projection, the loss or the optimizer:
``numpy`` calls the ``perform`` kernels of ``dandelion.ops.lstm_numpy`` directly (what
the C backend runs without ``blas__ldflags``), ``c`` a C-backend function of each Op
compiled with ``blas__ldflags=-lopenblas`` (``dandelion.ops.c.lstm``). Each
configuration runs in a child process pinned to the thread count
(``benchmarks.environment.pin_threads``); the report gives the median wall time of a
call and the CPU time per call (all threads), which on a shared machine says how
much of the wall time was waiting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks.environment import THREAD_VARIABLES


def _inputs(T, B, H, dtype, rng):
    gate_input = rng.standard_normal((T, B, 4 * H)).astype(dtype)
    W_hid = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(dtype)
    h0, c0 = (0.1 * rng.standard_normal((2, B, H))).astype(dtype)
    return gate_input, W_hid, h0, c0


def _numpy_calls(T, B, H, dtype):
    from dandelion.ops.lstm_numpy import lstm_backward, lstm_forward

    rng = np.random.default_rng(0)
    gate_input, W_hid, h0, c0 = _inputs(T, B, H, dtype, rng)
    peep = np.zeros((3, H), dtype=dtype)
    hs, cs, gates = lstm_forward(gate_input, W_hid, peep, h0, c0, None, False, False)
    d_hs, d_cs = rng.standard_normal((2, T, B, H)).astype(dtype)

    def forward():
        lstm_forward(gate_input, W_hid, peep, h0, c0, None, False, False)

    def backward():
        lstm_backward(W_hid, peep, h0, c0, None, hs, cs, gates, d_hs, d_cs, 0.0, False, False)

    return forward, backward


def _c_calls(T, B, H, dtype):
    import pytensor
    import pytensor.tensor as pt

    from dandelion.ops.lstm import LSTMSequenceGradOp, LSTMSequenceOp

    rng = np.random.default_rng(0)
    values = _inputs(T, B, H, dtype, rng)
    with pytensor.config.change_flags(blas__ldflags=os.environ.get("DANDELION_BENCH_BLAS", "-lopenblas")):
        gi, W, h0, c0 = (pt.tensor(n, dtype=dtype, shape=v.shape) for n, v in zip(("gi", "W", "h0", "c0"), values))
        outs = LSTMSequenceOp()(gi, W, h0, c0)
        fwd = pytensor.function([gi, W, h0, c0], outs, mode="c")
        hs, cs, gates = fwd(*values)
        d_hs, d_cs = rng.standard_normal((2, T, B, H)).astype(dtype)
        names = ("hs", "cs", "gates", "dhs", "dcs")
        fv = [pt.tensor(n, dtype=dtype, shape=v.shape) for n, v in zip(names, (hs, cs, gates, d_hs, d_cs))]
        bwd = pytensor.function([W, h0, c0, *fv], LSTMSequenceGradOp()(W, h0, c0, *fv), mode="c")
    back_values = (values[1], values[2], values[3], hs, cs, gates, d_hs, d_cs)
    return (lambda: fwd(*values)), (lambda: bwd(*back_values))


def _time(call, repeats):
    call()
    walls = []
    cpu0 = time.process_time()
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        walls.append(time.perf_counter() - started)
    cpu = (time.process_time() - cpu0) / repeats
    return 1e3 * float(np.median(walls)), 1e3 * cpu


def child(args):
    from benchmarks.environment import pin_threads

    pin_threads(args.threads)
    calls = {"numpy": _numpy_calls, "c": _c_calls}[args.impl](args.T, args.B, args.H, args.dtype)
    result = {}
    for name, call in zip(("forward", "backward"), calls, strict=True):
        result[name] = _time(call, args.repeats)
    print(json.dumps(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impls", default="numpy,c")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--T", type=int, default=50)
    parser.add_argument("--B", type=int, default=32)
    parser.add_argument("--H", type=int, default=256)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.impl, args.threads = args.child.split(":")
        args.threads = int(args.threads)
        return child(args)
    print(f"LSTM kernel, T {args.T} B {args.B} H {args.H} {args.dtype}: median wall ms / CPU ms per call")
    for threads in args.threads.split(","):
        for impl in args.impls.split(","):
            command = [sys.executable, "-m", "benchmarks.bench_lstm_kernel", "--child", f"{impl}:{threads}"]
            command += ["--T", str(args.T), "--B", str(args.B), "--H", str(args.H), "--dtype", args.dtype]
            command += ["--repeats", str(args.repeats)]
            # the BLAS pools read their sizes when NumPy loads, before the child could pin them
            env = {**os.environ, **{name: threads for name in THREAD_VARIABLES}}
            out = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
            if out.returncode != 0:
                print(f"{impl:6s} {threads} threads: failed\n{out.stderr[-2000:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            fw, bw = r["forward"], r["backward"]
            print(f"{impl:6s} {threads} threads: forward {fw[0]:7.2f} / {fw[1]:7.2f}   backward {bw[0]:7.2f} / {bw[1]:7.2f}")


if __name__ == "__main__":
    main()
