"""Resumable records of the pre-declared studies: ``DIR/records.jsonl`` and ``DIR/run.json``.

A study appends one JSON line per record (:func:`append_records`); a rerun
reads them back (:func:`load_records`) to skip what is done, and refuses a
folder made with another configuration (:func:`check_run_config`).
"""

import json
import sys
from pathlib import Path

from skal_cxr._atomic import atomic_write

__all__ = ["write_run_config", "check_run_config", "load_records", "append_records"]


def write_run_config(out, config):
    """Keep a run's configuration in ``DIR/run.json``."""
    atomic_write(Path(out) / "run.json", json.dumps(config, indent=1) + "\n")


def check_run_config(out, config):
    """Refuse a folder whose records were made with another configuration.

    A rerun skips the (arm, seed) pairs already in ``DIR/records.jsonl``;
    records of another data set, other checkpoints or a ``--quick`` run
    would be taken as this run's own. The configuration is kept in
    ``DIR/run.json``; a folder written before it existed is checked on its
    records' data set and checkpoints (a run writes all its checkpoints at
    once).
    """
    path = Path(out) / "run.json"
    if path.exists():
        found = json.loads(path.read_text())
        diff = sorted(k for k in set(found) | set(config) if found.get(k) != config.get(k))
        if diff:
            raise SystemExit(
                f"{out} holds records of another run ({', '.join(diff)}: "
                f"{ {k: found.get(k) for k in diff} } there, "
                f"{ {k: config.get(k) for k in diff} } here); choose another --out"
            )
        return
    records = load_records(out)
    data = {r.get("data") for r in records} - {None}
    if data - {config["data"]}:
        raise SystemExit(
            f"{out} holds records of {', '.join(sorted(data))}, not {config['data']}; "
            "choose another --out"
        )
    seen = {r["n_labeled"] for r in records if r.get("arm") != "full"}
    if "checkpoints" in config and seen and seen != set(config["checkpoints"]):
        raise SystemExit(
            f"{out} holds records at checkpoints {sorted(seen)}, not "
            f"{config['checkpoints']}; choose another --out"
        )
    write_run_config(out, config)


def load_records(out):
    """Every record of ``DIR/records.jsonl`` (none when it does not exist)."""
    path = Path(out) / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def append_records(fh, records, message):
    """Append ``records`` to an open ``records.jsonl`` and report them on stderr.

    Parameters
    ----------
    fh : file
        ``records.jsonl``, open for appending; flushed after the records.
    records : list of dict
    message : str
        The progress line printed to stderr.
    """
    for r in records:
        fh.write(json.dumps(r) + "\n")
    fh.flush()
    print(message, file=sys.stderr, flush=True)
