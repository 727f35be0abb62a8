"""The project database's write transactions (``_db``)."""

import threading
import time

from skal_cxr.labeling._db import connect, create_schema, transaction


def test_the_writers_of_one_process_take_turns_without_sqlite_busy_waits(tmp_path):
    path = tmp_path / "project.sqlite"
    first = connect(path)
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
