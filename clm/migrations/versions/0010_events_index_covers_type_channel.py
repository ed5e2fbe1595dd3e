"""ix_events_customer_time covers type and channel: per-customer event counts read only the index

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 06:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_events_customer_time", table_name="events")
    op.create_index("ix_events_customer_time", "events", ["customer_id", "occurred_at", "type", "channel"])


def downgrade() -> None:
    op.drop_index("ix_events_customer_time", table_name="events")
    op.create_index("ix_events_customer_time", "events", ["customer_id", "occurred_at"])
