"""dns_records: owned by any job subject (client orders and the relay's own certificate)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite's foreign key has no name: batch mode names it by this convention on reflection
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
POSTGRES_FK = "dns_records_order_id_fkey"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(POSTGRES_FK, "dns_records", type_="foreignkey")
        return
    with op.batch_alter_table("dns_records", naming_convention=SQLITE_NAMES) as batch_op:
        batch_op.drop_constraint("fk_dns_records_order_id_orders", type_="foreignkey")


def downgrade() -> None:
    # values of the relay's own certificate have no order row: they cannot stay under the key
    op.execute(sa.text("DELETE FROM dns_records WHERE order_id NOT IN (SELECT id FROM orders)"))
    name = POSTGRES_FK if op.get_bind().dialect.name == "postgresql" else "fk_dns_records_order_id_orders"
    with op.batch_alter_table("dns_records") as batch_op:
        batch_op.create_foreign_key(name, "orders", ["order_id"], ["id"])
