"""Engine and sessions for SQLite (embedded default) and PostgreSQL (several instances)."""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

from sqlalchemy import CursorResult, Engine, Result, Select, create_engine, event, func, make_url
from sqlalchemy import exc as exc_
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

T = TypeVar("T")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    # pool_pre_ping: after PostgreSQL restarts, every pooled connection is dead; the ping (one
    # round trip per checkout) replaces it instead of failing the request that drew it. A
    # server that does not answer at all fails a connection in seconds, not at TCP's timeout.
    return create_engine(url, pool_size=10, max_overflow=10, pool_recycle=300, pool_pre_ping=True,
                         connect_args={"connect_timeout": CONNECT_TIMEOUT})


#: seconds to connect to PostgreSQL before the attempt counts as the database being away
CONNECT_TIMEOUT = 10


def sqlite_path(url: str) -> str | None:
    """The file of an SQLite URL; None for PostgreSQL and an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return parsed.database if parsed.database not in (None, "", ":memory:") else None


def sqlite_connect(path: str, **kwargs: Any) -> sqlite3.Connection:
    """Open an existing database file, never create one: a file removed or moved under a running
    relay is an error, not a fresh empty database the next connection quietly writes into."""
    conn: sqlite3.Connection = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, **kwargs)
    return conn


def file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _sqlite_engine(url: str) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        db = Path(path)
        # the database holds the upstream account key and EAB keys: only its owner reads it
        db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not db.exists():
            os.close(os.open(db, os.O_CREAT | os.O_WRONLY, 0o600))  # SQLite's -wal and -shm copy its mode
    queue = _WriterQueue(path) if path is not None else None
    connect_args = {"timeout": BUSY_TIMEOUT, "check_same_thread": False, "factory": _Connection}
    if path is None:
        engine = create_engine(url, connect_args=connect_args)
    else:
        engine = create_engine(url, creator=lambda: sqlite_connect(path, **connect_args))

        @event.listens_for(engine, "checkout")
        def _on_checkout(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            # A pooled connection keeps using a file that was removed, moved or replaced (its
            # open descriptor): what it writes then is lost. One stat per checkout notices.
            if file_id(path) != record.info.get("jackdaw_file"):
                raise exc_.DisconnectionError(f"the database file {path} was removed or replaced")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start (pysqlite otherwise
        # starts them lazily, which makes read-then-write upgrades fail with "locked").
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT * 1000}")
        cur.close()
        dbapi_conn.queue = queue
        if path is not None:
            record.info["jackdaw_file"] = file_id(path)  # the file this connection has open

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Transactions take the write lock up front: SQLite has one writer anyway, and this is
        # what serializes job claims and guarded state transitions across processes. Probes
        # that only look (execution option read_only) start a plain deferred transaction.
        if conn.get_execution_options().get("read_only"):
            conn.exec_driver_sql("BEGIN")
            return
        dbapi_conn = conn.connection.dbapi_connection
        try:
            dbapi_conn.enqueue()
        except sqlite3.OperationalError as exc:  # as SQLite's own "locked" would reach the caller
            raise exc_.OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_conn.dequeue()
            raise

    return engine


#: seconds a writer waits for SQLite's one write lock before "database is locked"
BUSY_TIMEOUT = 30


class _WriterQueue:
    """SQLite's writers queued in the kernel and in this process, not in SQLite's busy handler.

    A writer that finds the write lock taken sleeps in SQLite's busy handler 1, 2, 5, 10, 15,
    20, 25... ms between tries, however soon the lock is free: under load the lock then sits
    idle while writers sleep (newOrders, which write, used about half of the machine). Here a
    write transaction first takes, in this process, a lock its threads queue on, then an
    exclusive ``flock`` on a file beside the database (per connection: the kernel wakes the
    next process the moment the holder lets go, and lets go for a process that dies). BEGIN
    IMMEDIATE then finds the lock free. Both waits give up after ``BUSY_TIMEOUT`` as SQLite
    would, with its "database is locked". A program that does not queue here (the sqlite3
    shell) still meets SQLite's own locking: the queue decides who asks first, SQLite who wins.
    """

    def __init__(self, path: str) -> None:
        self.path = path + "-writer"
        self.local = threading.Lock()

    def open(self) -> int:
        return os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)


class _Connection(sqlite3.Connection):
    """A pysqlite connection that takes its place in the writer queue for a write transaction
    (``enqueue``, from the engine's "begin") and leaves it when the transaction ends."""

    queue: _WriterQueue | None = None
    _fd: int | None = None
    _queued = False

    def enqueue(self) -> None:
        q = self.queue
        if q is None:
            return
        deadline = time.monotonic() + BUSY_TIMEOUT
        if not q.local.acquire(timeout=BUSY_TIMEOUT):
            raise sqlite3.OperationalError("database is locked (waited for this process's writer)")
        try:
            if self._fd is None:
                try:
                    self._fd = q.open()
                except OSError as exc:  # reported as the database's error (jackdaw.outage)
                    raise sqlite3.OperationalError(f"cannot open {q.path}: {exc.strerror}") from exc
            pause = 0.00005
            # Another process's writer: poll at a fine grain, as SQLite's busy handler would at
            # a coarse one (a blocking flock cannot time out). A lock wait, bounded by
            # BUSY_TIMEOUT, inside a transaction's start: there is nothing to reschedule.
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                        raise sqlite3.OperationalError("database is locked (waited for another process's writer)") \
                            from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
        except BaseException:
            q.local.release()
            raise
        self._queued = True

    def dequeue(self) -> None:
        if self._queued:
            self._queued = False
            assert self.queue is not None and self._fd is not None
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self.queue.local.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.dequeue()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.dequeue()

    def close(self) -> None:
        try:
            self.dequeue()
            super().close()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def one_by_id(session: Session, query: Select[T], row_id: str) -> T | None:
    """The row ``query`` (built once, with a bindparam ``id``) finds, or None. Hot paths use this
    rather than Session.get, which builds its query on every call (1.7x the cost)."""
    return session.execute(query, {"id": row_id}).unique().scalar_one_or_none()


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def db_now(dialect: str, offset: float = 0.0) -> ColumnElement[datetime] | datetime:
    """"Now" (plus ``offset`` seconds) on the database's clock, for leases and run times.

    PostgreSQL: its own ``now()``, so instances on hosts whose clocks differ agree. SQLite is a
    file on this host: this host's clock is the database's.
    """
    if dialect == "postgresql":
        now: ColumnElement[datetime] = func.now()
        return now + timedelta(seconds=offset) if offset else now
    return datetime.now(UTC) + timedelta(seconds=offset)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE/DELETE (the Result of session.execute is a CursorResult)."""
    return cast(CursorResult[Any], result).rowcount
