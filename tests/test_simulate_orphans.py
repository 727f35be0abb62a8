"""No process of a killed ``skal-cxr simulate --n-jobs 2`` outlives it (Linux /proc).

Every descendant of the run (loky workers, loky's and multiprocessing's
resource trackers, the reaper itself) carries an environment variable the
test sets; after a SIGKILL of the run at a given moment, none of them may be
alive 2 s later, and the caller's pipes must reach end-of-file.
"""

import os
import select
import signal
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc"),
]

MARK = "SKAL_CXR_TEST_ORPHANS"
CMD = [
    "simulate",
    "--n-phantoms",
    "240",
    "--phantom-size",
    "16",
    "--strategies",
    "random",
    "--seeds",
    "0,1",
    "--no-baseline",
    "--n-initial",
    "12",
    "--query-size",
    "12",
    "--budget",
    "36",
    "--n-mc-samples",
    "4",
    "--width",
    "4",
    "--n-blocks",
    "2",
    "--device",
    "cpu",
    "--min-train-steps",
    "2",
    "--max-epochs",
    "2",
    "--n-jobs",
    "2",
    "--quiet",
]


def _marked(value):
    """Live (not zombie) processes whose environment holds ``MARK=value``."""
    needle = f"{MARK}={value}".encode()
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z":
            found[int(pid)] = cmdline
    return found


def _lines(folder):
    records = folder / "records"
    if not records.is_dir():
        return 0
    return sum(p.read_bytes().count(b"\n") for p in records.glob("*.jsonl"))


def _wait_for(moment, proc, value, folder, started):
    """Block until ``moment`` of the run; False if the run ended first."""
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if moment == "first-second" and time.time() - started >= 0.8:
            return True
        if moment.startswith("pool") and any("loky" in c for c in _marked(value).values()):
            if moment == "pool+0.5s":
                time.sleep(0.5)
            return proc.poll() is None
        if moment == "first-record" and _lines(folder) >= 1:
            return True
        if moment == "shutdown" and _lines(folder) >= 6:  # 2 seeds x 3 rounds
            return True
        time.sleep(0.01)
    return False


def _read_to_eof(fds, timeout):
    """Drain ``fds``; the ones still open after ``timeout`` seconds."""
    open_fds = set(fds)
    deadline = time.time() + timeout
    while open_fds and time.time() < deadline:
        ready, _, _ = select.select(list(open_fds), [], [], max(0.0, deadline - time.time()))
        for fd in ready:
            if not os.read(fd, 65536):
                open_fds.discard(fd)
    return open_fds


@pytest.mark.parametrize(
    "moment", ["first-second", "pool", "pool+0.5s", "first-record", "shutdown"]
)
def test_no_process_outlives_a_killed_run(tmp_path, moment):
    value = uuid.uuid4().hex
    env = {**os.environ, "OMP_NUM_THREADS": "1", MARK: value}
    proc = subprocess.Popen(
        [sys.executable, "-m", "skal_cxr.cli", *CMD, "--output", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        if not _wait_for(moment, proc, value, tmp_path, time.time()):
            pytest.skip(f"the run ended before the moment {moment!r}")
        proc.kill()
        killed = time.time()
        proc.wait(timeout=30)
        still_open = _read_to_eof([proc.stdout.fileno(), proc.stderr.fileno()], 2.0)
        survivors = _marked(value)
        while survivors and time.time() < killed + 2.0:
            time.sleep(0.05)
            survivors = _marked(value)
        assert survivors == {}, f"outlived the run by 2 s: {survivors}"
        assert not still_open, "the run's stdout/stderr stayed open"
    finally:
        for pid in _marked(value):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.stdout.close()
        proc.stderr.close()
