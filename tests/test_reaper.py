"""Tests of skal_cxr._reaper: children die with their parent, however it dies (Linux)."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")

REAPER = os.path.join(os.path.dirname(__file__), os.pardir, "skal_cxr", "_reaper.py")
PARENT = textwrap.dedent("""
    import importlib.util, os, subprocess, sys, time
    spec = importlib.util.spec_from_file_location("reaper", {reaper!r})
    reaper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reaper)  # (without importing skal_cxr and torch)
    reaped_children = reaper.reaped_children
    with reaped_children():
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
    {fork}
    print(child.pid, flush=True)
    time.sleep(600)
""")


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("fork", ["", "if os.fork() == 0: time.sleep(600)"])
def test_a_child_dies_within_a_second_of_its_killed_parent(fork):
    """Also when a forked child of the parent still holds the reaper's pipe."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT.format(fork=fork, reaper=REAPER)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.time() + 2
        while _alive(child) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        try:
            os.killpg(parent.pid, 9)  # the forked copy, if any (the test's own session)
        except ProcessLookupError:
            pass
        parent.stdout.close()


def test_exit_with_parent_ends_a_process_whose_parent_is_already_gone():
    # one watchdog for every worker: asked to watch a parent it no longer has,
    # the process ends at once with PARENT_GONE; watching its own, it lives on
    code = textwrap.dedent("""
        import importlib.util, os, sys
        spec = importlib.util.spec_from_file_location("reaper", {reaper!r})
        reaper = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(reaper)
        assert reaper.exit_with_parent() == os.getppid()
        assert reaper.exit_with_parent() == os.getppid()  # once per process
        print("alive", flush=True)
        del reaper._watched[os.getpid()]
        reaper.exit_with_parent(os.getppid() + 100000)
        print("not reached", flush=True)
    """).format(reaper=REAPER)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout == "alive\n", out.stderr
    assert out.returncode == 70
