"""The commerce domain's public door: products, orders (with purchase/refund events), spend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from clm.commerce.order_days import refresh_for_products, refresh_order_days
from clm.commerce.schemas import (
    Order,
    OrderIn,
    OrderItem,
    OrderSummary,
    Product,
    ProductIn,
    Spend,
    SpendIn,
)
from clm.commerce.tables import marketing_spend, order_items, orders, products
from clm.core.errors import NotFound
from clm.core.timeutil import utcnow
from clm.customers.identities import identities_from
from clm.customers.locks import lock_customers
from clm.customers.schemas import ProfileSeed
from clm.customers.service import note_first_seen, resolve_customers
from clm.events.schemas import ValidEvent
from clm.events.service import store_events
from clm.store.bulk import upsert_many
from clm.store.engine import in_retried_transaction

_CHUNK = 500


# ---------------------------------------------------------------- products


def upsert_products(conn: Connection, items: Sequence[ProductIn]) -> int:
    """Create or update products by SKU (the last row wins for a SKU given twice)."""
    now = utcnow()
    rows = {p.sku: {**p.model_dump(), "created_at": now, "updated_at": now} for p in items}
    skus = list(rows)
    known: dict[str, Any] = {}
    for start in range(0, len(skus), _CHUNK):
        found = conn.execute(
            select(products.c.sku, products.c.cost).where(products.c.sku.in_(skus[start : start + _CHUNK]))
        )
        known.update({r.sku: r.cost for r in found})
    columns = [
        "name",
        "category",
        "price",
        "cost",
        "currency",
        "active",
        "in_stock",
        "attributes",
        "updated_at",
    ]
    upsert_many(conn, products, list(rows.values()), ["sku"], columns)
    # orders may name a product before it exists: a new product's cost counts too
    recosted = [
        sku for sku, row in rows.items() if sku not in known or _money(known[sku]) != _money(row["cost"])
    ]
    refresh_for_products(conn, recosted)
    return len(rows)


def _money(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _product(r: Any) -> Product:
    return Product(
        r.sku,
        r.name,
        r.category,
        r.price,
        r.cost,
        r.currency,
        r.active,
        r.in_stock,
        r.attributes or {},
    )


def get_product(engine: Engine, sku: str) -> Product:
    with engine.connect() as conn:
        row = conn.execute(select(products).where(products.c.sku == sku)).first()
    if row is None:
        raise NotFound(f"no product with SKU {sku!r}")
    return _product(row)


def list_products(
    engine: Engine, category: str | None = None, limit: int = 100, offset: int = 0
) -> list[Product]:
    query = select(products).order_by(products.c.sku).limit(limit).offset(offset)
    if category:
        query = query.where(products.c.category == category)
    with engine.connect() as conn:
        return [_product(r) for r in conn.execute(query)]


# ---------------------------------------------------------------- orders


@dataclass
class OrderIngestResult:
    created: int = 0
    updated: int = 0
    customer_ids: set[int] = field(default_factory=set)
    created_customers: int = 0


def ingest_orders(conn: Connection, batch: Sequence[OrderIn], *, actor: str = "ingest") -> OrderIngestResult:
    """Create or update orders by order_id inside the caller's transaction.

    A new (not cancelled) order also records a `purchase` event, and an order that becomes
    refunded a `refund` event, each with a fixed event id so repeats are stored once.
    """
    if not batch:
        return OrderIngestResult()
    merged: dict[str, OrderIn] = {}
    for order in batch:  # a CSV gives one row per line item: gather an order's items
        prior = merged.get(order.order_id)
        if prior is None:
            merged[order.order_id] = order
        else:
            items = {i.sku: i for i in prior.items} | {i.sku: i for i in order.items}
            merged[order.order_id] = order.model_copy(
                update={
                    "items": list(items.values()),
                    "total": order.total if order.total is not None else prior.total,
                }
            )
    unique = list(merged.values())
    identity_rows = [identities_from(o.identity_fields()) for o in unique]
    resolution = resolve_customers(
        conn,
        identity_rows,
        lambda i: ProfileSeed(unique[i].ordered_at, unique[i].channel, unique[i].campaign),
        actor=actor,
    )
    customer_of = dict(zip((o.order_id for o in unique), resolution.customer_ids, strict=True))

    existing: dict[str, tuple[int, Any]] = {}
    previous_owners: set[int] = set()  # an update may give an order to another profile
    ids = list(merged)
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(orders.c.order_id, orders.c.id, orders.c.refunded_at, orders.c.customer_id).where(
                orders.c.order_id.in_(ids[start : start + _CHUNK])
            )
        )
        for r in rows:
            existing[r.order_id] = (r.id, r.refunded_at)
            previous_owners.add(r.customer_id)
    # their per-day summaries and first-seen times change below: the profiles locked at once, in
    # id order (two batches of orders of one customer would otherwise both write their day)
    lock_customers(conn, {*resolution.customer_ids, *previous_owners})

    now = utcnow()

    def header(o: OrderIn) -> dict[str, Any]:
        refunded_at = None
        if o.status == "refunded":  # keep the first refund time when a refund is re-sent
            refunded_at = (
                o.refunded_at or (existing[o.order_id][1] if o.order_id in existing else None) or now
            )
        return {
            "customer_id": customer_of[o.order_id],
            "status": o.status,
            "ordered_at": o.ordered_at,
            "refunded_at": refunded_at,
            "currency": o.currency,
            "total": o.total if o.total is not None else sum(i.quantity * i.unit_price for i in o.items),
            "channel": o.channel,
            "campaign": o.campaign,
            "updated_at": now,
        }

    new = [o for o in unique if o.order_id not in existing]
    pk: dict[str, int] = {oid: ident for oid, (ident, _) in existing.items()}
    if new:
        new_ids = (
            conn.execute(
                insert(orders).returning(orders.c.id, sort_by_parameter_order=True),
                [{"order_id": o.order_id, "created_at": now, **header(o)} for o in new],
            )
            .scalars()
            .all()
        )
        pk.update(zip((o.order_id for o in new), new_ids, strict=True))
    changed = [o for o in unique if o.order_id in existing]
    if changed:
        conn.execute(
            update(orders)
            .where(orders.c.id == bindparam("pk"))
            .values({k: bindparam(f"v_{k}") for k in header(changed[0])}),
            [{"pk": pk[o.order_id], **{f"v_{k}": v for k, v in header(o).items()}} for o in changed],
        )
    item_rows = [
        {
            "order_pk": pk[o.order_id],
            "sku": i.sku,
            "quantity": i.quantity,
            "unit_price": i.unit_price,
        }
        for o in unique
        for i in o.items
    ]
    upsert_many(conn, order_items, item_rows, ["order_pk", "sku"], ["quantity", "unit_price"])
    # Orders given without a total are worth the sum of all their items stored so far
    # (an order's lines may arrive in several chunks of a file).
    untotalled = [pk[o.order_id] for o in unique if o.total is None and o.order_id in existing]
    if untotalled:
        item_sum = (
            select(func.coalesce(func.sum(order_items.c.quantity * order_items.c.unit_price), 0))
            .where(order_items.c.order_pk == orders.c.id)
            .scalar_subquery()
        )
        conn.execute(update(orders).where(orders.c.id.in_(untotalled)).values(total=item_sum))

    refresh_order_days(conn, previous_owners | set(customer_of.values()))
    _record_order_events(conn, unique, customer_of, existing, now)
    note_first_seen(conn, {customer_of[o.order_id]: o.ordered_at for o in unique})
    return OrderIngestResult(
        created=len(new),
        updated=len(changed),
        customer_ids=set(customer_of.values()),
        created_customers=len(resolution.created),
    )


def _record_order_events(
    conn: Connection,
    batch: Sequence[OrderIn],
    customer_of: dict[str, int],
    existing: dict[str, tuple[int, Any]],
    now: Any,
) -> None:
    events: list[ValidEvent] = []
    for o in batch:
        props = {
            "order_id": o.order_id,
            "total": o.total if o.total is not None else sum(i.quantity * i.unit_price for i in o.items),
            "currency": o.currency,
            "skus": [i.sku for i in o.items],
        }
        if o.campaign:
            props["campaign"] = o.campaign
        channel = o.channel or "web"
        if o.status != "cancelled":
            events.append(
                ValidEvent(f"order:{o.order_id}:purchase", "purchase", channel, o.ordered_at, {}, props)
            )
        if o.status == "refunded":
            events.append(
                ValidEvent(f"order:{o.order_id}:refund", "refund", channel, o.refunded_at or now, {}, props)
            )
    if events:
        store_events(conn, events, [customer_of[e.properties["order_id"]] for e in events])


def ingest_order_batch(engine: Engine, batch: Sequence[OrderIn], *, actor: str) -> OrderIngestResult:
    return in_retried_transaction(engine, lambda conn: ingest_orders(conn, batch, actor=actor))


def _orders_with_items(conn: Connection, rows: list[Any]) -> list[Order]:
    pks = [r.id for r in rows]
    items: dict[int, list[OrderItem]] = {}
    for start in range(0, len(pks), _CHUNK):
        for it in conn.execute(
            select(order_items)
            .where(order_items.c.order_pk.in_(pks[start : start + _CHUNK]))
            .order_by(order_items.c.id)
        ):
            items.setdefault(it.order_pk, []).append(OrderItem(it.sku, it.quantity, it.unit_price))
    return [
        Order(
            r.order_id,
            r.customer_id,
            r.status,
            r.ordered_at,
            r.refunded_at,
            r.currency,
            r.total,
            r.channel,
            r.campaign,
            items.get(r.id, []),
        )
        for r in rows
    ]


def get_order(engine: Engine, order_id: str) -> Order:
    with engine.connect() as conn:
        row = conn.execute(select(orders).where(orders.c.order_id == order_id)).first()
        if row is None:
            raise NotFound(f"no order with id {order_id!r}")
        return _orders_with_items(conn, [row])[0]


def customer_orders(engine: Engine, customer_id: int, limit: int = 50, offset: int = 0) -> list[Order]:
    query = (
        select(orders)
        .where(orders.c.customer_id == customer_id)
        .order_by(orders.c.ordered_at.desc(), orders.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        return _orders_with_items(conn, list(conn.execute(query)))


def order_summary(engine: Engine, customer_id: int) -> OrderSummary:
    """Counts and revenue of a customer's orders; revenue counts completed orders only."""
    completed = orders.c.status == "completed"
    query = select(
        func.count(),
        func.count().filter(completed),
        func.count().filter(orders.c.status == "refunded"),
        func.coalesce(func.sum(orders.c.total).filter(completed), 0),
        func.min(orders.c.ordered_at),
        func.max(orders.c.ordered_at),
    ).where(orders.c.customer_id == customer_id)
    with engine.connect() as conn:
        n, done, refunded, revenue, first, last = conn.execute(query).one()
    return OrderSummary(int(n), int(done), int(refunded), float(revenue), first, last)


# ---------------------------------------------------------------- marketing spend


def record_spend(conn: Connection, items: Sequence[SpendIn]) -> int:
    """Create or replace spend rows (one per channel, campaign and period)."""
    rows = {(s.channel, s.campaign, s.period_start, s.period_end): s.model_dump() for s in items}
    upsert_many(
        conn,
        marketing_spend,
        list(rows.values()),
        ["channel", "campaign", "period_start", "period_end"],
        ["amount", "currency"],
    )
    return len(rows)


def list_spend(
    engine: Engine, channel: str | None = None, start: date | None = None, end: date | None = None
) -> list[Spend]:
    query = select(marketing_spend).order_by(
        marketing_spend.c.period_start, marketing_spend.c.channel, marketing_spend.c.campaign
    )
    if channel:
        query = query.where(marketing_spend.c.channel == channel)
    if start:
        query = query.where(marketing_spend.c.period_end >= start)
    if end:
        query = query.where(marketing_spend.c.period_start <= end)
    with engine.connect() as conn:
        return [
            Spend(r.channel, r.campaign, r.period_start, r.period_end, r.amount, r.currency)
            for r in conn.execute(query)
        ]
