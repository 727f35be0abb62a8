"""Helpers of the browser tests: Chromium, a ``skal-cxr label serve`` process, screenshots."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def chromium():
    """Debian's Chromium (or ``SKAL_CXR_CHROMIUM``); skips the test when there is none."""
    path = (
        os.environ.get("SKAL_CXR_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not path or not os.access(path, os.X_OK):
        pytest.skip(
            "no Chromium found (install Debian's chromium package or set "
            "SKAL_CXR_CHROMIUM to its executable)"
        )
    return path


def free_port():
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``skal-cxr label serve`` in its own process on a loopback port; stop and restart it."""

    def __init__(self, path, port=None):
        self.path = Path(path)
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log_path = self.path.parent / f"serve-{self.port}.log"

    def start(self, timeout=180):  # a loaded CI machine imports torch slowly
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "skal_cxr.cli",
                "label",
                "serve",
                str(self.path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/api/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("server did not start:\n" + self.log_path.read_text())
            time.sleep(0.2)

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def screenshot(page, tmp_path, name):
    """Save a screenshot in ``tmp_path`` and in ``$SKAL_CXR_SCREENSHOT_DIR`` when set."""
    page.screenshot(path=str(tmp_path / name))
    folder = os.environ.get("SKAL_CXR_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


FRAME = 4  # width in pixels of the bright frame around each test film
MARKER = 40  # side of the bright square in its top-left corner (a side marker)


def write_films(folder, n, width=600, height=720, random_state=0):
    """``n`` portrait 12-bit PNG films (phantom chests) with a bright frame and marker.

    The frame (``FRAME`` pixels wide, the maximum value) lets a test measure
    the drawn scale from the canvas' pixels; the marker square in the top-left
    corner shows flips.
    """
    from skal_cxr.datasets import make_cxr_phantoms

    folder.mkdir(parents=True, exist_ok=True)
    X, _ = make_cxr_phantoms(n, image_size=128, random_state=random_state)
    for i, x in enumerate(np.asarray(X)):
        film = Image.fromarray(np.round(x * 3000).astype(np.float32), mode="F")
        arr = np.asarray(film.resize((width, height), Image.BILINEAR), dtype=np.float64)
        arr = np.clip(np.round(arr), 0, 3000).astype(np.uint16)
        arr[:FRAME, :] = arr[-FRAME:, :] = arr[:, :FRAME] = arr[:, -FRAME:] = 4095
        arr[FRAME : FRAME + MARKER, FRAME : FRAME + MARKER] = 4095
        Image.fromarray(arr).save(folder / f"film_{i:02d}.png")
