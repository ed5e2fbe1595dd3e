"""segment_sizes: a segment's size after each full evaluation, for the console's size-trend chart.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 21:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clm.store.schema

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segment_sizes",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("segment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("measured_at", clm.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("exited", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_sizes_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_sizes")),
    )
    with op.batch_alter_table("segment_sizes", schema=None) as batch_op:
        batch_op.create_index("ix_segment_sizes_segment_time", ["segment_id", "measured_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("segment_sizes", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_sizes_segment_time")
    op.drop_table("segment_sizes")
