"""Benchmark workloads: the same models in dandelion, PyTorch and hand-written JAX.

Each workload module defines ``CONFIG`` (shapes), ``flops(config, mode)`` and one builder
per framework family: ``build_dandelion(config, mode, backend)``, ``build_torch(config, mode)``,
``build_jax(config, mode)``. A builder returns ``(compile_seconds, step)`` where ``step()`` runs
one training or inference step on a fixed batch.
"""

from benchmarks.workloads import cnn, mlp, recurrent, transformer

WORKLOADS = {
    "W1": ("LSTM(256) classifier, T=50 B=32 D=128", recurrent.lstm_workload()),
    "W2": ("GRU(256) classifier, T=50 B=32 D=128", recurrent.gru_workload()),
    "W3": ("CNN conv32-BN-pool-conv64-BN-pool-Dense10, B=64 1x28x28", cnn.workload()),
    "W4": ("MLP 784-1024-1024-10 relu, B=256", mlp.workload()),
    "W5": ("Transformer encoder 2x(d128 h4 ff512), T=64 B=32", transformer.workload()),
}
