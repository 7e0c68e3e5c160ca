"""0012 on rows: the exact name sets issued in the last 120 days become renewals' look-up rows,
one per set at its latest issuance; older certificates are no renewal basis (Boulder's window)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from jackdaw import migrate
from jackdaw.budget import set_key
from jackdaw.db import make_engine

NOW = datetime.now(UTC).replace(microsecond=0)


def _seed(conn: sa.Connection) -> None:
    conn.execute(sa.text("INSERT INTO accounts (id, thumbprint, jwk, status, contact, created) "
                         "VALUES ('acct', 'tp', '{}', 'valid', '[]', :now)"), {"now": NOW})
    certs = [("o1", '["a.example.test", "b.example.test"]', NOW - timedelta(days=80)),
             ("o2", '["b.example.test", "a.example.test"]', NOW - timedelta(days=20)),  # the same set, later
             ("o3", '["old.example.test"]', NOW - timedelta(days=130))]
    for order_id, names, created in certs:
        conn.execute(sa.text("INSERT INTO orders (id, account_id, status, expires, identifiers, created, updated) "
                             "VALUES (:id, 'acct', 'valid', :now, :names, :created, :created)"),
                     {"id": order_id, "now": NOW, "names": names, "created": created})
        conn.execute(sa.text("INSERT INTO certificates (id, order_id, serial, chain_pem, not_after, created) "
                             "VALUES (:id, :id, 'ab', 'pem', :now, :created)"),
                     {"id": order_id, "now": NOW, "created": created})


def test_issued_sets_are_filled_from_recent_certificates(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url, "0011")
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            _seed(conn)
        migrate.upgrade(empty_database_url)
        with engine.connect() as conn:
            rows = {key: issued for key, issued in conn.execute(sa.text("SELECT set_key, issued FROM issued_sets"))}
            renewal = conn.scalars(sa.text("SELECT renewal FROM orders")).all()
    finally:
        engine.dispose()
    assert list(rows) == [set_key(["a.example.test", "b.example.test"])]
    issued = rows[set_key(["a.example.test", "b.example.test"])]
    issued = issued if isinstance(issued, datetime) else datetime.fromisoformat(issued)
    assert issued.replace(tzinfo=UTC) == NOW - timedelta(days=20)
    assert renewal == [False] * 3 or renewal == [0] * 3


def test_down_and_up_again_with_rows(empty_database_url: str) -> None:
    """The rows stay (SQLite drops the column in place, no copy of orders under its references)."""
    from alembic import command

    migrate.upgrade(empty_database_url, "0011")
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            _seed(conn)
        migrate.upgrade(empty_database_url)
        command.downgrade(migrate.alembic_config(empty_database_url), "0011")
        migrate.upgrade(empty_database_url)
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM orders")) == 3
            assert conn.scalar(sa.text("SELECT count(*) FROM issued_sets")) == 1
    finally:
        engine.dispose()
