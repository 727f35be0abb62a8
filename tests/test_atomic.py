"""The atomic, durable file replacement."""

import os

import pytest

from skal_cxr import _atomic
from skal_cxr._atomic import atomic_write, replacing


def test_atomic_write_replaces_and_syncs_the_file_then_the_folder(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_text("old")
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        _atomic.os,
        "fsync",
        lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd),
    )
    atomic_write(path, "new ü")
    assert path.read_bytes() == "new ü".encode()
    # the data before the rename (under the temporary name), the folder after it
    assert len(synced) == 2 and synced[0] != str(path) and synced[1] == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.joblib"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with replacing(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.joblib"]


def test_the_temporary_is_hidden_in_the_same_folder_and_keeps_a_suffix(tmp_path):
    with replacing(tmp_path / "curves.png", suffix=".png") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".curves.png.")
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"png")
    assert (tmp_path / "curves.png").read_bytes() == b"png"


def test_atomic_write_with_a_mode_never_exposes_the_content(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "secret.txt", "x", mode=0o600)
        with replacing(tmp_path / "other.bin", mode=0o600) as tmp:
            assert oct(tmp.stat().st_mode & 0o777) == oct(0o600)  # before a byte is written
            tmp.write_bytes(b"y")
    finally:
        os.umask(old)
    assert oct((tmp_path / "secret.txt").stat().st_mode & 0o777) == oct(0o600)
    assert oct((tmp_path / "other.bin").stat().st_mode & 0o777) == oct(0o600)
