"""Alembic environment: the only source of Jackdaw's schema."""

from alembic import context
from sqlalchemy import Connection

from jackdaw.db import make_engine
from jackdaw.migrate import check_foreign_keys, sqlite_foreign_keys_off
from jackdaw.models import Base

config = context.config
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
if not url:
    from jackdaw.envfile import database_url_from_env

    url = database_url_from_env()


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Connection) -> None:
    with sqlite_foreign_keys_off(connection):
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,  # SQLite needs batch mode for ALTER TABLE
            compare_type=True,
            # SQLite's DDL is transactional too: every step of an upgrade in one transaction, so
            # the foreign-key check below can roll all of it back (alembic commits per step)
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            check_foreign_keys(connection)


run_migrations()
