"""Data-parallel training: one training graph, split over every device of one or several processes.

The model and its training graph are built as for one device; ``DataParallelStep``
splits each batch over the devices and keeps the weights and the optimizer state on
them between steps. ``step.pull()`` brings them back for checkpoints.

Run on the devices of one machine (two simulated CPU devices here; GPUs are found as
they are):

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python examples/data_parallel_training.py

Run as two processes (on two hosts, use process 0's address):

    DANDELION_COORDINATOR=127.0.0.1:12355 DANDELION_NUM_PROCESSES=2 DANDELION_PROCESS_ID=0 \\
        python examples/data_parallel_training.py --processes &
    DANDELION_COORDINATOR=127.0.0.1:12355 DANDELION_NUM_PROCESSES=2 DANDELION_PROCESS_ID=1 \\
        python examples/data_parallel_training.py --processes

With one process per core of one machine's CPU, pin each (``taskset -c 0`` and
``taskset -c 1`` before ``python``) and add ``--communication-idle``: gloo's threads then
run only when their core has nothing else to do (see the docs' "Scaling out").
"""

from __future__ import annotations

import argparse

import numpy as np
import pytensor.tensor as pt

from dandelion.activation import relu, softmax
from dandelion.distributed import DataParallelStep, initialize, make_mesh
from dandelion.module import Dense, Dropout, Module
from dandelion.objective import categorical_crossentropy
from dandelion.update import adam
from dandelion.util import save_checkpoint

BATCH, FEATURES, CLASSES = 64, 20, 4


class Classifier(Module):
    def __init__(self):
        super().__init__(name="classifier")
        self.fc1 = Dense(FEATURES, 64)
        self.drop = Dropout(seed=1)
        self.fc2 = Dense(64, CLASSES)

    def forward(self, x):
        return softmax(self.fc2.forward(self.drop.forward(relu(self.fc1.forward(x)), p=0.1)))


def synthetic_batches(steps, seed=0):
    """Separable classes: the label is the argmax of a fixed projection of the features."""
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((FEATURES, CLASSES))
    for _ in range(steps):
        x = rng.standard_normal((BATCH, FEATURES)).astype("float32")
        yield x, np.argmax(x @ projection, axis=1).astype("int32")


def main(steps=200, processes=False, checkpoint=None, verbose=True, communication_idle=False):
    if processes:
        # coordinator, count and id from $DANDELION_*
        process_id, _ = initialize(communication_idle=communication_idle)
    else:
        process_id = 0
    np.random.seed(0)  # the same initial weights in every process
    model = Classifier()
    # JAX needs static shapes: the global batch size is part of the graph.
    x = pt.tensor("x", shape=(BATCH, FEATURES), dtype="float32")
    y = pt.tensor("y", shape=(BATCH,), dtype="int32")
    loss = categorical_crossentropy(model.forward(x), y).mean()
    updates = adam(loss, model.collect_params(), learning_rate=0.01)
    updates.update(model.collect_self_updates())  # dropout's step counter

    mesh = make_mesh()  # every device of every process on the data axis
    step = DataParallelStep([x, y], loss, updates, mesh=mesh)
    rows = step.local_rows(BATCH)  # this process's share of each global batch
    losses = []
    for index, (batch_x, batch_y) in enumerate(synthetic_batches(steps)):
        losses.append(float(step(batch_x[rows], batch_y[rows])))
        if verbose and process_id == 0 and index % 50 == 0:
            print(f"step {index:4d}  loss {losses[-1]:.4f}  devices {mesh.devices.size}")

    step.pull()  # weights and optimizer state back into the shared variables
    if checkpoint and process_id == 0:
        save_checkpoint(checkpoint, model, updates, user_data={"steps": steps})
    return {"losses": np.asarray(losses), "weights": model.get_weights()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--processes", action="store_true", help="join the processes named by $DANDELION_*")
    parser.add_argument("--checkpoint", default=None, help="save a checkpoint here at the end")
    parser.add_argument("--communication-idle", action="store_true",
                        help="run gloo's threads under SCHED_IDLE (one process per core; Linux)")
    arguments = parser.parse_args()
    main(steps=arguments.steps, processes=arguments.processes, checkpoint=arguments.checkpoint,
         communication_idle=arguments.communication_idle)
