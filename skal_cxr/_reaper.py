"""No worker process outlives the process that started it, however that one ends.

A process pool's workers and resource trackers are children of the process
that made the pool; when that process is killed (SIGKILL, out of memory),
nothing tells them, and a child still starting up, or blocked on a pipe it
holds both ends of, can live on for minutes while holding the dead process's
output pipes open (a caller waiting for that output waits with it).

:func:`reaped_children` starts, once per process, a tiny reaper: a separate
Python process in its own session, with no access to the caller's terminal
or pipes, that waits for its parent to die (end-of-file on a pipe only the
parent holds) and then SIGKILLs every process that carries the parent's
token in its environment. Children started inside the context inherit that
token (loky passes ``os.environ`` to every worker and resource tracker it
starts), so the guarantee covers every moment of a pool's life: start-up,
work, idling and shut-down. After a normal exit the pool's processes get
half a second to end by themselves first.

:func:`exit_with_parent` is the other half, seen from a child: a thread
that ends this process as soon as its parent has gone (it is re-parented),
whether it is busy or idle. The labeling worker process and the
simulation's pool workers both start it.

This module runs as the reaper script too (``python -I -S _reaper.py
TOKEN PARENT_PID``), so it imports nothing but the standard library. Linux only (it
reads ``/proc``); elsewhere :func:`reaped_children` does nothing.
"""

import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager

ENV = "SKAL_CXR_REAPER"
GRACE = 0.5  # seconds the children get to end by themselves after their parent
_lock = threading.Lock()
_state = {}  # pid of the process the reaper watches -> (reaper, token)
_watched = {}  # pid of this process -> the parent pid its watchdog watches

#: Exit status of a process ended by :func:`exit_with_parent`.
PARENT_GONE = 70


def _start_reaper():
    """The token of this process's reaper, started on first use."""
    with _lock:
        reaper, token = _state.get(os.getpid(), (None, None))
        if reaper is not None and reaper.poll() is None:
            return token
        token = f"{os.getpid()}-{uuid.uuid4().hex}"
        env = {k: v for k, v in os.environ.items() if k != ENV}
        reaper = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), token, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        _state[os.getpid()] = (reaper, token)
        return token


@contextmanager
def reaped_children():
    """Every process started inside this context dies when this process dies.

    Yields
    ------
    token : str or None
        The environment value (variable ``SKAL_CXR_REAPER``) that marks this
        process's children, or None where ``/proc`` is missing.
    """
    if not os.path.isdir("/proc/self"):
        yield None
        return
    token = _start_reaper()
    previous = os.environ.get(ENV)
    os.environ[ENV] = token
    try:
        yield token
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous


def exit_with_parent(parent_pid=None, interval=0.5):
    """End this process as soon as its parent has gone, busy or idle (once per process).

    A daemon thread polls the parent pid; when this process is re-parented
    it ends it at once (``os._exit``: no cleanup that could hang on a dead
    parent's pipes). A worker idling between tasks, or busy in a long
    computation that never touches its pipe, would otherwise live on.

    Parameters
    ----------
    parent_pid : int or None, default=None
        The parent to outlive no moment: ``None`` takes the current parent.
        When this process already has another parent, it ends now.
    interval : float, default=0.5
        Seconds between two looks.

    Returns
    -------
    parent_pid : int
        The pid watched.
    """
    with _lock:
        me = os.getpid()
        if me in _watched:
            return _watched[me]
        parent = os.getppid() if parent_pid is None else int(parent_pid)
        if os.getppid() != parent:  # it died before we could watch it
            os._exit(PARENT_GONE)
        _watched[me] = parent

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(PARENT_GONE)

    threading.Thread(target=watch, daemon=True, name="skal-cxr-parent-watch").start()
    return parent


def _holders(needle, me):
    """Live processes (not zombies) whose environment holds ``needle``."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
        except OSError:  # gone, or another user's
            continue
        pids.append(int(name))
    return pids


def _wait_for_parent_death(parent):
    """Return once ``parent`` is gone: end-of-file on stdin, or this process reparented.

    (A child the parent forked without exec also holds the pipe: the parent
    pid is watched too.)
    """
    while os.getppid() == parent:
        ready, _, _ = select.select([0], [], [], 0.2)
        if ready and not os.read(0, 65536):
            return


def _reap(token, parent):
    """Wait for the parent to die, then kill everything that holds its token."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # only the parent's death ends the reaper
    _wait_for_parent_death(parent)
    needle, me = f"{ENV}={token}".encode(), os.getpid()
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline and _holders(needle, me):
        time.sleep(0.05)
    # a child forked just before the parent died shows the token once it has
    # exec'd: keep sweeping until three sweeps in a row find nobody
    quiet, deadline = 0, time.monotonic() + 10
    while quiet < 3 and time.monotonic() < deadline:
        pids = _holders(needle, me)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        quiet = 0 if pids else quiet + 1
        time.sleep(0.05)


if __name__ == "__main__":
    _reap(sys.argv[1], int(sys.argv[2]))
