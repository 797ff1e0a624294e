"""Child process of tests/test_distributed.py (JAX devices are fixed when JAX starts).

``python -m tests.distributed_worker devices OUT``: one process with two simulated CPU
devices (the parent sets ``XLA_FLAGS``); trains the tiny model on the single-device JAX
function, on a 2-device data mesh, on a tensor-parallel mesh, and through checkpoints
saved on one mesh and loaded on the other; records bad-input messages.

``python -m tests.distributed_worker process OUT``: one of several processes joined by
``dandelion.distributed.initialize`` (coordinator and ids from the environment); each
feeds its own rows of the global batches. Process 0 runs gloo's threads at nice
``COMMUNICATION_NICE``, process 1 under ``SCHED_IDLE``; each records the scheduling of
those threads and of its own calling thread. Process 0 writes the results.

Results go to ``OUT/<mode>.npz``; the parent asserts on them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

STEPS = 4
COMMUNICATION_NICE = 19


def _run_function(function, data):
    return [float(function(*batch)) for batch in data]


def _run_step(step, data, rows=slice(None)):
    return [float(step(*(part[rows] for part in batch))) for batch in data]


def _store(results, prefix, losses, values):
    results[f"{prefix}/loss"] = np.asarray(losses)
    for name, value in values.items():
        results[f"{prefix}/w/{name}"] = value


def _message(call):
    try:
        call()
    except (ValueError, TypeError, ImportError) as error:
        return f"{type(error).__name__}: {error}"
    return "no error"


def devices(out):
    import jax

    import dandelion
    from dandelion.distributed import DataParallelStep, make_mesh
    from dandelion.util import load_checkpoint, save_checkpoint
    from tests.distributed_model import batches, build, weights

    data = batches(STEPS)
    results = {}

    # One graph, compiled once (PyTensor's rewrites cost seconds); every run below
    # starts from the same initial state.
    model, inputs, loss, updates = build()
    function = dandelion.function(inputs, loss, updates=updates, mode="jax")
    state = DataParallelStep(function, mesh=make_mesh(devices=jax.devices()[:1])).state_variables
    initial = [np.array(v.get_value()) for v in state]

    def restart():
        for variable, value in zip(state, initial):
            variable.set_value(value.copy())

    _store(results, "reference", _run_function(function, data), weights(model, updates))
    results["float64_variables"] = np.asarray(
        [str(v) for v in function.maker.fgraph.variables if getattr(v, "dtype", None) == "float64"], dtype=str
    )

    for label, mesh, rules in (
        ("data2", make_mesh(), None),
        ("data1", make_mesh(devices=jax.devices()[:1]), None),
        ("model2", make_mesh(data=1, model=2), {"fc1.W": (None, "model")}),
    ):
        restart()
        step = DataParallelStep(function, mesh=mesh, sharding_rules=rules, module=model)
        before = step.device_state
        losses = _run_step(step, data)
        if label == "data2":
            # Updated state was donated to the step (its old buffers are gone), state it
            # only reads was not; the new state is still on both devices.
            results["data2/donated"] = np.asarray([before[n].is_deleted() for n in ("fc1.W", "adam.t")])
            results["data2/kept"] = np.asarray(before["drop.seed_state"].is_deleted())
            results["data2/devices"] = np.asarray(len(step.device_state["fc1.W"].sharding.device_set))
        step.pull()
        _store(results, label, losses, weights(model, updates))
        if label == "model2":
            for name in ("fc1.W", "adam.m@fc1.W", "fc2.W"):
                shards = step.device_state[name].addressable_shards
                results[f"model2/shard_shapes/{name}"] = np.asarray([shard.data.shape for shard in shards])

    # Checkpoints: two steps on one mesh, save; scramble every variable, load, and two
    # more steps on the other mesh.
    meshes = {"2to1": (make_mesh(), make_mesh(devices=jax.devices()[:1])),
              "1to2": (make_mesh(devices=jax.devices()[:1]), make_mesh())}
    for label, (first, second) in meshes.items():
        restart()
        step = DataParallelStep(function, mesh=first)
        losses = _run_step(step, data[:2])
        step.pull()
        path = Path(out) / f"{label}.ckpt"
        save_checkpoint(path, model, updates)
        for variable in state:
            variable.set_value(np.full_like(variable.get_value(), 3))
        load_checkpoint(path, model, updates)
        step = DataParallelStep(function, mesh=second)
        losses += _run_step(step, data[2:])
        step.pull()
        _store(results, f"resume{label}", losses, weights(model, updates))

    # Variable names (Theano-era) match too.
    step = DataParallelStep(function, mesh=make_mesh(data=1, model=2), sharding_rules={"W@Dense|fc1": (None, "model")})
    results["variable_name_rule"] = np.asarray(step.state_shardings["adam.m@W@Dense|fc1"], dtype=object).astype(str)

    # Bad input.
    mesh = make_mesh()
    results["error/data_axis"] = _message(lambda: DataParallelStep(function, mesh=mesh, data_axis="batch"))
    results["error/rule_no_match"] = _message(
        lambda: DataParallelStep(function, mesh=mesh, sharding_rules={"fc1.nope": (None, "model")}, module=model)
    )
    results["error/rule_axis"] = _message(
        lambda: DataParallelStep(function, mesh=mesh, sharding_rules={"fc1.W": (None, "tensor")}, module=model)
    )
    results["error/rule_length"] = _message(
        lambda: DataParallelStep(function, mesh=make_mesh(data=1, model=2), sharding_rules={"fc2.b": ("model",)}, module=model)
    )
    step = DataParallelStep(function, mesh=mesh)
    x, y = data[0]
    results["error/batch"] = _message(lambda: step(x[:3], y[:3]))
    results["error/arity"] = _message(lambda: step(x))
    np.savez(Path(out) / "devices.npz", **results)


def _scheduling(tid):
    """(policy, nice) of a thread; 0 is the calling one."""
    return os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid)


def process(out):
    from dandelion.distributed import DataParallelStep, communication_threads, initialize, make_mesh, shutdown
    from tests.distributed_model import GLOBAL_BATCH, batches, build, weights

    main_before = _scheduling(0)
    idle = os.environ["DANDELION_PROCESS_ID"] == "1"
    process_id, count = initialize(
        initialization_timeout=30, communication_nice=None if idle else COMMUNICATION_NICE, communication_idle=idle
    )
    scheduling = {"threads": np.asarray([_scheduling(tid) for tid in communication_threads()]),
                  "main": np.asarray([main_before, _scheduling(0)])}
    model, inputs, loss, updates = build()
    step = DataParallelStep(inputs, loss, updates, mesh=make_mesh())
    rows = step.local_rows(GLOBAL_BATCH)
    losses = _run_step(step, batches(STEPS), rows)
    step.pull()
    if process_id == 0:
        results = {"count": np.asarray(count), "rows": np.asarray([rows.start, rows.stop]),
                   **{f"scheduling0/{k}": v for k, v in scheduling.items()}}
        _store(results, "processes", losses, weights(model, updates))
        np.savez(Path(out) / "process.npz", **results)
    else:
        np.save(Path(out) / f"rows{process_id}.npy", np.asarray([rows.start, rows.stop]))
        np.savez(Path(out) / f"scheduling{process_id}.npz", **scheduling)
    shutdown()


if __name__ == "__main__":
    {"devices": devices, "process": process}[sys.argv[1]](sys.argv[2])
