"""Tests of skal_cxr._results: the results folder's lock, ownership and records."""

import json
import os
import signal
import subprocess
import sys

import pytest

from skal_cxr._results import (
    LOCK_FILE,
    MARKER_FILE,
    RecordsWarning,
    RecordWriter,
    ResultsDirError,
    ResultsLock,
    claim_folder,
    owner_alive,
    read_records,
    record_path,
    repair_records,
)


def _rec(r, strategy="random", seed=0, auroc=None):
    return {
        "kind": "active",
        "strategy": strategy,
        "seed": seed,
        "round": r,
        "n_labeled": 10 * (r + 1),
        "fit_time": 0.1 * r,
        "metrics": {"auroc": 0.5 + r / 10 if auroc is None else auroc},
    }


def _line(rec):
    return (json.dumps(rec, sort_keys=True) + "\n").encode()


# -- the lock ------------------------------------------------------------------
def test_lock_is_exclusive_and_names_its_holder(tmp_path):
    with ResultsLock(tmp_path) as lock:
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["token"] == lock.token
        assert owner_alive(tmp_path, lock.token)
        assert not owner_alive(tmp_path, "another-token")
        with pytest.raises(
            ResultsDirError, match=f"in use by another simulation \\(process {os.getpid()} "
        ):
            ResultsLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()
    assert not owner_alive(tmp_path, lock.token)
    with ResultsLock(tmp_path):  # free again
        pass


def test_a_killed_holders_lock_is_stale_and_taken_over(tmp_path):
    code = (
        "import sys, time; from skal_cxr._results import ResultsLock; "
        "lock = ResultsLock(sys.argv[1]).acquire(); print(lock.token, flush=True); "
        "time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        token = proc.stdout.readline().strip()
        assert owner_alive(tmp_path, token)
        with pytest.raises(ResultsDirError, match=f"process {proc.pid} "):
            ResultsLock(tmp_path).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert (tmp_path / LOCK_FILE).exists()  # left behind by the killed process
    assert not owner_alive(tmp_path, token)  # ... and recognised as stale
    with ResultsLock(tmp_path) as lock:
        assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == lock.token


# -- ownership ------------------------------------------------------------------
def test_claim_folder_marks_new_and_empty_folders(tmp_path):
    claim_folder(tmp_path / "new" / "deep")
    assert (tmp_path / "new" / "deep" / MARKER_FILE).is_file()
    (tmp_path / "empty").mkdir()
    claim_folder(tmp_path / "empty")
    assert (tmp_path / "empty" / MARKER_FILE).is_file()
    claim_folder(tmp_path / "empty")  # ours: fine


def test_claim_folder_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "report.md").write_text("my notes")
    (tmp_path / "config.json").write_text('{"something": "else"}')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ResultsDirError, match="not empty and was not created by skal-cxr"):
        claim_folder(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultsDirError, match="not a folder"):
        claim_folder(tmp_path / "file")


def test_claim_folder_adopts_a_folder_written_before_markers(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"skal_cxr_version": "0.1.0", "config": {}, "resolved": {}})
    )
    claim_folder(tmp_path)
    assert (tmp_path / MARKER_FILE).is_file()


# -- records ------------------------------------------------------------------------
@pytest.fixture
def messy(tmp_path):
    """A records folder with every kind of defect, and what should be kept of it."""
    good = record_path(tmp_path, "active", "random", 0)
    good.parent.mkdir(parents=True)
    good.write_bytes(_line(_rec(0)) + b"{not json\n" + _line(_rec(1)) + b"[1, 2]\n")
    dup = record_path(tmp_path, "active", "bald", 1)
    twice = {**_rec(1, "bald", 1), "fit_time": 9.0}  # the same round, other timing
    dup.write_bytes(
        b"".join(
            _line(r) for r in [_rec(0, "bald", 1), _rec(1, "bald", 1), twice, _rec(2, "bald", 1)]
        )
    )
    conflict = record_path(tmp_path, "active", "margin", 0)
    conflict.write_bytes(
        b"".join(
            _line(r)
            for r in [
                _rec(0, "margin"),
                _rec(0, "margin", auroc=0.1),
                _rec(2, "margin"),
                _rec(0, "random"),
            ]
        )
        + b'{"kind": "act'
    )  # + a torn last line
    (tmp_path / "records" / "notes.jsonl").write_text("hello\n")
    kept = {
        good.name: [_rec(0), _rec(1)],
        dup.name: [_rec(0, "bald", 1), _rec(1, "bald", 1), _rec(2, "bald", 1)],
        conflict.name: [_rec(0, "margin")],
    }
    return tmp_path, kept


def test_read_records_keeps_what_is_valid_and_says_what_is_not(messy):
    folder, kept = messy
    with pytest.warns(RecordsWarning) as caught:
        records = read_records(folder)
    assert sorted(records, key=lambda r: (r["strategy"], r["round"])) == sorted(
        [r for recs in kept.values() for r in recs], key=lambda r: (r["strategy"], r["round"])
    )
    messages = sorted(str(w.message) for w in caught)
    assert messages == sorted(
        [
            "random-seed0.jsonl line 2: not valid JSON.",
            "random-seed0.jsonl line 4: a JSON list, not a record.",
            "bald-seed1.jsonl line 3: round 1 again.",
            "margin-seed0.jsonl line 2: round 0 again, with different results; kept the first.",
            "margin-seed0.jsonl line 3: round 2 where round 1 was expected.",
            "margin-seed0.jsonl line 4: a record of active random seed 0, not of this file's run.",
            f"{folder / 'records' / 'notes.jsonl'} is not a record file of skal-cxr "
            "(name not <strategy>-seed<N>.jsonl); ignored.",
        ]
    )


def test_repair_records_sets_the_invalid_lines_aside(messy):
    folder, kept = messy
    originals = {p.name: p.read_bytes() for p in (folder / "records").iterdir()}
    with pytest.warns(RecordsWarning):
        problems = repair_records(folder)
    assert len(problems) == 7
    for name, records in kept.items():
        path = folder / "records" / name
        assert path.read_bytes() == b"".join(_line(r) for r in records)
        rejected = path.with_name(name + ".rejected").read_bytes()
        # nothing is lost: kept + set aside = every complete line of the original
        assert sorted(path.read_bytes().splitlines(True) + rejected.splitlines(True)) == sorted(
            line for line in originals[name].splitlines(keepends=True) if line.endswith(b"\n")
        )
    assert (folder / "records" / "notes.jsonl").read_text() == "hello\n"  # not ours: untouched
    with pytest.warns(RecordsWarning) as caught:  # repaired: only the stray file remains
        read_records(folder)
    assert [str(w.message) for w in caught if "notes.jsonl" not in str(w.message)] == []


def test_record_writer_refuses_to_write_when_its_check_fails(tmp_path):
    def check():
        raise RuntimeError("owner gone")

    path = record_path(tmp_path, "active", "random", 0)
    with RecordWriter(path, check) as writer, pytest.raises(RuntimeError, match="owner gone"):
        writer.write(_rec(0))
    assert path.read_bytes() == b""
