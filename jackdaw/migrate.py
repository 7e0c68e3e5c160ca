"""Run alembic from code (the CLI's `db` commands, tests) with migrations/ as the only schema source.

The service itself never imports this (jackdaw.schema answers readiness)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from jackdaw import schema

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _not_context_chatter(record: logging.LogRecord) -> bool:
    """alembic says "Context impl SQLiteImpl." and "Will assume ... DDL." whenever a
    MigrationContext is made (each `db` command): nothing an operator needs.
    "Running upgrade ..." stays."""
    return not str(record.msg).startswith(("Context impl", "Will assume"))


logging.getLogger("alembic.runtime.migration").addFilter(_not_context_chatter)


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite's batch migrations rebuild a table (copy, DROP, rename): with foreign keys on, the
    DROP of a table that other rows refer to fails (or cascades). SQLite ignores the pragma
    inside a transaction, so it is set on the driver's connection before alembic begins one,
    and set back afterwards (jackdaw.db turns it on for every connection)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    if connection.in_transaction():
        raise RuntimeError("SQLite migrations need a connection outside a transaction (PRAGMA foreign_keys)")
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def check_foreign_keys(connection: Connection) -> None:
    """What the migrations did with foreign keys off must leave none broken: an IntegrityError
    naming each table with orphans, raised inside the migrations' transaction (which then rolls
    back). PostgreSQL checked every row as it was written."""
    if connection.dialect.name != "sqlite":
        return
    orphans: dict[tuple[str, str], int] = {}
    for table, _rowid, parent, _fk in connection.exec_driver_sql("PRAGMA foreign_key_check"):
        orphans[(table, parent)] = orphans.get((table, parent), 0) + 1
    if orphans:
        found = ", ".join(f"{table} ({n} rows referring to missing {parent} rows)"
                          for (table, parent), n in sorted(orphans.items()))
        raise IntegrityError("PRAGMA foreign_key_check", None,
                             ForeignKeyOrphans(f"the migration left rows whose foreign key points nowhere: {found}; "
                                               "nothing was changed"))


class ForeignKeyOrphans(Exception):
    """The driver-level error inside check_foreign_keys' IntegrityError (its message)."""


def revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's revision, the code's head)."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    return schema.current(engine), head


def is_at_head(engine: Engine) -> bool:
    current, head = revisions(engine)
    return current == head
