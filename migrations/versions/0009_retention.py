"""retention: orders and certificates are pruned by expiry (jackdaw.retention)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 19:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_expires'), ['expires'], unique=False)
    with op.batch_alter_table('certificates') as batch_op:
        batch_op.create_index(batch_op.f('ix_certificates_not_after'), ['not_after'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('certificates') as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificates_not_after'))
    with op.batch_alter_table('orders') as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_expires'))
