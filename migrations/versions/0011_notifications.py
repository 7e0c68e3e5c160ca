"""notifications: one row per event and channel, deduplicated (jackdaw.notify)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jackdaw.models

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'notifications',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('event', sa.String(length=32), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('period', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('created', jackdaw.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('sent', jackdaw.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('notifications') as batch_op:
        batch_op.create_index('ix_notifications_key', ['event', 'subject', 'period', 'channel'], unique=True)
        batch_op.create_index(batch_op.f('ix_notifications_created'), ['created'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notifications') as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_created'))
        batch_op.drop_index('ix_notifications_key')
    op.drop_table('notifications')
