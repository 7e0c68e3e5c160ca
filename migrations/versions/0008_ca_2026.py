"""the CA as it is in 2026: certificate profiles, ARI renewal info and replacements

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jackdaw.models


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = jackdaw.models.UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch_op:
        batch_op.add_column(sa.Column('profile', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('replaces', sa.String(length=255), nullable=True))
    with op.batch_alter_table('certificates') as batch_op:
        batch_op.add_column(sa.Column('ari_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('replaced_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('ari_start', UTC, nullable=True))
        batch_op.add_column(sa.Column('ari_end', UTC, nullable=True))
        batch_op.add_column(sa.Column('ari_explanation', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('ari_refresh', UTC, nullable=True))
        batch_op.create_index(batch_op.f('ix_certificates_ari_id'), ['ari_id'], unique=False)
    with op.batch_alter_table('eab_keys') as batch_op:
        batch_op.add_column(sa.Column('profiles', sa.JSON(), nullable=True))
    op.execute(sa.text("UPDATE eab_keys SET profiles = '[]'"))
    with op.batch_alter_table('eab_keys') as batch_op:
        batch_op.alter_column('profiles', existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('eab_keys') as batch_op:
        batch_op.drop_column('profiles')
    with op.batch_alter_table('certificates') as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificates_ari_id'))
        for column in ('ari_refresh', 'ari_explanation', 'ari_end', 'ari_start', 'replaced_by', 'ari_id'):
            batch_op.drop_column(column)
    with op.batch_alter_table('orders') as batch_op:
        batch_op.drop_column('replaces')
        batch_op.drop_column('profile')
