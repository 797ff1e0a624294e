"""CNN training and inference steps per backend, beside PyTorch eager (``python -m benchmarks.bench_cnn``).

Model: conv3x3(32, same) - BatchNorm - relu - maxpool2 - conv3x3(64, same) - BatchNorm -
relu - maxpool2 - Dense(10) on (64, 1, 28, 28), softmax cross-entropy, Adam written inline
(the same update in every framework). Convolutions have no bias (BatchNorm follows).
Also reports the convolutions' forward GFLOP/s against the measured float32 matmul peak.
Numbers depend on the machine's load; run on an otherwise idle machine for comparisons.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

BATCH, SIZE, CHANNELS, CLASSES = 64, 28, (1, 32, 64), 10
LEARNING_RATE, BETA1, BETA2, EPSILON = 1e-3, 0.9, 0.999, 1e-8


def median_ms(step, warmup, repeats):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def conv_forward_flops():
    c0, c1, c2 = CHANNELS
    return 2 * BATCH * 9 * (SIZE * SIZE * c1 * c0 + (SIZE // 2) ** 2 * c2 * c1)


def matmul_peak_gflops(size=1024, repeats=10):
    a = np.random.default_rng(0).standard_normal((size, size)).astype("float32")
    b = np.random.default_rng(1).standard_normal((size, size)).astype("float32")
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * size**3 / best / 1e9


def _timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, CHANNELS[0], SIZE, SIZE)).astype("float32")
    y = rng.integers(0, CLASSES, size=BATCH).astype("int32")
    return x, y


# ----------------------------------------------------------------------------- dandelion
def build_dandelion():
    """(model pieces, x, y, note): BatchNorm from dandelion.module if present, else inline."""
    import pytensor.tensor as pt

    from dandelion.functional import pool_2d
    from dandelion.module import Conv2D, Dense

    try:
        from dandelion.module import BatchNorm
    except ImportError:
        BatchNorm = None
    c0, c1, c2 = CHANNELS
    conv1 = Conv2D(c0, c1, kernel_size=3, pad="same", b=None, name="conv1")
    conv2 = Conv2D(c1, c2, kernel_size=3, pad="same", b=None, name="conv2")
    dense = Dense(c2 * (SIZE // 4) ** 2, CLASSES, name="dense")
    if BatchNorm is not None:
        bn1 = BatchNorm(input_shape=(None, c1, None, None), name="bn1")
        bn2 = BatchNorm(input_shape=(None, c2, None, None), name="bn2")
        note = "BatchNorm: dandelion.module.BatchNorm"
    else:
        bn1 = bn2 = None
        note = "BatchNorm: inline batch statistics (dandelion.module.BatchNorm not available)"

    def normalise(bn, h, train):
        if bn is None:
            mean = h.mean(axis=(0, 2, 3), keepdims=True)
            return (h - mean) / pt.sqrt(h.var(axis=(0, 2, 3), keepdims=True) + 1e-4)
        return bn.forward(h) if train else bn.predict(h)

    def network(x, train):
        h = pool_2d(pt.maximum(normalise(bn1, conv1.forward(x), train), 0), ws=(2, 2))
        h = pool_2d(pt.maximum(normalise(bn2, conv2.forward(h), train), 0), ws=(2, 2))
        return dense.forward(h.reshape((BATCH, -1)))

    params = conv1.collect_params() + conv2.collect_params() + dense.collect_params()
    self_updates = {}
    if bn1 is not None:
        params += bn1.collect_params() + bn2.collect_params()
    return network, params, (conv1, conv2), (bn1, bn2), self_updates, note


def inline_adam(loss, params):
    """Adam, written out: m, v and a step counter in shared variables."""
    import pytensor
    import pytensor.tensor as pt

    grads = pytensor.grad(loss, params)
    # float32 constants: a Python float would upcast to PyTensor's floatX (float64)
    b1, b2, lr, eps = (np.float32(v) for v in (BETA1, BETA2, LEARNING_RATE, EPSILON))
    t = pytensor.shared(np.float32(0), name="adam_t")
    t_new = t + 1
    scale = lr * pt.sqrt(1 - b2**t_new) / (1 - b1**t_new)
    updates = {t: t_new}
    for p, g in zip(params, grads):
        m = pytensor.shared(np.zeros(p.get_value().shape, dtype=p.dtype))
        v = pytensor.shared(np.zeros(p.get_value().shape, dtype=p.dtype))
        m_new = b1 * m + (1 - b1) * g
        v_new = b2 * v + (1 - b2) * g**2
        updates[m], updates[v] = m_new, v_new
        updates[p] = (p - scale * m_new / (pt.sqrt(v_new) + eps)).astype(p.dtype)
    return updates


def bench_dandelion(backend, warmup, repeats):
    import pytensor.tensor as pt

    import dandelion

    network, params, convs, bns, _, note = build_dandelion()
    x = pt.tensor("x", shape=(BATCH, CHANNELS[0], SIZE, SIZE), dtype="float32")
    y = pt.tensor("y", shape=(BATCH,), dtype="int32")
    logits = network(x, True)
    log_probs = logits - pt.logsumexp(logits, axis=1, keepdims=True)
    loss = -log_probs[pt.arange(BATCH), y].mean()
    updates = inline_adam(loss, params)
    for bn in bns:
        if bn is not None:
            updates.update(bn.collect_self_updates())
    x_val, y_val = data()
    started = time.perf_counter()
    train = dandelion.function([x, y], loss, updates=updates, mode=backend)
    train(x_val, y_val)
    compile_train = time.perf_counter() - started
    infer = dandelion.function([x], pt.argmax(network(x, False), axis=1), mode=backend)
    h = pt.tensor("h", shape=(BATCH, CHANNELS[1], SIZE // 2, SIZE // 2), dtype="float32")
    conv_only = dandelion.function([x, h], [convs[0].forward(x), convs[1].forward(h)], mode=backend)
    h_val = np.random.default_rng(2).standard_normal(h.type.shape).astype("float32")
    # np.asarray waits for JAX's asynchronous results, so every backend is timed to completion
    result = {
        "train_ms": median_ms(lambda: np.asarray(train(x_val, y_val)), warmup, repeats),
        "infer_ms": median_ms(lambda: np.asarray(infer(x_val)), warmup, repeats),
        "conv_fwd_ms": median_ms(lambda: [np.asarray(v) for v in conv_only(x_val, h_val)], warmup, repeats),
        "compile_train_s": compile_train,
        "loss_finite": bool(np.isfinite(train(x_val, y_val))),
    }
    return result, note


# ------------------------------------------------------------------------------- PyTorch
def bench_torch(warmup, repeats):
    try:
        import torch
    except ImportError:
        return None
    nn = torch.nn
    c0, c1, c2 = CHANNELS
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(c0, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * (SIZE // 4) ** 2, CLASSES),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=(BETA1, BETA2), eps=EPSILON)
    x_val, y_val = data()
    x, y = torch.from_numpy(x_val), torch.from_numpy(y_val).long()
    loss_fn = nn.CrossEntropyLoss()

    def train():
        model.train()
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(x).argmax(1)

    h = torch.randn(BATCH, c1, SIZE // 2, SIZE // 2)

    def conv_only():
        with torch.no_grad():
            model[0](x)
            model[4](h)

    return {
        "train_ms": median_ms(train, warmup, repeats),
        "infer_ms": median_ms(infer, warmup, repeats),
        "conv_fwd_ms": median_ms(conv_only, warmup, repeats),
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="c,numba,jax")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    peak = matmul_peak_gflops()
    flops = conv_forward_flops()
    print(f"float32 matmul peak (NumPy BLAS, 1024^3): {peak:.1f} GFLOP/s; conv forward work {flops / 1e9:.3f} GFLOP per step")
    rows = []
    torch_result = bench_torch(args.warmup, args.repeats)
    if torch_result is not None:
        rows.append((f"pytorch {torch_result['version']} eager ({torch_result['threads']} threads)", torch_result))
    else:
        print("PyTorch not installed: no eager baseline")
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        result, note = bench_dandelion(backend, args.warmup, args.repeats)
        rows.append((f"dandelion {backend} (compile {result['compile_train_s']:.1f} s)", result))
    print(note)
    reference = torch_result["train_ms"] if torch_result is not None else None
    print(f"{'':44s} {'train ms':>9s} {'infer ms':>9s} {'conv fwd ms':>11s} {'conv GFLOP/s':>12s} {'% peak':>7s} {'train/torch':>11s}")
    for label, r in rows:
        gflops = flops / (r["conv_fwd_ms"] / 1e3) / 1e9
        ratio = f"{r['train_ms'] / reference:.2f}x" if reference else "-"
        print(f"{label:44s} {r['train_ms']:9.1f} {r['infer_ms']:9.1f} {r['conv_fwd_ms']:11.2f} {gflops:12.1f} {100 * gflops / peak:6.1f}% {ratio:>11s}")


if __name__ == "__main__":
    main()
