"""migrations/ is the only source of the schema: it must build exactly what jackdaw.models says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from jackdaw import migrate, schema
from jackdaw.db import make_engine
from jackdaw.models import Base

ROOT = migrate.MIGRATIONS.parent


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[Engine]:
    eng = make_engine(empty_database_url)
    yield eng
    eng.dispose()


def schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diff: list[Any] = compare_metadata(ctx, Base.metadata)
    return diff


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_alembic_cli_upgrade_head_matches_models(empty_database_url: str, engine: Engine) -> None:
    """What an operator runs: `alembic -c migrations/alembic.ini upgrade head` with DATABASE_URL."""
    assert not migrate.is_at_head(engine)
    env = {**os.environ, "DATABASE_URL": empty_database_url}
    proc = subprocess.run([sys.executable, "-m", "alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert migrate.is_at_head(engine)
    assert tables(engine) >= set(Base.metadata.tables)
    assert schema_diff(engine) == []


def test_downgrade_base_then_upgrade_head(empty_database_url: str, engine: Engine) -> None:
    assert schema.current(engine) is None  # alembic never ran here
    migrate.upgrade(empty_database_url)
    assert migrate.is_at_head(engine) and schema.is_at_head(engine)
    assert schema_diff(engine) == []

    command.downgrade(migrate.alembic_config(empty_database_url), "-1")
    assert not migrate.is_at_head(engine) and not schema.is_at_head(engine)
    with engine.connect() as conn:  # the revision as alembic itself reads it
        assert schema.current(engine) == MigrationContext.configure(conn).get_current_revision() != schema.HEAD

    command.downgrade(migrate.alembic_config(empty_database_url), "base")
    assert not migrate.is_at_head(engine) and not schema.is_at_head(engine)
    assert tables(engine) - {"alembic_version"} == set()

    migrate.upgrade(empty_database_url)
    assert migrate.is_at_head(engine) and schema.is_at_head(engine)
    assert schema_diff(engine) == []


def test_the_services_head_is_alembics_head(engine: Engine) -> None:
    """jackdaw.schema.HEAD (readiness, without alembic) names the newest migration."""
    assert migrate.revisions(engine)[1] == schema.HEAD


def test_the_service_does_not_import_alembic() -> None:
    """alembic and mako are ~10 MB in every process: the app needs neither (only the CLI's `db`)."""
    code = ("import sys, jackdaw.app, jackdaw.wfe.views, jackdaw.health; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_comparison_can_fail(empty_database_url: str, engine: Engine) -> None:
    """Control: a schema that lacks a table is reported, so an empty diff above means something."""
    migrate.upgrade(empty_database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE dns_records")
    diff = schema_diff(engine)
    assert diff and diff[0][0] == "add_table" and diff[0][1].name == "dns_records"
    assert {d[1].table.name for d in diff[1:]} <= {"dns_records"}  # and its index
