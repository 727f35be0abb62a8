"""Timing and memory measurements shared by the benchmarks.

Wall-clock times come from :func:`time.perf_counter`; memory is the resident
set size (RSS) of this process, read from ``/proc`` on Linux, with the
kernel's peak mark resettable so that a measurement's own peak can be read.
"""

import gc
import os
import resource
import sys
import time

__all__ = ["MIB", "timed", "time_best", "current_rss", "peak_rss", "reset_peak_rss"]

MIB = 2.0**20


def timed(func):
    """Seconds one call of ``func`` took, and its return value.

    Returns
    -------
    seconds : float
    result : object
    """
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def time_best(fn, repeats, budget_s=float("inf"), collect=True):
    """Best wall-clock time of up to ``repeats`` calls of ``fn``.

    Stops early, after at least one call, once the calls so far took more
    than ``budget_s`` seconds together. With ``collect``, Python's garbage
    collector runs (untimed) before each call.

    Returns
    -------
    best : float
        Seconds (``time.perf_counter``).
    n_runs : int
    result : object
        Return value of the last call.
    """
    times, result = [], None
    for _ in range(repeats):
        if collect:
            gc.collect()
        seconds, result = timed(fn)
        times.append(seconds)
        if sum(times) > budget_s:
            break
    return min(times), len(times), result


def current_rss():
    """Resident set size of this process now, in bytes (Linux; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss()


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0).

    Returns
    -------
    done : bool
        False where ``/proc/self/clear_refs`` cannot be written; the peak
        then includes whatever this process used before.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss():
    """Peak resident set size of this process, in bytes.

    ``VmHWM`` of ``/proc/self/status`` (resettable with :func:`reset_peak_rss`),
    else ``getrusage``'s ``ru_maxrss`` (peak since the process started).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
