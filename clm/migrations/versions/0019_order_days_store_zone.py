"""order_days: days in the store's time zone, with the zone recorded (was: UTC days)

The summary is rebuilt with each order's calendar day in `CLM_DEFAULT_TIMEZONE` (Asia/Shanghai
by default), and `order_days_zone` records that zone, so that a later change of the setting is
seen and the summary rebuilt again (clm.commerce.order_days.ensure_order_days_zone).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 22:10:00.000000
"""

import os
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_days_zone",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("zone", name=op.f("pk_order_days_zone")),
    )
    zone = ZoneInfo(os.environ.get("CLM_DEFAULT_TIMEZONE", "").strip() or "Asia/Shanghai").key
    _rebuild(zone)
    op.execute(sa.text("INSERT INTO order_days_zone (zone) VALUES (:zone)").bindparams(zone=zone))


def _rebuild(zone: str) -> None:
    """The summary in SQL of its own (as 0008's), with local days: this migration must keep
    working whatever later versions of clm.commerce.order_days look like. On SQLite the local
    time comes from `clm_local_time`, which clm.store.engine registers on every connection."""
    if op.get_bind().dialect.name == "postgresql":
        day = f"(CAST(o.ordered_at AT TIME ZONE '{zone}' AS DATE) - DATE '1970-01-01')"
        never, beginning = "TIMESTAMPTZ '9999-12-31 00:00:00+00'", "TIMESTAMPTZ '1900-01-01 00:00:00+00'"
    else:
        local = "o.ordered_at" if zone == "UTC" else f"clm_local_time(o.ordered_at, '{zone}')"
        day = f"(CAST(julianday({local}) + 0.5 AS INTEGER) - 2440588)"
        never, beginning = "'9999-12-31 00:00:00.000000'", "'1900-01-01 00:00:00.000000'"
    later_first = "OVER (PARTITION BY customer_id, day ORDER BY until DESC)"
    op.execute("DELETE FROM order_days")
    op.execute(
        f"""
        INSERT INTO order_days (customer_id, day, counted_from, counted_until, orders, revenue, cost)
        SELECT customer_id, day, lead(until, 1, {beginning}) {later_first}, until,
               sum(orders) {later_first}, sum(revenue) {later_first}, sum(cost) {later_first}
        FROM (
            SELECT customer_id, day, until,
                   count(*) AS orders, sum(total) AS revenue, coalesce(sum(cost), 0) AS cost
            FROM (
                SELECT o.customer_id, {day} AS day, o.total, c.cost,
                       CASE WHEN o.status = 'refunded' THEN o.refunded_at ELSE {never} END AS until
                FROM orders o
                LEFT JOIN (
                    SELECT i.order_pk, sum(i.quantity * coalesce(p.cost, 0)) AS cost
                    FROM order_items i LEFT JOIN products p ON p.sku = i.sku
                    GROUP BY i.order_pk
                ) c ON c.order_pk = o.id
                WHERE o.status <> 'cancelled' AND NOT (o.status = 'refunded' AND o.refunded_at IS NULL)
            ) counted
            GROUP BY customer_id, day, until
        ) ends
        """
    )


def downgrade() -> None:
    op.drop_table("order_days_zone")
    _rebuild("UTC")
