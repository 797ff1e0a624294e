"""Several processes, one program: joining JAX's distributed runtime."""

from __future__ import annotations

import os

from dandelion.distributed._jax import require_jax
from dandelion.distributed.threads import (
    check_idle,
    check_nice,
    communication_threads,
    lower_priority,
    record_started,
    run_when_idle,
    thread_ids,
)

ENV_COORDINATOR = "DANDELION_COORDINATOR"
ENV_NUM_PROCESSES = "DANDELION_NUM_PROCESSES"
ENV_PROCESS_ID = "DANDELION_PROCESS_ID"


def _from_env(value, variable, where, argument, convert=str):
    if value is not None:
        return value
    raw = os.environ.get(variable)
    if raw is None or raw == "":
        return None
    try:
        return convert(raw)
    except ValueError as error:
        raise ValueError(f"{where}: ${variable} ({argument}) must be an integer, got {raw!r}") from error


def initialize(coordinator_address=None, num_processes=None, process_id=None, *, initialization_timeout=300,
               cpu_collectives="gloo", communication_nice=None, communication_idle=False):
    """Join the processes of one run (``jax.distributed.initialize``) before any JAX work.

    Every process runs the same script; afterwards ``jax.devices()`` lists the devices of
    all processes and ``make_mesh()`` spans them. Arguments left as None are read from
    ``$DANDELION_COORDINATOR`` (``host:port`` of process 0), ``$DANDELION_NUM_PROCESSES``
    and ``$DANDELION_PROCESS_ID``; when those are unset too, JAX detects a cluster
    (SLURM, Open MPI, Kubernetes, Cloud TPU) itself.

    Parameters
    ----------
    coordinator_address : str, optional
        ``"10.0.0.1:1234"``: process 0's address and a free port, the same in every process.
    num_processes : int, optional
    process_id : int, optional
        0 to ``num_processes - 1``, distinct in every process.
    initialization_timeout : int
        Seconds to wait for all processes to join before failing.
    cpu_collectives : {'gloo', 'mpi'} or None
        How CPU devices of different processes exchange data (gloo needs nothing else);
        None leaves JAX's setting alone.
    communication_idle : bool
        Linux only: run the threads that start during ``initialize`` (gloo's event
        loop, the coordination client, XLA's CPU worker threads;
        ``communication_threads()`` lists them) under ``SCHED_IDLE``: they get a core
        only when nothing else wants it, and a step thread that wakes takes it back at
        once. The threads that existed before, the calling one among them, keep their
        scheduling. For one process per core on a CPU-only machine: gloo's loop at times
        spins for milliseconds, and at nice 19 the step still waited up to a scheduler
        tick for its core, several times per step (see ``dandelion.distributed.threads``). Computation XLA runs on its worker threads
        (several threads per process) would run at the idle priority too; leave it
        False there.
    communication_nice : int in [0, 19], optional
        Linux only: instead of ``communication_idle``, the nice value of those threads.

    Returns
    -------
    (process_id, num_processes) : tuple of int
    """
    where = "dandelion.distributed.initialize"
    jax = require_jax(where)
    coordinator_address = _from_env(coordinator_address, ENV_COORDINATOR, where, "coordinator_address")
    num_processes = _from_env(num_processes, ENV_NUM_PROCESSES, where, "num_processes", int)
    process_id = _from_env(process_id, ENV_PROCESS_ID, where, "process_id", int)
    if num_processes is not None and int(num_processes) < 1:
        raise ValueError(f"{where}: num_processes must be >= 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= int(process_id) < int(num_processes):
        raise ValueError(f"{where}: process_id must be in [0, {int(num_processes) - 1}], got {process_id}")
    communication_nice = check_nice(where, communication_nice)
    communication_idle = check_idle(where, communication_idle, communication_nice)
    if cpu_collectives is not None:
        if cpu_collectives not in ("gloo", "mpi"):
            raise ValueError(f"{where}: cpu_collectives must be one of ['gloo', 'mpi', None], got {cpu_collectives!r}")
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    before = thread_ids()
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=initialization_timeout,
    )
    # The first process_index() creates XLA's CPU client, which starts gloo's loop.
    ids = jax.process_index(), jax.process_count()
    record_started(before)
    if communication_nice is not None:
        lower_priority(communication_threads(), communication_nice)
    if communication_idle:
        run_when_idle(communication_threads())
    return ids


def shutdown():
    """Leave the distributed runtime (``jax.distributed.shutdown``); every process calls it."""
    require_jax("dandelion.distributed.shutdown").distributed.shutdown()
