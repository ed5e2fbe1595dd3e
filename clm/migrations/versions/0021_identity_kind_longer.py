"""Identity kinds may be 32 characters long: `wecom_external_userid` (a WeCom external contact)
has 21.

PostgreSQL widens the varchar in place (no rows rewritten), keeping the "C" collation of 0012;
SQLite copies the table once (it cannot change a column's declared type otherwise).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 22:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _kind_length(old: int, new: int) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'ALTER TABLE customer_identities ALTER COLUMN kind TYPE varchar({new}) COLLATE "C"')
        return
    with op.batch_alter_table("customer_identities") as batch:
        batch.alter_column(
            "kind", existing_type=sa.String(old), type_=sa.String(new), existing_nullable=False
        )


def upgrade() -> None:
    _kind_length(20, 32)


def downgrade() -> None:
    _kind_length(32, 20)
