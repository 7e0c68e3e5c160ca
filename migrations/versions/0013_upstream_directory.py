"""upstream_directories: the upstream CA's directory meta as last fetched (jackdaw.upstream.directory)

Profiles, renewalInfo, CAA identities and "EAB required" were each process's memory, fetched
after start: a relay restarted while the CA was away offered no profiles. Now they are a row per
upstream directory URL, served from the first request and shared by every instance.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jackdaw.models

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'upstream_directories',
        sa.Column('directory_url', sa.String(length=1000), nullable=False),
        sa.Column('profiles', sa.JSON(), nullable=False),
        sa.Column('withdrawn', sa.JSON(), nullable=False),
        sa.Column('caa_identities', sa.JSON(), nullable=False),
        sa.Column('renewal_info', sa.Text(), nullable=True),
        sa.Column('eab_required', sa.Boolean(), nullable=False),
        sa.Column('fetched', jackdaw.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('checked', jackdaw.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('directory_url'),
    )


def downgrade() -> None:
    op.drop_table('upstream_directories')
