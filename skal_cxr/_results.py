"""The results folder of a simulation: its files, how they are written and read.

One module owns the format, so that :mod:`skal_cxr.simulation` (which
writes a folder) and :mod:`skal_cxr.report` (which reads it) share it
without importing each other::

    <results_dir>/
        config.json          the configuration and the data it ran on
        records/*.jsonl      one line per finished round
        report.md, summary.csv, learning_curves.png

``config.json`` is replaced atomically and durably (:mod:`skal_cxr._atomic`).
Each (strategy, seed) run and each full-data baseline writes its own file in
``<results_dir>/records/``, one JSON object per line, one line per finished
round. Every line is written with a single ``write`` call, flushed and
``fsync``-ed before the run goes on, so a run killed at any moment leaves at
most one incomplete last line, which readers ignore and writers cut off
before appending.
"""

import json
import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Union

from ._atomic import atomic_write
from ._results_lock import LOCK_FILE, ResultsLock, owner_alive
from .exceptions import RecordsWarning, ResultsDirError

__all__ = [
    "ResultsDirError",
    "RecordWriter",
    "ResultsLock",
    "claim_folder",
    "owner_alive",
    "own_files",
    "owned_files",
    "read_config",
    "write_config",
    "read_record_file",
    "read_records",
    "record_path",
    "scan_record_file",
    "repair_records",
    "is_record_file",
    "RecordsWarning",
    "CONFIG_FILE",
    "RECORDS_DIR",
    "REPORT_FILES",
    "MARKER_FILE",
    "LOCK_FILE",
]

CONFIG_FILE = "config.json"
RECORDS_DIR = "records"
REPORT_FILES = ("report.md", "summary.csv", "learning_curves.png")
MARKER_FILE = ".skal-cxr"

#: A folder or file given by the caller.
PathLike = Union[str, "os.PathLike[str]"]
#: One round of one run, as written to a record file (JSON object).
Record = dict[str, Any]


def read_config(results_dir: PathLike) -> dict[str, Any]:
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


def write_config(results_dir: PathLike, payload: dict[str, Any]) -> None:
    """Write ``config.json`` atomically: a reader sees the old file or the new one."""
    atomic_write(
        Path(results_dir) / CONFIG_FILE, json.dumps(payload, indent=2, sort_keys=True) + "\n"
    )


def claim_folder(results_dir: PathLike) -> None:
    """Create a results folder, or check that skal-cxr created it.

    A new or empty folder gets the ownership marker ``.skal-cxr``; a folder
    with the marker is ours. A non-empty folder without it is refused, so
    that files the tool did not write are never overwritten or deleted. A
    folder written before markers existed (its ``config.json`` is a skal-cxr
    configuration) is adopted. The marker lists the files the tool writes
    (:func:`own_files`); in a folder adopted, or whose marker predates the
    list, the files the tool may have written (``config.json``, the report
    files and every record-named file) are listed once, at adoption.

    Raises
    ------
    ResultsDirError
        For a non-empty folder skal-cxr did not create, or a path that is
        not a folder.
    """
    results_dir = Path(results_dir)
    marker = results_dir / MARKER_FILE
    if marker.is_file():
        if owned_files(results_dir) is None:  # a marker from before the list
            own_files(results_dir, _legacy_files(results_dir))
        return
    if results_dir.exists() and not results_dir.is_dir():
        raise ResultsDirError(f"{results_dir} exists and is not a folder.")
    if results_dir.is_dir() and any(results_dir.iterdir()):
        try:
            adopted = "skal_cxr_version" in read_config(results_dir)
        except (OSError, ValueError):
            adopted = False
        if not adopted:
            raise ResultsDirError(
                f"{results_dir} is not empty and was not created by skal-cxr; choose a new "
                "or empty folder (nothing in it was changed)."
            )
    results_dir.mkdir(parents=True, exist_ok=True)
    files = sorted(_legacy_files(results_dir))
    atomic_write(marker, json.dumps({"created_by": "skal_cxr", "files": files}) + "\n")


def _legacy_files(results_dir: PathLike) -> list[str]:
    """What a skal-cxr version without an ownership list may have written here."""
    results_dir = Path(results_dir)
    names = [n for n in (CONFIG_FILE, *REPORT_FILES) if (results_dir / n).is_file()]
    names += [
        f"{RECORDS_DIR}/{p.name}"
        for p in sorted((results_dir / RECORDS_DIR).glob("*"))
        if p.is_file() and is_record_file(p)
    ]
    return names


def _read_marker(results_dir: PathLike) -> dict[str, Any] | None:
    try:
        marker = json.loads((Path(results_dir) / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def owned_files(results_dir: PathLike) -> set[str] | None:
    """Files of a results folder that skal-cxr wrote (or is about to write).

    Listed, relative to the folder, in the ownership marker ``.skal-cxr``;
    only these may be deleted (``--overwrite``) or rewritten (a repair).

    Returns
    -------
    files : set of str or None
        POSIX paths relative to ``results_dir``; ``None`` for a folder whose
        marker lists no files (written before the list existed).
    """
    marker = _read_marker(results_dir)
    if marker is None or not isinstance(marker.get("files"), list):
        return None
    return {str(f) for f in marker["files"]}


def own_files(results_dir: PathLike, paths: Iterable[PathLike]) -> None:
    """Add files to the marker's list of files skal-cxr wrote, before writing them.

    Called by the process that holds the folder's :class:`ResultsLock`,
    before the files are created, so that every file the tool writes is
    listed even if it is killed right after. A folder whose marker has no
    list (an older one) gets one.

    Parameters
    ----------
    results_dir : path-like
    paths : iterable of path-like
        Files inside ``results_dir``: absolute, or relative to it
        (``"report.md"``). A relative path is never read as relative to the
        working folder: callers that build paths from a relative
        ``results_dir`` make it absolute first.
    """
    folder = Path(results_dir)
    marker = _read_marker(folder)
    if marker is None:
        return
    files = set(marker.get("files") or [])
    for name in paths:
        files.add(_inside(folder, Path(name)).as_posix())
    if files != set(marker.get("files") or []) or "files" not in marker:
        marker["files"] = sorted(files)
        atomic_write(folder / MARKER_FILE, json.dumps(marker) + "\n")


def _inside(folder: Path, path: Path) -> Path:
    """``path`` (absolute, or relative to ``folder``) relative to ``folder``."""
    return path.relative_to(folder.absolute()) if path.is_absolute() else path


def record_path(results_dir: PathLike, kind: str, strategy: str, seed: int) -> Path:
    """File of one run: ``records/<strategy>-seed<seed>.jsonl`` or ``baseline-seed<seed>``."""
    name = f"baseline-seed{seed}" if kind == "baseline" else f"{strategy}-seed{seed}"
    return Path(results_dir) / RECORDS_DIR / f"{name}.jsonl"


#: Keys every record has.
RECORD_KEYS = ("kind", "strategy", "seed", "round", "n_labeled", "metrics")
_TIMINGS = ("fit_time", "query_time", "eval_time")
_NAME = re.compile(r"^(?P<strategy>.+)-seed(?P<seed>\d+)\.jsonl$")


def _expected_run(path: PathLike) -> tuple[str, str, int] | None:
    """``(kind, strategy, seed)`` a record file's name promises, or None."""
    match = _NAME.match(Path(path).name)
    if match is None:
        return None
    strategy, seed = match["strategy"], int(match["seed"])
    if strategy == "baseline":
        return "baseline", "full_data", seed
    return "active", strategy, seed


def is_record_file(path: PathLike) -> bool:
    """Whether skal-cxr writes a file of this name: a run's records or their rejects."""
    name = Path(path).name
    name = name[: -len(".rejected")] if name.endswith(".rejected") else name
    return _expected_run(name) is not None


def _line_problem(rec: Any, expected: tuple[str, str, int]) -> str | None:
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not a record"
    missing = [k for k in RECORD_KEYS if k not in rec]
    if missing:
        return f"a record without {', '.join(missing)}"
    if not isinstance(rec["metrics"], dict) or not isinstance(rec["round"], int):
        return "a record with malformed round or metrics"
    if (rec["kind"], rec["strategy"], rec["seed"]) != expected:
        return (
            f"a record of {rec['kind']} {rec['strategy']} seed {rec['seed']}, not of this "
            "file's run"
        )
    return None


def _same(a: Record, b: Record) -> bool:
    drop = set(_TIMINGS)
    return {k: v for k, v in a.items() if k not in drop} == {
        k: v for k, v in b.items() if k not in drop
    }


def scan_record_file(
    path: PathLike,
) -> tuple[list[Record], list[bytes], list[bytes], list[str]]:
    """Parse one record file line by line and say what is wrong with it.

    A run's valid records are its rounds ``0, 1, ...`` in order, each once.
    A line that is not JSON, not an object, not a record of this file's
    run, a round recorded twice, or a round after a missing one is left out
    and reported; an unterminated last line (a write cut short by a crash)
    is left out silently.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    records : list of dict
        The valid records, in round order.
    kept : list of bytes
        Their lines, verbatim.
    rejected : list of bytes
        The complete lines left out.
    problems : list of str
        One sentence per problem found.
    """
    path = Path(path)
    expected = _expected_run(path)
    if expected is None:
        return (
            [],
            [],
            [],
            [
                f"{path} is not a record file of skal-cxr (name not "
                "<strategy>-seed<N>.jsonl); ignored."
            ],
        )
    records: list[Record] = []
    kept: list[bytes] = []
    rejected: list[bytes] = []
    problems: list[str] = []
    by_round: dict[int, Record] = {}
    for number, line in enumerate(path.read_bytes().splitlines(keepends=True), 1):
        if not line.endswith(b"\n"):
            break  # torn last line
        problem: str | None
        try:
            rec = json.loads(line)
        except ValueError:
            problem = "not valid JSON"
        else:
            problem = _line_problem(rec, expected)
        if problem is None:
            r = rec["round"]
            if r in by_round:
                problem = f"round {r} again" + (
                    "" if _same(by_round[r], rec) else ", with different results; kept the first"
                )
            elif r != len(records):
                problem = f"round {r} where round {len(records)} was expected"
        if problem is None:
            by_round[rec["round"]] = rec
            records.append(rec)
            kept.append(line)
        else:
            rejected.append(line)
            problems.append(f"{path.name} line {number}: {problem}.")
    return records, kept, rejected, problems


def _warn(problems: list[str]) -> None:
    for problem in problems:
        warnings.warn(problem, RecordsWarning, stacklevel=3)


def read_record_file(path: PathLike) -> list[Record]:
    """The valid records of one run's file (see :func:`scan_record_file`).

    Problems found are reported as :class:`RecordsWarning`.

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
    records, _, _, problems = scan_record_file(path)
    _warn(problems)
    return records


def read_records(results_dir: PathLike) -> list[Record]:
    """Every valid record of a results folder, run by run in file-name order.

    Lines that are not valid records (malformed, duplicated, of another
    run), files that are not record files and files the folder's marker
    does not list as written by skal-cxr are left out, each reported as a
    :class:`RecordsWarning`; the files are not changed.

    Parameters
    ----------
    results_dir : path-like

    Returns
    -------
    records : list of dict
    """
    out: list[Record] = []
    for path in _our_record_files(results_dir):
        out.extend(read_record_file(path))
    return out


def _our_record_files(results_dir: PathLike) -> list[Path]:
    """``records/*.jsonl`` to scan: named like a record and not listed are left out (warned)."""
    owned = owned_files(results_dir)
    ours: list[Path] = []
    for path in sorted((Path(results_dir) / RECORDS_DIR).glob("*.jsonl")):
        if owned is None or f"{RECORDS_DIR}/{path.name}" in owned or not is_record_file(path):
            ours.append(path)  # (a file not named like a record is reported, never changed)
        else:
            _warn(
                [
                    f"{path.name} was not written by skal-cxr (not listed in "
                    f"{MARKER_FILE}); left out and left alone."
                ]
            )
    return ours


def repair_records(results_dir: PathLike) -> list[str]:
    """Rewrite record files to their valid records; set the rest aside.

    The lines left out are appended to ``<file>.rejected`` next to the file
    (nothing is lost), and the file is replaced atomically by its valid
    lines, so that a resumed run continues after its last valid round.

    Returns
    -------
    problems : list of str
        What was found, one sentence each (also warned).
    """
    all_problems = []
    for path in _our_record_files(results_dir):
        _, kept, rejected, problems = scan_record_file(path)
        if _expected_run(path) is None:
            all_problems += problems
            continue
        if rejected:
            with open(path.with_name(path.name + ".rejected"), "ab") as f:
                f.writelines(rejected)
                f.flush()
                os.fsync(f.fileno())
            atomic_write(path, b"".join(kept))
            problems = [p + f" Set aside in {path.name}.rejected." for p in problems]
        all_problems += problems
    _warn(all_problems)
    return all_problems


class RecordWriter:
    """Appends records of one run to its file, durably.

    Opening the writer cuts off an incomplete last line left by an
    interrupted write, so that appended lines stay parseable.

    Parameters
    ----------
    path : path-like
    check : callable, default=None
        Called before every write; it raises to stop a write (a worker
        whose simulation has ended must not write).
    """

    def __init__(self, path: PathLike, check: Callable[[], object] | None = None) -> None:
        self.path = Path(path)
        self.check = check

    def __enter__(self) -> "RecordWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            raw = self.path.read_bytes()
            good = raw.rfind(b"\n") + 1  # cut a torn last line
            if good != len(raw):
                with open(self.path, "r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    def write(self, record: Record) -> None:
        """Append ``record`` as one line and ``fsync`` it."""
        if self.check is not None:
            self.check()
        line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode()
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)

    def __exit__(self, *exc: object) -> Literal[False]:
        os.close(self._fd)
        return False
