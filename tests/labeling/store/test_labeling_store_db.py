"""The project database's write transactions (``_db``)."""

import os
import sqlite3
import threading
import time

import pytest

from skal_cxr.labeling.store._db import DB_FILE, Database, connect, create_schema, transaction


def test_the_writers_of_one_process_take_turns_without_sqlite_busy_waits(tmp_path):
    path = tmp_path / "project.sqlite"
    first = connect(path, create=True)
    create_schema(first)
    second = connect(path)
    # SQLite itself would now refuse a second writer at once ("database is
    # locked") instead of sleeping and retrying: only the process's lock can
    # make it wait for its turn
    second.execute("PRAGMA busy_timeout = 0")
    arrived, outcome = threading.Event(), []

    def other_writer():
        arrived.wait(10)
        try:
            with transaction(second):
                second.execute("INSERT INTO meta VALUES ('b', '2')")
            outcome.append("committed")
        except Exception as exc:  # the assertion below shows it
            outcome.append(repr(exc))

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        with transaction(first):
            first.execute("INSERT INTO meta VALUES ('a', '1')")
            arrived.set()
            time.sleep(0.3)  # the other writer comes while this one holds the database
    finally:
        thread.join(10)
    assert outcome == ["committed"]
    keys = {row[0] for row in first.execute("SELECT key FROM meta")}
    assert {"a", "b"} <= keys
    first.close()
    second.close()


def _database(tmp_path):
    conn = connect(tmp_path / DB_FILE, create=True)
    create_schema(conn)
    conn.close()
    return Database(tmp_path)


def test_without_kept_connections_each_use_has_its_own_and_closes_it(tmp_path):
    db = _database(tmp_path)
    with db.connect() as first:
        pass
    with db.connect() as second:
        assert second is not first
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        first.execute("SELECT 1")


def test_kept_connections_are_reused_after_a_clean_exit(tmp_path):
    db = _database(tmp_path)
    db.reuse_connections()
    try:
        with db.connect() as first:
            with db.connect() as concurrent:  # in use at the same time: another one
                assert concurrent is not first
        with db.connect() as again:
            assert again in (first, concurrent)
        with db.connect() as conn, transaction(conn):
            conn.execute("INSERT INTO meta VALUES ('k', 'v')")
        assert db.meta("k") == "v"
        # why: the last connection to close checkpoints the WAL into the main
        # file and deletes it (an fsync per request); a kept one does not
        assert (tmp_path / (DB_FILE + "-wal")).exists()
    finally:
        db.close_connections()
    with pytest.raises(sqlite3.ProgrammingError):  # closed with the set
        first.execute("SELECT 1")
    assert not (tmp_path / (DB_FILE + "-wal")).exists()  # the last close checkpointed


def test_a_connection_whose_use_raised_is_not_reused(tmp_path):
    db = _database(tmp_path)
    db.reuse_connections()
    try:
        with pytest.raises(RuntimeError), db.connect() as failed:
            raise RuntimeError("boom")
        with db.connect() as conn:
            assert conn is not failed
        with pytest.raises(sqlite3.ProgrammingError):
            failed.execute("SELECT 1")
    finally:
        db.close_connections()


def test_kept_connections_follow_a_replaced_database_file(tmp_path):
    db = _database(tmp_path)
    db.set_meta("who", "old")
    db.reuse_connections()
    try:
        assert db.meta("who") == "old"  # a connection to the old file is now kept
        other = tmp_path / "other"
        other.mkdir()
        replacement = _database(other)
        replacement.set_meta("who", "new")
        for suffix in ("-wal", "-shm"):
            (tmp_path / (DB_FILE + suffix)).unlink(missing_ok=True)
        os.replace(other / DB_FILE, tmp_path / DB_FILE)
        assert db.meta("who") == "new"  # never the file that is gone
    finally:
        db.close_connections()


def test_a_forked_child_never_uses_the_parents_connections(tmp_path, monkeypatch):
    db = _database(tmp_path)
    db.reuse_connections()
    try:
        with db.connect() as parents:
            pass
        monkeypatch.setattr(os, "getpid", lambda: -1)  # as in a child after fork
        with db.connect() as childs:
            assert childs is not parents
        with pytest.raises(sqlite3.ProgrammingError):  # the child's was its own, closed
            childs.execute("SELECT 1")
    finally:
        monkeypatch.undo()
        db.close_connections()
