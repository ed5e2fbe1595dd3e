"""Earning and taking back points: one accrual run brings the ledger up to date with the store
(points for completed orders and earning events, reversals for refunded or cancelled orders, then
expiry). Set-based and idempotent: every posting carries a unique reference."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, String, and_, cast, exists, func, literal, select

from clm.commerce.tables import order_items, orders, products
from clm.core.timeutil import as_utc, utcnow
from clm.customers.locks import lock_customers
from clm.events.tables import events
from clm.loyalty.ledger import (
    COLUMNS,
    SYSTEM,
    active_programme,
    balances,
    expiry_of,
    posting_of,
    sweep_expired,
    take_back,
)
from clm.loyalty.programme import EarnRule, Programme
from clm.loyalty.tables import points_postings as _p
from clm.store.bulk import insert_ignore_many
from clm.store.schema import to_db_timestamp


@dataclass
class Accrual:
    """What one accrual run posted."""

    earned: int = 0
    earn_postings: int = 0
    reversed: int = 0
    reversals: int = 0
    expired: int = 0
    customers: set[int] = field(default_factory=set)


def _order_candidates(conn: Connection, rule: EarnRule, customer_ids: Collection[int] | None) -> Any:
    o = orders
    amount: Any
    if rule.category:
        amount = (
            select(func.sum(order_items.c.quantity * order_items.c.unit_price))
            .select_from(order_items.join(products, products.c.sku == order_items.c.sku))
            .where(order_items.c.order_pk == o.c.id, products.c.category == rule.category)
            .scalar_subquery()
        )
    else:
        amount = o.c.total
    reference = literal("order:", String) + o.c.order_id + literal(f":{rule.name}", String)
    conditions = [o.c.status == "completed", ~exists().where(_p.c.reference == reference)]
    if rule.campaign:
        conditions.append(o.c.campaign == rule.campaign)
    if rule.channel:
        conditions.append(o.c.channel == rule.channel)
    if rule.starts:
        conditions.append(o.c.ordered_at >= datetime.combine(rule.starts, datetime.min.time()))
    if rule.ends:
        conditions.append(
            o.c.ordered_at < datetime.combine(rule.ends + timedelta(days=1), datetime.min.time())
        )
    if customer_ids is not None:
        conditions.append(o.c.customer_id.in_(sorted(set(customer_ids))))
    return conn.execute(
        select(o.c.customer_id, o.c.order_id, o.c.ordered_at, amount).where(and_(*conditions))
    )


def _event_candidates(conn: Connection, rule: EarnRule, customer_ids: Collection[int] | None) -> Any:
    e = events
    scope = [e.c.type == rule.event]
    if customer_ids is not None:
        scope.append(e.c.customer_id.in_(sorted(set(customer_ids))))
    if rule.once:
        reference = literal(f"event:{rule.name}:", String) + cast(e.c.customer_id, String)
        return conn.execute(
            select(e.c.customer_id, reference, func.min(e.c.occurred_at))
            .where(*scope, ~exists().where(_p.c.reference == reference))
            .group_by(e.c.customer_id)
        )
    reference = literal(f"event:{rule.name}:", String) + e.c.event_id
    return conn.execute(
        select(e.c.customer_id, reference, e.c.occurred_at).where(
            *scope, ~exists().where(_p.c.reference == reference)
        )
    )


def accrue(
    engine: Engine, customer_ids: Collection[int] | None = None, now: datetime | None = None
) -> Accrual:
    """Bring the ledger up to date with the store, for everybody or the given customers:
    earn for completed orders and earning events, take points back for refunded or cancelled
    orders, expire lots that fell due. Set-based and idempotent (each posting has a reference)."""
    now = as_utc(now or utcnow())
    out = Accrual()
    with engine.begin() as conn:
        programme = active_programme(conn)
        dialect = conn.dialect.name
        stamp = to_db_timestamp(now, dialect)
        for rule in programme.earn:
            rows: list[tuple[Any, ...]] = []
            if rule.on == "order":
                for cid, order_id, at, amount in _order_candidates(conn, rule, customer_ids):
                    points = int(float(amount or 0) * rule.points_per_unit)
                    if points > 0:
                        at = as_utc(at)
                        rows.append(
                            _row(
                                cid,
                                "earn",
                                points,
                                f"order {order_id}",
                                f"order:{order_id}:{rule.name}",
                                rule.name,
                                order_id,
                                at,
                                expiry_of(programme, at),
                                dialect,
                            )
                        )
            else:
                for cid, reference, at in _event_candidates(conn, rule, customer_ids):
                    at = as_utc(at)
                    rows.append(
                        _row(
                            cid,
                            "earn",
                            rule.points,
                            f"{rule.event} bonus",
                            reference,
                            rule.name,
                            None,
                            at,
                            expiry_of(programme, at),
                            dialect,
                        )
                    )
            added = insert_ignore_many(conn, _p, COLUMNS, rows, ("reference",))
            out.earn_postings += added
            out.earned += sum(r[2] for r in rows) if added == len(rows) else 0
            out.customers.update(r[0] for r in rows)
        taken, count, touched = _reverse_refunds(conn, programme, now, stamp, customer_ids)
        out.reversed, out.reversals = taken, count
        out.customers.update(touched)
        out.expired = sweep_expired(conn, now, customer_ids)
    return out


def _row(
    cid: int, kind: str, points: int, reason: str, reference: str, rule: str | None, order_id: str | None,
    at: datetime, expires: datetime | None, dialect: str, reverses: int | None = None, actor: str = SYSTEM,
) -> tuple[Any, ...]:  # fmt: skip
    return (
        cid, kind, points, reason, reference, rule, order_id, reverses, to_db_timestamp(at, dialect),
        None if expires is None else to_db_timestamp(expires, dialect), actor,
    )  # fmt: skip


def _reverse_refunds(
    conn: Connection, programme: Programme, now: datetime, stamp: Any, customer_ids: Collection[int] | None
) -> tuple[int, int, set[int]]:
    """One reversal per earn posting whose order was refunded or cancelled since."""
    reference = literal("reverse:", String) + cast(_p.c.id, String)
    r = _p.alias("rev")
    conditions = [
        _p.c.kind == "earn",
        orders.c.status.in_(("refunded", "cancelled")),
        ~exists().where(r.c.reference == reference),
    ]
    if customer_ids is not None:
        conditions.append(_p.c.customer_id.in_(sorted(set(customer_ids))))
    pending = conn.execute(
        select(_p)
        .select_from(_p.join(orders, orders.c.order_id == _p.c.order_id))
        .where(*conditions)
        .order_by(_p.c.customer_id, _p.c.id)
    ).all()
    if not pending:
        return 0, 0, set()
    touched = {p.customer_id for p in pending}
    lock_customers(conn, touched)
    sweep_expired(conn, now, touched)
    left = balances(conn, touched)
    rows = []
    taken_total = 0
    for p in map(posting_of, pending):
        take = take_back(conn, p, now, left.get(p.customer_id, 0))
        left[p.customer_id] = left.get(p.customer_id, 0) - take
        taken_total += take
        why = f"order {p.order_id} refunded"
        if take < p.points:
            why += f": {take} of its {p.points} points were left to take back"
        rows.append(
            _row(
                p.customer_id,
                "reverse",
                -take,
                why,
                f"reverse:{p.id}",
                p.rule,
                p.order_id,
                now,
                None,
                conn.dialect.name,
                reverses=p.id,
            )
        )
    insert_ignore_many(conn, _p, COLUMNS, rows, ("reference",))
    return taken_total, len(rows), touched
