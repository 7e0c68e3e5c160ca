"""accounts.blocked: the operator's reversible hold (`jackdaw account block|unblock`)

RFC 8555's account statuses are valid, deactivated (by the client) and revoked (by the server),
the last two final; a hold the operator may lift is not one of them, so it is kept beside the
status and the account stays "valid" while refused.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jackdaw.models

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.add_column(sa.Column("blocked", jackdaw.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.drop_column('blocked')
