"""Campaign ROI, with each order credited once across all journeys and broadcasts.

The rule (last touch): a completed order is credited to the journey of the **last message that
touched the customer before the order, within that journey's attribution window** (its goal's
`within_days`, 7 by default). A message touches the customer when it is sent (delivered to the
provider) and again when it is clicked. Of the touches at or before the order and no more than
their journey's window before it, the latest wins (a tie: the later message). An order with no
such touch is credited to no campaign. One set-based statement ranks every order's touches with
ROW_NUMBER(), so an order is counted once however many journeys wrote to the customer.

Per journey (the campaign is the journey's name; cost is the marketing spend recorded for it):
ROI = (attributed revenue − cost) / cost. Where the journey has a holdout (a `split` step with
`holdout`), the randomised customers are compared as well, by the revenue of completed orders
within the goal window after entry, whether or not a message was credited:
incremental revenue = (revenue per treated customer − revenue per held-out customer) × treated
customers, incremental ROI = (incremental revenue − cost) / cost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Float, Interval, and_, case, cast, func, literal, select, union_all

from clm.commerce.tables import marketing_spend, orders
from clm.events.tables import events
from clm.journeys.store import version_definition
from clm.journeys.tables import enrolments, journey_versions, journeys, outbox
from clm.store.sql import json_text

CLICKS = ("email_click", "sms_click", "webhook_click")


@dataclass(frozen=True)
class CampaignRoi:
    campaign: str
    window_days: float  # attribution window (the journey's goal within_days)
    customers: int  # entries: the treated arm's where there is a holdout, else all
    holdout: int
    cost: float
    attributed_orders: int  # orders whose last touch in the window was this journey's message
    revenue: float  # their total: attributed revenue, each order credited to one campaign only
    roi: float | None  # (revenue − cost) / cost
    treated_revenue_per_customer: float | None  # completed orders within the window after entry
    holdout_revenue_per_customer: float | None
    incremental_revenue: float | None  # (treated − held-out revenue per customer) × customers
    incremental_roi: float | None  # (incremental revenue − cost) / cost


def _days_between(dialect: str, later: Any, earlier: Any) -> Any:
    """SQL: `later − earlier` in days (fractional)."""
    if dialect == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return func.date_part("epoch", later - earlier) / 86400.0


def within(dialect: str, moment: Any, start: Any, days: float) -> Any:
    """SQL: `moment` is at most `days` after `start` (SQLite has no interval arithmetic)."""
    if dialect == "sqlite":
        return func.julianday(moment) <= func.julianday(start) + days
    return moment <= start + literal(timedelta(days=days), Interval())


def _windows(conn: Connection) -> dict[int, tuple[str, float]]:
    """journey id → (name, attribution window in days) from each journey's newest version."""
    newest = (
        select(journey_versions.c.journey_id, func.max(journey_versions.c.id).label("vid"))
        .group_by(journey_versions.c.journey_id)
        .subquery()
    )
    rows = conn.execute(
        select(journeys.c.id, journeys.c.name, newest.c.vid).join(
            newest, newest.c.journey_id == journeys.c.id
        )
    ).all()
    return {r.id: (r.name, version_definition(conn, r.vid).goal_days) for r in rows}


def attributed(conn: Connection, windows: dict[int, float]) -> dict[int, tuple[int, float]]:
    """journey id → (orders, revenue) credited to it by the last-touch rule (module docstring)."""
    if not windows:
        return {}
    dialect = conn.dialect.name
    sent = select(
        outbox.c.id.label("message_id"),
        outbox.c.journey_id,
        outbox.c.customer_id,
        outbox.c.sent_at.label("at"),
    ).where(outbox.c.status == "sent", outbox.c.journey_id.is_not(None), outbox.c.sent_at.is_not(None))
    clicked = (
        select(
            outbox.c.id.label("message_id"),
            outbox.c.journey_id,
            events.c.customer_id,
            events.c.occurred_at.label("at"),
        )
        .select_from(events.join(outbox, outbox.c.key == json_text(events.c.properties, "message")))
        .where(events.c.type.in_(CLICKS), outbox.c.journey_id.is_not(None))
    )
    touches = union_all(sent, clicked).subquery("touches")
    window = case(
        {jid: literal(float(days)) for jid, days in windows.items()}, value=touches.c.journey_id, else_=-1.0
    )
    gap = _days_between(dialect, orders.c.ordered_at, touches.c.at)
    ranked = (
        select(
            orders.c.id.label("order_id"),
            cast(orders.c.total, Float).label("total"),
            touches.c.journey_id,
            func.row_number()
            .over(partition_by=orders.c.id, order_by=(touches.c.at.desc(), touches.c.message_id.desc()))
            .label("rank"),
        )
        .select_from(orders.join(touches, touches.c.customer_id == orders.c.customer_id))
        .where(orders.c.status == "completed", gap >= 0, gap <= window)
        .subquery("ranked")
    )
    rows = conn.execute(
        select(ranked.c.journey_id, func.count(), func.coalesce(func.sum(ranked.c.total), 0))
        .where(ranked.c.rank == 1)
        .group_by(ranked.c.journey_id)
    ).all()
    return {int(jid): (int(n), float(total)) for jid, n, total in rows}


def _arms(conn: Connection, journey_id: int, days: float) -> tuple[int, int, float, float]:
    """(treated entries, held-out entries, their revenues within `days` after entry); the treated
    are the randomised entries outside the holdout when there is one, else every entry."""
    window = within(conn.dialect.name, orders.c.ordered_at, enrolments.c.entered_at, days)
    revenue = select(func.coalesce(func.sum(orders.c.total), 0)).where(
        orders.c.customer_id == enrolments.c.customer_id,
        orders.c.status == "completed",
        orders.c.ordered_at >= enrolments.c.entered_at,
        window,
    )
    held = enrolments.c.variant == "holdout"
    per = (
        select(
            held.label("held"),
            enrolments.c.variant.is_not(None).label("randomised"),
            revenue.scalar_subquery().label("revenue"),
        )
        .where(enrolments.c.journey_id == journey_id)
        .subquery()
    )
    treated = and_(per.c.randomised, ~per.c.held)
    stats = conn.execute(
        select(
            func.count().filter(per.c.held),
            func.count().filter(treated),
            func.count(),
            func.coalesce(func.sum(per.c.revenue).filter(per.c.held), 0),
            func.coalesce(func.sum(per.c.revenue).filter(treated), 0),
        )
    ).one()
    holdout, randomised_treated, everyone = int(stats[0]), int(stats[1]), int(stats[2])
    if not holdout:
        return everyone, 0, 0.0, 0.0
    return randomised_treated, holdout, float(stats[4]), float(stats[3])


def campaign_roi(engine: Engine) -> list[CampaignRoi]:
    """Per journey: cost, orders and revenue credited to it (each order once, by last touch), ROI;
    with a holdout, the incremental revenue and ROI against it."""
    out = []
    with engine.connect() as conn:
        named = _windows(conn)
        credit = attributed(conn, {jid: days for jid, (_, days) in named.items()})
        spend = dict(
            conn.execute(
                select(marketing_spend.c.campaign, func.sum(marketing_spend.c.amount))
                .where(marketing_spend.c.campaign.in_([name for name, _ in named.values()]))
                .group_by(marketing_spend.c.campaign)
            ).all()
        )
        for jid, (name, days) in sorted(named.items(), key=lambda kv: kv[1][0]):
            treated, holdout, treated_revenue, held_revenue = _arms(conn, jid, days)
            cost = float(spend.get(name) or 0)
            n_orders, revenue = credit.get(jid, (0, 0.0))
            per_treated = treated_revenue / treated if holdout and treated else None
            per_held = held_revenue / holdout if holdout else None
            incremental = (
                (per_treated - per_held) * treated
                if per_treated is not None and per_held is not None
                else None
            )
            out.append(
                CampaignRoi(
                    name,
                    days,
                    treated,
                    holdout,
                    cost,
                    n_orders,
                    round(revenue, 2),
                    (revenue - cost) / cost if cost else None,
                    None if per_treated is None else round(per_treated, 2),
                    None if per_held is None else round(per_held, 2),
                    None if incremental is None else round(incremental, 2),
                    (incremental - cost) / cost if cost and incremental is not None else None,
                )
            )
    return out
