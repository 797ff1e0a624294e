"""W3 (the CNN) per backend beside PyTorch eager, plus the convolutions' forward GFLOP/s.

``python -m benchmarks.bench_cnn``. The training and inference steps are the suite's W3
workload (``benchmarks.workloads.cnn``); this script adds the two convolutions timed alone
against the measured float32 matmul peak. Each framework runs in a child process of its
own, as in the suite's runner: thread counts are pinned before any numerical library
loads, and one framework's thread pools cannot slow another's. Run on an otherwise idle
machine: with two threads on two cores, a third busy process makes PyTorch and OpenBLAS
spin-wait (PyTorch's step measured 384 ms instead of 18 ms next to a test run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

from benchmarks.workloads import cnn


def _conv_inputs(config):
    (c0, c1, _), size, batch = config["channels"], config["size"], config["batch"]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, c0, size, size)).astype("float32")
    h = rng.standard_normal((batch, c1, size // 2, size // 2)).astype("float32")
    return x, h


def dandelion_conv_step(config, backend):
    import pytensor.tensor as pt

    import dandelion
    from dandelion.module import Conv2D

    c0, c1, c2 = config["channels"]
    x_val, h_val = _conv_inputs(config)
    x, h = pt.tensor("x", shape=x_val.shape, dtype="float32"), pt.tensor("h", shape=h_val.shape, dtype="float32")
    first, second = Conv2D(c0, c1, kernel_size=3, pad="same", b=None), Conv2D(c1, c2, kernel_size=3, pad="same", b=None)
    function = dandelion.function([x, h], [first.forward(x), second.forward(h)], mode=backend)
    # np.asarray waits for JAX's asynchronous results.
    return lambda: [np.asarray(v) for v in function(x_val, h_val)]


def torch_conv_step(config):
    import torch

    c0, c1, c2 = config["channels"]
    x, h = (torch.from_numpy(v) for v in _conv_inputs(config))
    first, second = torch.nn.Conv2d(c0, c1, 3, padding=1, bias=False), torch.nn.Conv2d(c1, c2, 3, padding=1, bias=False)

    def step():
        with torch.no_grad():
            return first(x), second(h)

    return step


def child(framework, threads, warmup, repeats):
    """Time one framework's train, inference and conv steps; print one JSON line."""
    from benchmarks.environment import pin_threads

    pin_threads(threads)
    from benchmarks.timing import time_steps

    config = cnn.CONFIG
    if framework == "torch":
        from benchmarks.environment import pin_torch_threads

        pin_torch_threads(threads)
        steps = {mode: cnn.build_torch(config, mode)[1] for mode in ("train", "inference")}
        steps["conv"] = torch_conv_step(config)
    else:
        backend = framework.split("-", 1)[1]
        steps = {mode: cnn.build_dandelion(config, mode, backend)[1] for mode in ("train", "inference")}
        steps["conv"] = dandelion_conv_step(config, backend)
    ms = {mode: time_steps(step, warmup, repeats)["median_ms"] for mode, step in steps.items()}
    sys.stdout.write("RESULT " + json.dumps(ms) + "\n")


def peak_child(threads):
    from benchmarks.environment import pin_threads

    pin_threads(threads)
    from benchmarks.peak import matmul_peak_gflops

    sys.stdout.write("RESULT " + json.dumps({"peak": matmul_peak_gflops()}) + "\n")


def run_child(arguments):
    completed = subprocess.run([sys.executable, "-m", "benchmarks.bench_cnn", *arguments], capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        return None, (completed.stderr or completed.stdout).strip().splitlines()[-1:]
    return json.loads(lines[-1][len("RESULT ") :]), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="c,numba,jax")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--peak-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.threads, args.warmup, args.repeats)
    if args.peak_child:
        return peak_child(args.threads)

    config = cnn.CONFIG
    peak = run_child(["--peak-child", "--threads", str(args.threads)])[0]["peak"]
    conv_gflop = cnn.conv_forward_flops(config) / 1e9
    print(f"float32 matmul peak {peak:.1f} GFLOP/s; conv forward work {conv_gflop:.3f} GFLOP per step; {args.threads} threads")
    frameworks = ["torch"] + [f"dandelion-{b.strip()}" for b in args.backends.split(",") if b.strip()]
    reference = None
    print(f"{'':18s} {'train ms':>9s} {'infer ms':>9s} {'conv fwd ms':>11s} {'conv GFLOP/s':>12s} {'% peak':>7s} {'train/torch':>11s}")
    for label in frameworks:
        ms, error = run_child(["--child", label, "--threads", str(args.threads), "--warmup", str(args.warmup), "--repeats", str(args.repeats)])
        if ms is None:
            print(f"{label:18s} failed or unavailable: {' '.join(error)}")
            continue
        reference = ms["train"] if label == "torch" else reference
        gflops = conv_gflop / (ms["conv"] / 1e3)
        ratio = f"{ms['train'] / reference:.2f}x" if reference else "-"
        print(f"{label:18s} {ms['train']:9.1f} {ms['inference']:9.1f} {ms['conv']:11.2f} {gflops:12.1f} {100 * gflops / peak:6.1f}% {ratio:>11s}")


if __name__ == "__main__":
    main()
