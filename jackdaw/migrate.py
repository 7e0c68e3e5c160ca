"""Run alembic from code (the CLI's `db` commands, tests) with migrations/ as the only schema source.

The service itself never imports this (jackdaw.schema answers readiness)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

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


def revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's revision, the code's head)."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    return schema.current(engine), head


def is_at_head(engine: Engine) -> bool:
    current, head = revisions(engine)
    return current == head
