"""Engine and sessions for SQLite (embedded default) and PostgreSQL (several instances)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, func
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    # pool_pre_ping: after PostgreSQL restarts, every pooled connection is dead; the ping (one
    # round trip per checkout) replaces it instead of failing the request that drew it
    return create_engine(url, pool_size=10, max_overflow=10, pool_recycle=300, pool_pre_ping=True)


def _sqlite_engine(url: str) -> Engine:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        db = Path(path)
        # the database holds the upstream account key and EAB keys: only its owner reads it
        db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not db.exists():
            os.close(os.open(db, os.O_CREAT | os.O_WRONLY, 0o600))  # SQLite's -wal and -shm copy its mode
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start (pysqlite otherwise
        # starts them lazily, which makes read-then-write upgrades fail with "locked").
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Transactions take the write lock up front: SQLite has one writer anyway, and this is
        # what serializes job claims and guarded state transitions across processes. Probes
        # that only look (execution option read_only) start a plain deferred transaction.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")

    return engine


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
