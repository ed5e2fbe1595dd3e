"""Event ids and identity values compared byte by byte on PostgreSQL (the "C" collation).

Their unique indexes then compare with memcmp instead of the locale's strcoll: less server work
for every event and profile stored. SQLite compares bytes already; nothing changes there.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 01:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, length)
KEY_COLUMNS = [
    ("events", "event_id", 128),
    ("customer_identities", "kind", 20),
    ("customer_identities", "value", 320),
]


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, length in KEY_COLUMNS:
        # the type is unchanged, so the rows are not rewritten; the indexes on the column are rebuilt
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar({length}) COLLATE "{collation}"')


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
