"""Which schema revision this code needs, and whether a database has it, without alembic.

alembic (with mako) is ~10 MB of memory in every process that imports it; the service itself
only needs to know whether the database is at the code's head (readiness), so it reads
alembic's version table directly. ``HEAD`` names the newest file in migrations/versions: a test
checks it against alembic's own head, so a new migration cannot forget it. The CLI's ``db``
commands (jackdaw.migrate) still run alembic itself.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

#: the revision of migrations/versions' newest file
HEAD = "0013"


def current(engine: Engine) -> str | None:
    """The database's revision (alembic_version), None for a database alembic never touched."""
    # read_only: a plain deferred BEGIN on SQLite (jackdaw.db), so a readiness probe never
    # waits for the write lock
    with engine.connect().execution_options(read_only=True) as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        versions = conn.scalars(text("SELECT version_num FROM alembic_version")).all()
    return versions[0] if len(versions) == 1 else None


def is_at_head(engine: Engine) -> bool:
    return current(engine) == HEAD
