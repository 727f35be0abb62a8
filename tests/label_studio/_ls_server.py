"""A real Label Studio (the ``label-studio`` package, in its own virtualenv) on loopback.

Label Studio and skal_cxr do not share an environment (Label Studio pins
Django and its own versions of common packages), so it lives in a separate
virtualenv: ``SKAL_CXR_LABEL_STUDIO_VENV``, by default
``~/.cache/skal-cxr/label-studio-venv`` (``.ci/run`` installs it there).

The tests drive it with ``label-studio-sdk``, which is installed with Label
Studio in that virtualenv and pins packages that clash with skal_cxr's
environment (numpy, Pillow, ...): :class:`SdkDriver` runs
``_ls_sdk_driver.py`` there, with the virtualenv's Python, and speaks JSON
with it over a pipe.

A fresh data folder costs Label Studio minutes of database migrations: each
start copies a migrated template folder in the virtualenv
(``skal-cxr-data-template``, ready once it holds ``skal-cxr-ready``), which
``.ci/install-label-studio`` migrates at install time (the first start makes
it where it is missing).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

#: The Label Studio virtualenv (installed by .ci/run).
VENV_ENV = "SKAL_CXR_LABEL_STUDIO_VENV"
DEFAULT_VENV = Path.home() / ".cache" / "skal-cxr" / "label-studio-venv"
USERNAME, PASSWORD, TOKEN = "admin@example.com", "skal-cxr-test-password", "skalcxrtesttoken0123"
#: Seconds to wait for Label Studio: a first start migrates its database.
START_TIMEOUT = {"template": 600, "copy": 180}


def venv():
    """The Label Studio virtualenv's folder."""
    return Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)


def executable():
    """``label-studio`` in the virtualenv, or ``None`` when it is not installed."""
    exe = venv() / "bin" / "label-studio"
    return exe if exe.exists() else None


def free_port():
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout, proc=None, log=None):
    """Poll ``url`` until it answers 200, ``timeout`` seconds at most."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = Path(log).read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc, timeout=30):
    """Stop a server started by :class:`LabelStudio` (its process group, by PID)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
    except ProcessLookupError:
        pass


class LabelStudio:
    """Label Studio on a free loopback port with its own data folder.

    Parameters
    ----------
    data_dir : path-like
        Its data folder (a copy of the migrated template).
    document_root : path-like
        The local-files document root (images served as ``/data/local-files/``).
    """

    def __init__(self, data_dir, document_root):
        self.data_dir = Path(data_dir)
        self.document_root = Path(document_root)
        self.port = None
        self.proc = None
        self.startup_time = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def env(self, data_dir):
        env = dict(os.environ)
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
            LABEL_STUDIO_USERNAME=USERNAME,
            LABEL_STUDIO_PASSWORD=PASSWORD,
            LABEL_STUDIO_USER_TOKEN=TOKEN,
            # the test drives the REST API with this (legacy) token
            LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
            LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
            LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(self.document_root),
            LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
            # the ML backend runs on loopback, which Label Studio refuses by default
            USE_DEFAULT_BANNED_SUBNETS="false",
            # the Data Manager's prediction score is that of the backend's current model
            ff_front_dev_1682_model_version_dropdown_070622_short="true",
            SENTRY_DSN="",
            FRONTEND_SENTRY_DSN="",
            # no request to PyPI for its latest version at every start
            LATEST_VERSION_CHECK="false",
        )
        return env

    def _start(self, data_dir, timeout):
        self.port = free_port()
        log = Path(data_dir).parent / f"{Path(data_dir).name}.log"
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [str(executable()), "start", "--no-browser", "--host", "127.0.0.1"]
                + ["--port", str(self.port), "--internal-host", "127.0.0.1"],
                env=self.env(data_dir),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        t0 = time.monotonic()
        try:
            wait_http(f"{self.url}/health", timeout, self.proc, log)
        except BaseException:
            stop(self.proc)
            raise
        self.startup_time = time.monotonic() - t0

    def start(self):
        """Start on a copy of the migrated template (made on the first start)."""
        template = venv() / "skal-cxr-data-template"
        ready = template / "skal-cxr-ready"  # (written once migrated and stopped)
        if not ready.exists():
            shutil.rmtree(template, ignore_errors=True)
            template.mkdir(parents=True)
            self._start(template, START_TIMEOUT["template"])
            stop(self.proc)
            ready.write_text(f"migrated in {self.startup_time:.0f} s\n")
        shutil.copytree(template, self.data_dir)
        self._start(self.data_dir, START_TIMEOUT["copy"])
        return self

    def stop(self):
        if self.proc is not None:
            stop(self.proc)

    def sdk(self):
        """A :class:`SdkDriver` of this Label Studio, authenticated with the token."""
        return SdkDriver(self.url, TOKEN)


class SdkError(RuntimeError):
    """A call of the SDK that Label Studio refused; ``status`` is its HTTP status."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class SdkDriver:
    """``label-studio-sdk`` in Label Studio's virtualenv, in a child process.

    Each method sends one command of ``_ls_sdk_driver.py`` (its functions, by
    name and keyword arguments) and returns its JSON answer.

    Parameters
    ----------
    url : str
        Label Studio's address.
    token : str
        An API token.
    """

    def __init__(self, url, token):
        self.proc = subprocess.Popen(
            [str(venv() / "bin" / "python"), str(Path(__file__).with_name("_ls_sdk_driver.py"))]
            + [url, token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __getattr__(self, op):
        if op.startswith("_"):
            raise AttributeError(op)
        return lambda **kwargs: self._call(op, kwargs)

    def _call(self, op, kwargs):
        self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the SDK driver exited ({self.proc.wait(30)}) during {op}")
        answer = json.loads(line)
        if "error" in answer:
            raise SdkError(f"{op}: {answer['error']}", answer["status"])
        return answer["ok"]

    def close(self):
        """End the child process (it exits once its stdin is closed)."""
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
