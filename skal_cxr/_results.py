"""The results folder of a simulation: its files, how they are written and read.

One module owns the format, so that :mod:`skal_cxr.simulation` (which
writes a folder) and :mod:`skal_cxr.report` (which reads it) share it
without importing each other::

    <results_dir>/
        config.json          the configuration and the data it ran on
        records/*.jsonl      one line per finished round
        report.md, summary.csv, learning_curves.png

``config.json`` is replaced atomically (written to a temporary file,
``fsync``-ed, renamed). Each (strategy, seed) run and each full-data baseline writes its own file in
``<results_dir>/records/``, one JSON object per line, one line per finished
round. Every line is written with a single ``write`` call, flushed and
``fsync``-ed before the run goes on, so a run killed at any moment leaves at
most one incomplete last line, which readers ignore and writers cut off
before appending.
"""

import json
import os
from pathlib import Path

__all__ = [
    "ResultsDirError", "RecordWriter", "read_config", "write_config", "read_record_file",
    "read_records", "record_path", "CONFIG_FILE", "RECORDS_DIR", "REPORT_FILES",
]

CONFIG_FILE = "config.json"
RECORDS_DIR = "records"
REPORT_FILES = ("report.md", "summary.csv", "learning_curves.png")


class ResultsDirError(ValueError):
    """A results folder cannot be used (another configuration, not ours, in use)."""


def read_config(results_dir):
    """The parsed ``config.json`` of a results folder.

    Returns
    -------
    meta : dict
        ``config`` (the settings), ``resolved`` (the data and the round
        schedule they gave) and ``skal_cxr_version``.

    Raises
    ------
    FileNotFoundError
        When the folder has no ``config.json``.
    ValueError
        When it is not a skal-cxr configuration.
    """
    results_dir = Path(results_dir)
    path = results_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{results_dir} is not a results folder: no {CONFIG_FILE}.")
    try:
        meta = json.loads(path.read_text())
        if not (isinstance(meta.get("config"), dict) and isinstance(meta.get("resolved"), dict)):
            raise ValueError("no 'config' and 'resolved' sections")
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a skal-cxr configuration ({exc}).") from exc
    return meta


def write_config(results_dir, payload):
    """Write ``config.json`` atomically: a reader sees the old file or the new one."""
    _atomic_write(Path(results_dir) / CONFIG_FILE,
                  json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _atomic_write(path, text):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def record_path(results_dir, kind, strategy, seed):
    """File of one run: ``records/<strategy>-seed<seed>.jsonl`` or ``baseline-seed<seed>``."""
    name = f"baseline-seed{seed}" if kind == "baseline" else f"{strategy}-seed{seed}"
    return Path(results_dir) / RECORDS_DIR / f"{name}.jsonl"


def _complete_lines(raw):
    """Parsed complete lines and the byte length they span."""
    records, good = [], 0
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            records.append(json.loads(line))
        except ValueError:
            break
        good += len(line)
    return records, good


def read_record_file(path):
    """Records of one file; a torn last line (interrupted write) is skipped.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    records : list of dict
        Empty when the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        return []
    return _complete_lines(path.read_bytes())[0]


def read_records(results_dir):
    """Every record of a results folder, run by run in file-name order.

    Parameters
    ----------
    results_dir : path-like

    Returns
    -------
    records : list of dict
    """
    folder = Path(results_dir) / RECORDS_DIR
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        out.extend(read_record_file(path))
    return out


class RecordWriter:
    """Appends records of one run to its file, durably.

    Opening the writer cuts off an incomplete last line left by an
    interrupted write, so that appended lines stay parseable.

    Parameters
    ----------
    path : path-like
    """

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            raw = self.path.read_bytes()
            _, good = _complete_lines(raw)
            if good != len(raw):
                with open(self.path, "r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    def write(self, record):
        """Append ``record`` as one line and ``fsync`` it."""
        line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode()
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)

    def __exit__(self, *exc):
        os.close(self._fd)
        return False
