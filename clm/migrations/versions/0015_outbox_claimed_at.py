"""The outbox remembers when a dispatcher claimed each message (the database's own clock).

On PostgreSQL a dispatcher records each message's hand-over without waiting for the disk
(synchronous_commit off); after a database restart, a message claimed before it may have gone
out with its record lost, so it is marked `unknown` rather than sent again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from clm.store.schema import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_at")
