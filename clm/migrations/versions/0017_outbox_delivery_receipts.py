"""The outbox keeps the provider's id of each sent message and what its delivery receipt said.

Alibaba Cloud and Tencent Cloud SMS push delivery receipts that name the message by the id their
send call returned (BizId, SerialNo); `provider_ref` holds it, and `delivery` / `delivered_at`
what the receipt reported (delivered or undelivered, and when).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 21:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from clm.store.schema import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("provider_ref", sa.String(100), nullable=True))
        batch.add_column(sa.Column("delivery", sa.String(16), nullable=True))
        batch.add_column(sa.Column("delivered_at", UTCDateTime(timezone=True), nullable=True))
        batch.create_index("ix_outbox_provider_ref", ["channel", "provider_ref"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_provider_ref")
        batch.drop_column("delivered_at")
        batch.drop_column("delivery")
        batch.drop_column("provider_ref")
