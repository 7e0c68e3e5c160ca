"""who may get which names: external account binding keys, the upstream budget ledger, paused
names, the requester of an order

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jackdaw.models


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = jackdaw.models.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        'eab_keys',
        sa.Column('kid', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('hmac_key', sa.String(length=128), nullable=False),
        sa.Column('allow', sa.JSON(), nullable=False),
        sa.Column('wildcards', sa.Boolean(), nullable=False),
        sa.Column('sources', sa.JSON(), nullable=False),
        sa.Column('requester_in_dns', sa.Boolean(), nullable=False),
        sa.Column('orders_per_hour', sa.Integer(), nullable=True),
        sa.Column('created', UTC, nullable=False),
        sa.Column('revoked', UTC, nullable=True),
        sa.PrimaryKeyConstraint('kid'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'budget_buckets',
        sa.Column('limit', sa.String(length=32), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('tokens', sa.Float(), nullable=False),
        sa.Column('updated', UTC, nullable=False),
        sa.Column('label', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('limit', 'key'),
    )
    op.create_table(
        'upstream_pauses',
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('unpause_url', sa.Text(), nullable=True),
        sa.Column('since', UTC, nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.add_column(sa.Column('eab_kid', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_accounts_eab_kid'), ['eab_kid'], unique=False)
        batch_op.create_foreign_key('fk_accounts_eab_kid_eab_keys', 'eab_keys', ['eab_kid'], ['kid'])
    with op.batch_alter_table('orders') as batch_op:
        batch_op.add_column(sa.Column('requester', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('budget', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_budget'), ['budget'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_budget'))
        batch_op.drop_column('budget')
        batch_op.drop_column('requester')
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.drop_constraint('fk_accounts_eab_kid_eab_keys', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_accounts_eab_kid'))
        batch_op.drop_column('eab_kid')
    op.drop_table('upstream_pauses')
    op.drop_table('budget_buckets')
    op.drop_table('eab_keys')
