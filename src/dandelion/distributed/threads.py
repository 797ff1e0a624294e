"""The threads ``initialize`` starts, and their scheduling priority (Linux).

gloo, JAX's collectives between CPU processes, runs an event loop that polls its sockets
without sleeping: on a machine whose cores are all computing, it takes a share of a core
away from a step at every moment, not only while a collective is in flight. At the
lowest priority (nice 19) it still runs at once on a core whose step is waiting in a
collective, which is when it has work. Measured on 2 cores, two processes training W3
(one core each, the step on the calling thread), three alternating pairs: 83-88 ms per
step at the default priority, 56-69 ms at nice 19.

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
