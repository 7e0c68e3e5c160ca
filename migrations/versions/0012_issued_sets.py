"""issued_sets and orders.renewal: the budget counts a renewal as the CA does

Let's Encrypt counts an order for the exact set of names of a certificate it issued in the last
120 days as a renewal (exempt from new-orders and certs-per-domain). ``issued_sets`` keeps one
row per set, keyed by its digest, so that look-up is one primary-key read however many
certificates exist; it is filled here from the certificates of the last 120 days.
``orders.renewal`` records what an order's reservation took, so what is given back matches.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 02:30:00.000000
"""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

import jackdaw.models

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Boulder's renewal window (FQDNSetTimestampsForWindow, 120 days), frozen here
WINDOW = timedelta(days=120)
BATCH = 1000


def _set_key(names: list[str]) -> str:
    """jackdaw.budget.set_key as of this revision (a migration never imports moving code)."""
    return "sha256:" + hashlib.sha256(",".join(sorted(set(names))).encode()).hexdigest()[:40]


def upgrade() -> None:
    issued_sets = op.create_table(
        'issued_sets',
        sa.Column('set_key', sa.String(length=48), nullable=False),
        sa.Column('issued', jackdaw.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('set_key'),
    )
    op.create_index('ix_issued_sets_issued', 'issued_sets', ['issued'], unique=False)
    # a plain ADD COLUMN on SQLite too: a batch would copy the orders table (its default is an
    # expression, which batch mode takes as a reason to rebuild)
    op.add_column('orders', sa.Column('renewal', sa.Boolean(), server_default=sa.false(), nullable=False))

    certificates = sa.table('certificates', sa.column('order_id', sa.String),
                            sa.column('created', jackdaw.models.UTCDateTime(timezone=True)))
    orders = sa.table('orders', sa.column('id', sa.String), sa.column('identifiers', sa.JSON))
    since = datetime.now(UTC) - WINDOW
    conn = op.get_bind()
    insert: Any = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(issued_sets)
    # the latest issuance of a set wins; batches keep memory bounded however many certificates
    upsert = insert.on_conflict_do_update(index_elements=["set_key"], set_={"issued": sa.func.max(
        issued_sets.c.issued, insert.excluded.issued) if conn.dialect.name == "sqlite" else sa.func.greatest(
        issued_sets.c.issued, insert.excluded.issued)})
    rows = conn.execute(  # streamed (the statement's option: the connection's would outlive it)
        sa.select(orders.c.identifiers, certificates.c.created).execution_options(yield_per=BATCH)
        .join(orders, orders.c.id == certificates.c.order_id).where(certificates.c.created >= since))
    for batch in rows.partitions(BATCH):
        latest: dict[str, datetime] = {}
        for identifiers, created in batch:
            key = _set_key(list(identifiers))
            latest[key] = max(created, latest.get(key, created))
        conn.execute(upsert, [{"set_key": k, "issued": v} for k, v in latest.items()])


def downgrade() -> None:
    op.drop_column('orders', 'renewal')  # SQLite 3.35+ drops in place: no copy of orders either
    op.drop_index('ix_issued_sets_issued', table_name='issued_sets')
    op.drop_table('issued_sets')
