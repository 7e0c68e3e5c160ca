"""a shared service: upstream account and leg-2 progress in the database, fenced job claims,
TXT values written by their zone's job

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jackdaw.models


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = jackdaw.models.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        'upstream_accounts',
        sa.Column('directory_url', sa.String(length=1000), nullable=False),
        sa.Column('key_pem', sa.Text(), nullable=False),
        sa.Column('key_encrypted', sa.Boolean(), nullable=False),
        sa.Column('account_url', sa.Text(), nullable=True),
        sa.Column('created', UTC, nullable=False),
        sa.PrimaryKeyConstraint('directory_url'),
    )
    op.create_table(
        'upstream_orders',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('owner_kind', sa.String(length=32), nullable=False),
        sa.Column('owner_id', sa.String(length=64), nullable=False),
        sa.Column('names', sa.JSON(), nullable=False),
        sa.Column('profile', sa.String(length=64), nullable=True),
        sa.Column('replaces', sa.String(length=255), nullable=True),
        sa.Column('url', sa.Text(), nullable=True),
        sa.Column('stage', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=True),
        sa.Column('challenges', sa.JSON(), nullable=False),
        sa.Column('error', sa.JSON(), nullable=True),
        sa.Column('stage_since', UTC, nullable=False),
        sa.Column('created', UTC, nullable=False),
        sa.Column('updated', UTC, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_upstream_orders_owner', 'upstream_orders', ['owner_kind', 'owner_id'], unique=True)
    # in-flight upstream orders carry over; the sequence re-reads each one's state from the CA
    op.execute(sa.text(
        "INSERT INTO upstream_orders (owner_kind, owner_id, names, url, stage, status, challenges, error, "
        "stage_since, created, updated) "
        "SELECT 'order', id, identifiers, upstream_order_url, "
        "CASE WHEN status = 'valid' THEN 'done' WHEN upstream_error IS NOT NULL THEN 'failed' ELSE 'authorize' END, "
        "CASE WHEN upstream_status LIKE 'Status(%' THEN substr(upstream_status, 8, length(upstream_status) - 8) "
        "ELSE upstream_status END, '[]', upstream_error, updated, created, updated "
        "FROM orders WHERE upstream_order_url IS NOT NULL"))
    with op.batch_alter_table('orders') as batch_op:
        batch_op.drop_column('upstream_order_url')
        batch_op.drop_column('upstream_status')
        batch_op.drop_column('upstream_error')

    with op.batch_alter_table('jobs') as batch_op:
        batch_op.add_column(sa.Column('owner', sa.String(length=32), nullable=True))
        batch_op.alter_column('subject_id', existing_type=sa.String(length=64), type_=sa.String(length=255),
                              existing_nullable=False)
        batch_op.create_index(batch_op.f('ix_jobs_owner'), ['owner'], unique=False)

    with op.batch_alter_table('challenges') as batch_op:
        batch_op.add_column(sa.Column('tries', sa.Integer(), server_default='0', nullable=False))

    # values written before this revision are removed by their zone's job; an order still in
    # flight asks for its values again
    with op.batch_alter_table('dns_records') as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=16), server_default='removing', nullable=False))
        batch_op.add_column(sa.Column('owner_kind', sa.String(length=32), server_default='order', nullable=False))
        batch_op.add_column(sa.Column('run', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('written', UTC, nullable=True))
        batch_op.add_column(sa.Column('served', UTC, nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch_op.create_index('ix_dns_records_zone_state', ['zone', 'state'], unique=False)
    with op.batch_alter_table('dns_records') as batch_op:
        batch_op.alter_column('state', existing_type=sa.String(length=16), server_default=None,
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('dns_records') as batch_op:
        batch_op.drop_index('ix_dns_records_zone_state')
        for column in ('error', 'attempts', 'served', 'written', 'run', 'owner_kind', 'state'):
            batch_op.drop_column(column)
    with op.batch_alter_table('challenges') as batch_op:
        batch_op.drop_column('tries')
    op.execute(sa.text("DELETE FROM jobs WHERE length(subject_id) > 64"))
    with op.batch_alter_table('jobs') as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_owner'))
        batch_op.alter_column('subject_id', existing_type=sa.String(length=255), type_=sa.String(length=64),
                              existing_nullable=False)
        batch_op.drop_column('owner')
    with op.batch_alter_table('orders') as batch_op:
        batch_op.add_column(sa.Column('upstream_error', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('upstream_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('upstream_order_url', sa.Text(), nullable=True))
    op.execute(sa.text(
        "UPDATE orders SET upstream_order_url = (SELECT url FROM upstream_orders u WHERE u.owner_kind = 'order' "
        "AND u.owner_id = orders.id), upstream_status = (SELECT status FROM upstream_orders u WHERE "
        "u.owner_kind = 'order' AND u.owner_id = orders.id)"))
    op.drop_index('ix_upstream_orders_owner', table_name='upstream_orders')
    op.drop_table('upstream_orders')
    op.drop_table('upstream_accounts')
