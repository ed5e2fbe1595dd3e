"""P(alive) may be NULL: BG/NBD says nothing about a customer without a repeat purchase.

BG/NBD gives every one-time buyer P(alive) = 1 by assumption (dropout only after a repeat
purchase), which ranked them all as "no risk". Such scores become NULL; under BG/NBD only a
one-time buyer gets exactly 1.0 (a repeat buyer's value is 1 / (1 + a/(b+x-1) · ((α+T)/(α+t_x))^(r+x))
with a/(b+x-1) far above 1e-16), so those rows are the ones cleared.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 18:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clv_scores", schema=None) as batch_op:
        batch_op.alter_column("p_alive", existing_type=sa.Float(), nullable=True)
    op.execute("UPDATE clv_scores SET p_alive = NULL WHERE model = 'bgnbd' AND p_alive = 1.0")


def downgrade() -> None:
    op.execute("UPDATE clv_scores SET p_alive = 1.0 WHERE p_alive IS NULL")
    with op.batch_alter_table("clv_scores", schema=None) as batch_op:
        batch_op.alter_column("p_alive", existing_type=sa.Float(), nullable=False)
