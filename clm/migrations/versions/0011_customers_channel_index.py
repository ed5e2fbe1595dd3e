"""A narrow index of customers' acquisition channels, for reports grouped by channel.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 09:09:24.987002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index("ix_customers_id_channel", ["id", "acquisition_channel"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_id_channel")
