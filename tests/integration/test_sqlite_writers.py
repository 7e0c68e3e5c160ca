"""SQLite's writers queue in jackdaw.db (a lock per process, a flock across processes) instead of
sleeping in SQLite's busy handler: the queue must let go whenever a transaction ends, let go for
a process that dies, keep SQLite's 30 s give-up, and keep its lock file owner-only."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, exc, text

from jackdaw import db


def _engine(path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
    return engine


def _queue_free(path: Path) -> bool:
    """No connection of any engine holds the cross-process lock."""
    fd = os.open(f"{path}-writer", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_the_queue_is_left_at_commit_rollback_error_and_close(tmp_path: Path) -> None:
    path = tmp_path / "jackdaw.db"
    engine = _engine(path)
    assert os.stat(f"{path}-writer").st_mode & 0o777 == 0o600  # beside a 0600 database, as private

    conn = engine.connect()
    conn.execute(text("INSERT INTO t VALUES (1)"))
    assert not _queue_free(path)  # a write transaction holds it...
    conn.commit()
    assert _queue_free(path)  # ...until it ends

    conn.execute(text("INSERT INTO t VALUES (2)"))
    conn.rollback()
    assert _queue_free(path)

    with pytest.raises(exc.IntegrityError), engine.begin() as c:
        c.execute(text("CREATE TABLE u (n INTEGER NOT NULL)"))
        c.execute(text("INSERT INTO u VALUES (NULL)"))
    assert _queue_free(path)

    conn.execute(text("INSERT INTO t VALUES (3)"))
    conn.close()  # back to the pool: reset, which rolls back
    assert _queue_free(path)

    with engine.connect() as reader:  # a read-only transaction never queues
        reader = reader.execution_options(read_only=True)
        assert reader.scalar(text("SELECT count(*) FROM t")) == 1
        assert _queue_free(path)
    engine.dispose()
    assert _queue_free(path)


_HOLDER = """
import sys, time
from sqlalchemy import text
from jackdaw import db
engine = db.make_engine("sqlite:///" + sys.argv[1])
conn = engine.connect()
conn.execute(text("INSERT INTO t VALUES (7)"))
print("holding", flush=True)
time.sleep(600)
"""


def test_a_writer_that_dies_lets_the_next_one_in(tmp_path: Path) -> None:
    path = tmp_path / "jackdaw.db"
    engine = _engine(path)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        done = threading.Event()

        def write() -> None:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (8)"))
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not done.wait(0.5)  # queued behind the other process's transaction
        holder.send_signal(signal.SIGKILL)
        assert done.wait(10), "the dead process's place in the queue was not given up"
        writer.join()
    finally:
        holder.kill()
        holder.wait()
    with engine.connect() as conn:
        assert conn.scalars(text("SELECT n FROM t")).all() == [8]  # the dead one's INSERT never committed
    engine.dispose()


def test_a_writer_gives_up_as_sqlite_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "jackdaw.db"
    engine = _engine(path)
    other = _engine(path)  # another engine: its connections queue on the file lock only
    monkeypatch.setattr(db, "BUSY_TIMEOUT", 0.3)
    holding = engine.connect()
    holding.execute(text("INSERT INTO t VALUES (1)"))
    try:
        for eng in (engine, other):  # this process's lock, then another's file lock
            started = time.monotonic()
            with pytest.raises(exc.OperationalError, match="database is locked"), eng.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (2)"))
            assert 0.25 < time.monotonic() - started < 5
    finally:
        holding.rollback()
        holding.close()
    with other.begin() as conn:  # a give-up leaves nothing held
        conn.execute(text("INSERT INTO t VALUES (3)"))
    assert _queue_free(path)
    engine.dispose()
    other.dispose()
