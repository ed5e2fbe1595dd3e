"""Tier evaluation: every customer's spend (or points) over the rolling window against the tier
thresholds, upgrades and downgrades recorded and emitted as `tier_changed` events. Set-based:
one statement computes every customer's tier, a few more write the differences."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    union,
)
from sqlalchemy.sql import Subquery

from clm.commerce.tables import orders
from clm.core.timeutil import as_utc, utcnow
from clm.customers.tables import customers
from clm.events.schemas import SYSTEM_CHANNEL, SYSTEM_ID_PREFIX
from clm.events.tables import events
from clm.loyalty.ledger import active_programme
from clm.loyalty.programme import Programme
from clm.loyalty.tables import customer_tiers, points_postings, tier_changes
from clm.store.sql import json_object

TIER_CHANGED = "tier_changed"
_LOCK_KEY = 0x54696572  # "Tier": one PostgreSQL advisory lock serialises evaluations


@dataclass
class TierRun:
    as_of: datetime
    upgrades: int = 0
    downgrades: int = 0
    moves: dict[tuple[str, str], int] = field(default_factory=dict)


def basis_values(
    programme: Programme, as_of: datetime, customer_ids: Collection[int] | None = None
) -> Subquery:
    """Per customer, the value tiers are judged on: completed order totals (spend) or points
    earned (less refunds) in the window (as_of - window_days, as_of]."""
    start = as_of - timedelta(days=programme.window_days)
    if programme.basis == "spend":
        o = orders
        query = select(o.c.customer_id, func.sum(o.c.total).label("value")).where(
            o.c.status == "completed", o.c.ordered_at > start, o.c.ordered_at <= as_of
        )
        who = o.c.customer_id
    else:
        p = points_postings
        query = select(p.c.customer_id, func.sum(p.c.points).label("value")).where(
            or_(p.c.kind == "earn", and_(p.c.kind == "reverse", p.c.points < 0)),
            p.c.posted_at > start,
            p.c.posted_at <= as_of,
        )
        who = p.c.customer_id
    if customer_ids is not None:
        query = query.where(who.in_(sorted(set(customer_ids))))
    return query.group_by(who).subquery("basis")


def evaluate_tiers(
    engine: Engine, as_of: datetime | None = None, customer_ids: Collection[int] | None = None
) -> TierRun:
    """Move every customer (or the given ones) to the tier their basis value earns now."""
    as_of = as_utc(as_of or utcnow())
    run = TierRun(as_of)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        programme = active_programme(conn)
        changed = _write_changes(conn, programme, as_of, customer_ids, str(uuid.uuid4()))
        for from_tier, to_tier, direction, count in changed:
            run.moves[(from_tier, to_tier)] = count
            if direction == "up":
                run.upgrades += count
            else:
                run.downgrades += count
    return run


def _write_changes(
    conn: Connection,
    programme: Programme,
    as_of: datetime,
    customer_ids: Collection[int] | None,
    run_id: str,
) -> list[tuple[str, str, str, int]]:
    basis = basis_values(programme, as_of, customer_ids)
    held = select(customer_tiers.c.customer_id)
    if customer_ids is not None:
        held = held.where(customer_tiers.c.customer_id.in_(sorted(set(customer_ids))))
    everyone = union(select(basis.c.customer_id), held).subquery("everyone")
    value = func.coalesce(basis.c.value, 0)
    lowest = programme.lowest.name
    new_tier = case(*[(value >= t.min, t.name) for t in reversed(programme.tiers[1:])], else_=lowest)
    old_tier = func.coalesce(customer_tiers.c.tier, lowest)
    rank = {t.name: i for i, t in enumerate(programme.tiers)}
    computed = (
        select(
            everyone.c.customer_id,
            value.label("value"),
            new_tier.label("new_tier"),
            old_tier.label("old_tier"),
        )
        .select_from(
            everyone.join(
                customers, and_(customers.c.id == everyone.c.customer_id, customers.c.merged_into.is_(None))
            )
            .outerjoin(basis, basis.c.customer_id == everyone.c.customer_id)
            .outerjoin(customer_tiers, customer_tiers.c.customer_id == everyone.c.customer_id)
        )
        .subquery("computed")
    )

    def rank_of(column: Any) -> Any:
        return case(rank, value=column, else_=-1)

    direction = case((rank_of(computed.c.new_tier) > rank_of(computed.c.old_tier), "up"), else_="down")
    conn.execute(
        insert(tier_changes).from_select(
            ["customer_id", "from_tier", "to_tier", "direction", "basis_value", "changed_at", "run_id"],
            select(
                computed.c.customer_id,
                computed.c.old_tier,
                computed.c.new_tier,
                direction,
                computed.c.value,
                literal(as_of, tier_changes.c.changed_at.type),
                literal(run_id),
            ).where(computed.c.new_tier != computed.c.old_tier),
        )
    )
    this_run = tier_changes.c.run_id == run_id
    conn.execute(
        delete(customer_tiers).where(
            customer_tiers.c.customer_id.in_(select(tier_changes.c.customer_id).where(this_run))
        )
    )
    conn.execute(
        insert(customer_tiers).from_select(
            ["customer_id", "tier", "since", "basis_value"],
            select(
                tier_changes.c.customer_id,
                tier_changes.c.to_tier,
                tier_changes.c.changed_at,
                tier_changes.c.basis_value,
            ).where(this_run),
        )
    )
    conn.execute(
        insert(events).from_select(
            ["event_id", "customer_id", "type", "channel", "occurred_at", "received_at", "properties"],
            select(
                literal(f"{SYSTEM_ID_PREFIX}tier:", String) + cast(tier_changes.c.id, String),
                tier_changes.c.customer_id,
                literal(TIER_CHANGED),
                literal(SYSTEM_CHANNEL),
                tier_changes.c.changed_at,
                tier_changes.c.changed_at,
                json_object(
                    "from",
                    tier_changes.c.from_tier,
                    "to",
                    tier_changes.c.to_tier,
                    "direction",
                    tier_changes.c.direction,
                ),
            ).where(this_run),
        )
    )
    return [
        (r.from_tier, r.to_tier, r.direction, int(r.n))
        for r in conn.execute(
            select(
                tier_changes.c.from_tier,
                tier_changes.c.to_tier,
                tier_changes.c.direction,
                func.count().label("n"),
            )
            .where(this_run)
            .group_by(tier_changes.c.from_tier, tier_changes.c.to_tier, tier_changes.c.direction)
        )
    ]


def tier_of(conn: Connection, customer_id: int) -> tuple[str, datetime | None, float | None]:
    row = conn.execute(select(customer_tiers).where(customer_tiers.c.customer_id == customer_id)).first()
    if row is None:
        return active_programme(conn).lowest.name, None, None
    return row.tier, row.since, row.basis_value


def tier_history(conn: Connection, customer_id: int) -> list[tuple[str, str, str, float, datetime]]:
    rows = conn.execute(
        select(tier_changes)
        .where(tier_changes.c.customer_id == customer_id)
        .order_by(tier_changes.c.changed_at.desc(), tier_changes.c.id.desc())
    )
    return [(r.from_tier, r.to_tier, r.direction, r.basis_value, r.changed_at) for r in rows]


def tier_counts(conn: Connection) -> dict[str, int]:
    """How many live customers hold each tier (those without a row hold the lowest)."""
    programme = active_programme(conn)
    held: dict[str, int] = dict(
        conn.execute(
            select(customer_tiers.c.tier, func.count())
            .select_from(customer_tiers.join(customers, customers.c.id == customer_tiers.c.customer_id))
            .where(customers.c.merged_into.is_(None), true())
            .group_by(customer_tiers.c.tier)
        ).all()
    )
    live = conn.execute(select(func.count()).where(customers.c.merged_into.is_(None))).scalar_one()
    counts = {t.name: int(held.get(t.name, 0)) for t in programme.tiers}
    counts[programme.lowest.name] = int(live) - sum(
        v for k, v in counts.items() if k != programme.lowest.name
    )
    return counts
