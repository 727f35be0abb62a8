"""A damaged project database: one line naming the file, never a traceback; backup and restore."""

import shutil
import sqlite3

import pytest
from _labeling_fakes import truth_of

from skal_cxr.cli import main
from skal_cxr.labeling import LabelingError, open_project

DB = "project.sqlite"


def _labeled(make_project, phantom_folder, n=3):
    """A project with a rater and ``n`` labels, checkpointed into the main file."""
    project = make_project()
    project.add_rater("alice")
    for _ in range(n):
        image_id = project.next_image("alice")["image_id"]
        project.submit_label("alice", image_id, truth_of(project, phantom_folder[1], image_id))
    conn = sqlite3.connect(project.path / DB)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return project


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100])


def _zero(path):
    path.write_bytes(b"")


def _header(path):
    data = bytearray(path.read_bytes())
    data[:100] = b"\xff" * 100
    path.write_bytes(bytes(data))


def _middle_pages(path):
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    n_pages = len(data) // page
    assert n_pages >= 4, n_pages
    for p in range(1, n_pages - 1):  # keep page 1 (schema) and the last page
        start = p * page
        data[start + 8 : start + page] = bytes(range(256)) * ((page - 8) // 256) + b"\x00" * (
            (page - 8) % 256
        )
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _zero, _header, _middle_pages])
@pytest.mark.parametrize("command", ["status", "export", "add-rater"])
def test_a_damaged_database_is_one_line_naming_the_file(
    make_project, phantom_folder, tmp_path, capsys, damage, command
):
    project = _labeled(make_project, phantom_folder)
    for extra in ("-wal", "-shm"):
        (project.path / (DB + extra)).unlink(missing_ok=True)
    damage(project.path / DB)
    argv = {
        "status": ["label", "status", str(project.path)],
        "export": ["label", "export", str(project.path), "-o", str(tmp_path / "l.csv")],
        "add-rater": ["label", "add-rater", str(project.path), "bob"],
    }[command]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("skal-cxr: error:") and err.count("\n") == 1, err
    assert str(project.path / DB) in err and "backup" in err, err
    assert "Traceback" not in err


def test_open_project_checks_integrity(make_project, phantom_folder):
    project = _labeled(make_project, phantom_folder)
    _middle_pages(project.path / DB)
    with pytest.raises(LabelingError, match="damaged"):
        open_project(project.path)


def test_backup_then_restore_gives_back_every_label(make_project, phantom_folder, tmp_path, capsys):
    project = _labeled(make_project, phantom_folder, n=4)
    before = project.export(tmp_path / "before.csv")
    backup = tmp_path / "backup.sqlite"
    assert main(["label", "backup", str(project.path), str(backup)]) == 0
    assert str(backup) in capsys.readouterr().err
    assert sqlite3.connect(backup).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the documented restore: stop the server, replace the file, delete -wal and -shm
    _zero(project.path / DB)
    for extra in ("-wal", "-shm"):
        (project.path / (DB + extra)).unlink(missing_ok=True)
    shutil.copyfile(backup, project.path / DB)
    restored = open_project(project.path)
    assert restored.export(tmp_path / "after.csv") == before
    assert (tmp_path / "after.csv").read_text() == (tmp_path / "before.csv").read_text()


def test_backup_refuses_to_overwrite(make_project, phantom_folder, tmp_path, capsys):
    project = _labeled(make_project, phantom_folder, n=1)
    (tmp_path / "taken").write_text("mine")
    assert main(["label", "backup", str(project.path), str(tmp_path / "taken")]) == 2
    assert "exists" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == "mine"
