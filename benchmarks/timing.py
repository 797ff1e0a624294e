"""Step timing: warm-up, then a fixed number of timed steps; medians and minima."""

from __future__ import annotations

import resource
import statistics
import time


def time_steps(step, warmup: int, steps: int) -> dict:
    """Call ``step()`` ``warmup`` times untimed, then ``steps`` times timed (ms)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "steps": steps}


def timed(function):
    """``(result, seconds)`` of one call."""
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    ``VmHWM`` starts afresh at ``exec``; ``ru_maxrss`` would carry the parent's peak over.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
