"""The threads ``initialize`` starts, and their scheduling priority (Linux).

gloo, JAX's collectives between CPU processes, runs an event loop that at times spins on
``epoll_wait`` for milliseconds (traced: thousands of calls, each reporting a socket
that the loop then does not read): on a machine whose cores all compute, it takes a core
away from a step. A low nice value is not enough: at nice 19 the loop took 10 ms of CPU
per W3 step and the step threads' waits in collectives held many of 4 to 5 ms (a
scheduler tick). Under ``SCHED_IDLE`` the loop runs only on a core with nothing else to
do, and the scheduler hands the core to a waking step thread at once (1 ms of CPU per
step). Measured on 2 cores, two processes training W3 (one core each, the step on the
calling thread): 83-88 ms per step at the default priority and 40-69 ms at nice 19 (two
machines), 25 ms under ``SCHED_IDLE`` with the threads kept on their process's core.

``jax.distributed.initialize`` returns while its threads are still starting (gRPC's
pools come up a few milliseconds later), so ``settled_thread_ids`` waits until the list
stops changing.
"""

from __future__ import annotations

import os
import sys
import time

_TASKS = "/proc/self/task"
_started_by_initialize: set[int] = set()


def thread_ids():
    """The native ids of this process's threads now; None where the OS does not list them."""
    try:
        return {int(tid) for tid in os.listdir(_TASKS)}
    except OSError:
        return None


def check_nice(where, nice):
    """``nice`` as an int in [0, 19], or None; errors name the argument and the platform."""
    if nice is None:
        return None
    if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
        raise ValueError(f"{where}: communication_nice must be an int in [0, 19] or None, got {nice!r}")
    if thread_ids() is None or not hasattr(os, "setpriority"):
        raise ValueError(
            f"{where}: communication_nice needs per-thread priorities (Linux, {_TASKS}); "
            f"not available on {sys.platform}"
        )
    return nice


def check_idle(where, idle, nice):
    """``idle`` as a bool; errors name the argument, a clash with ``nice`` and the platform."""
    if not isinstance(idle, bool):
        raise ValueError(f"{where}: communication_idle must be True or False, got {idle!r}")
    if idle and nice is not None:
        raise ValueError(
            f"{where}: communication_idle=True and communication_nice={nice!r} both given; "
            "expected one of them (a SCHED_IDLE thread has no nice value)"
        )
    if idle and not hasattr(os, "SCHED_IDLE"):
        raise ValueError(f"{where}: communication_idle needs SCHED_IDLE (Linux); not available on {sys.platform}")
    return idle


def settled_thread_ids(poll_s=0.02, quiet_polls=3, limit_s=2.0):
    """``thread_ids()`` once it has not changed for ``quiet_polls`` polls (at most ``limit_s``)."""
    current, quiet = thread_ids(), 0
    deadline = time.monotonic() + limit_s
    while current is not None and quiet < quiet_polls and time.monotonic() < deadline:
        time.sleep(poll_s)
        now = thread_ids()
        quiet = quiet + 1 if now == current else 0
        current = now
    return current


def record_started(before):
    """Remember the threads that appeared since ``before`` (a ``thread_ids()`` result)."""
    now = settled_thread_ids()
    if before is not None and now is not None:
        _started_by_initialize.update(now - before)


def communication_threads():
    """Native ids of the threads that started during ``initialize``, still alive.

    gloo's event loop, the coordination client's gRPC threads and XLA's CPU worker
    threads; not the threads that existed before (the one calling ``initialize``).

    Empty before ``initialize``, in a single process, or where threads cannot be listed.
    """
    alive = thread_ids() or set()
    return sorted(_started_by_initialize & alive)


def lower_priority(tids, nice):
    """Set the nice value of each thread in ``tids`` (threads that ended meanwhile are skipped)."""
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except ProcessLookupError:
            continue


def run_when_idle(tids):
    """Put each thread in ``tids`` under ``SCHED_IDLE`` (threads that ended meanwhile are skipped)."""
    for tid in tids:
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except ProcessLookupError:
            continue
