"""Build the demo business in a store, through the same domain services as real data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, insert, select

from clm.commerce.schemas import OrderIn, OrderItemIn, ProductIn, SpendIn
from clm.commerce.service import ingest_orders, record_spend, upsert_products
from clm.commerce.tables import marketing_spend, orders
from clm.core.errors import Conflict
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customers
from clm.customers.tables import customers
from clm.demo.catalog import PRODUCT_NAMES_ZH, PRODUCTS
from clm.demo.simulate import Chunk, DemoConfig, monthly_spend, simulate_chunk
from clm.demo.tables import demo_truth
from clm.events.schemas import ValidEvent
from clm.events.service import store_events
from clm.events.tables import events
from clm.store.sql import year_month

CHUNK_CUSTOMERS = 5_000


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    customers: int
    buyers: int
    revenue: float
    spend: float

    @property
    def cac(self) -> float | None:
        return self.spend / self.customers if self.customers else None


@dataclass(frozen=True)
class DemoSummary:
    customers: int
    orders: int
    events: int
    revenue: float
    first_event: datetime | None
    last_event: datetime | None
    alive_share: float
    by_channel: list[ChannelRow] = field(default_factory=list)
    new_per_month: list[tuple[str, int]] = field(default_factory=list)
    events_by_type: list[tuple[str, int]] = field(default_factory=list)


def build_demo(
    engine: Engine, config: DemoConfig, progress: Callable[[int], None] | None = None
) -> DemoSummary:
    """Simulate `config.customers` customers and store them; refuses a store that has customers."""
    with engine.connect() as conn:
        existing = conn.execute(select(func.count()).select_from(customers)).scalar_one()
    if existing:
        raise Conflict(
            f"the database already holds {existing:,} customers; use `clm demo --reset` to replace them "
            "or `--db` to build the demo elsewhere"
        )
    with engine.begin() as conn:
        upsert_products(
            conn,
            [
                ProductIn(
                    sku=s, name=PRODUCT_NAMES_ZH[s], category=c, price=p, cost=k, attributes={"name_en": n}
                )
                for s, n, c, p, k in PRODUCTS
            ],
        )
    acquisitions: dict[tuple[str, str], int] = {}
    done = 0
    for index, first in enumerate(range(0, config.customers, CHUNK_CUSTOMERS)):
        count = min(CHUNK_CUSTOMERS, config.customers - first)
        chunk = simulate_chunk(config, index, first, count)
        _store_chunk(engine, config, index, chunk)
        for key, value in chunk.acquisitions.items():
            acquisitions[key] = acquisitions.get(key, 0) + value
        done += count
        if progress:
            progress(done)
    spend = monthly_spend(acquisitions, np.random.default_rng([config.seed, 10**6]))
    with engine.begin() as conn:
        record_spend(conn, [SpendIn(**row) for row in spend])
    # planner statistics for the tables just filled: without them PostgreSQL plans the
    # set-based feature queries for empty tables (nested loops over millions of rows); VACUUM
    # marks the new pages all-visible, so the per-customer counts can read the indexes alone
    # (autovacuum would do both in time, if the server runs it)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return summarize(engine)


def _store_chunk(engine: Engine, config: DemoConfig, index: int, chunk: Chunk) -> None:
    start = config.start

    def at(days: float) -> datetime:
        return start + timedelta(days=days)

    with engine.begin() as conn:
        resolution = upsert_customers(
            conn, [CustomerIn.model_validate(c) for c in chunk.customers], actor="demo"
        )
        ids = resolution.customer_ids
        conn.execute(
            insert(demo_truth),
            [
                {
                    **{k: v for k, v in t.items() if k not in ("customer_index", "duplicate_of")},
                    "customer_id": ids[t["customer_index"]],
                    "duplicate_of": None if t["duplicate_of"] is None else ids[t["duplicate_of"]],
                }
                for t in chunk.truth
            ],
        )
        order_batch = [
            OrderIn.model_construct(
                order_id=o["order_id"],
                external_id=chunk.customers[o["customer_index"]]["external_id"],
                email=None,
                phone=None,
                anonymous_id=None,
                ordered_at=at(o["ordered_at"]),
                status=o["status"],
                refunded_at=at(o["refunded_at"]) if o["refunded_at"] is not None else None,
                currency="CNY",
                total=o["total"],
                channel=o["channel"],
                campaign=None,
                items=[
                    OrderItemIn.model_construct(sku=s, quantity=1, unit_price=price)
                    for s, price in o["items"]
                ],
            )
            for o in chunk.orders
        ]
        ingest_orders(conn, order_batch, actor="demo")
        horizon = float(config.days)
        batch: list[ValidEvent] = []
        owners: list[int] = []
        for k, (i, kind, channel, t, props) in enumerate(chunk.events):
            if t >= horizon:
                continue  # would happen after the end of the simulation
            batch.append(ValidEvent(f"demo:{config.seed}:{index}:{k}", kind, channel, at(t), {}, props))
            owners.append(ids[i])
        store_events(conn, batch, owners)


def summarize(engine: Engine) -> DemoSummary:
    """What is in the store now: the figures `clm demo` prints."""
    live = customers.c.merged_into.is_(None)
    completed = orders.c.status == "completed"
    with engine.connect() as conn:
        n_customers = conn.execute(select(func.count()).where(live)).scalar_one()
        n_orders, revenue = conn.execute(
            select(func.count(), func.coalesce(func.sum(orders.c.total).filter(completed), 0))
        ).one()
        n_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
        truth_total, truth_alive = conn.execute(
            select(func.count(), func.count().filter(demo_truth.c.alive_at_end)).where(
                demo_truth.c.segment == "buyer"
            )
        ).one()
        buyers = (
            select(orders.c.customer_id, func.sum(orders.c.total).filter(completed).label("revenue"))
            .group_by(orders.c.customer_id)
            .subquery()
        )
        channel_rows = conn.execute(
            select(
                customers.c.acquisition_channel,
                func.count(),
                func.count(buyers.c.customer_id),
                func.coalesce(func.sum(buyers.c.revenue), 0),
            )
            .select_from(customers.outerjoin(buyers, buyers.c.customer_id == customers.c.id))
            .where(live)
            .group_by(customers.c.acquisition_channel)
            .order_by(customers.c.acquisition_channel)
        ).all()
        spend_by_channel = dict(
            conn.execute(
                select(marketing_spend.c.channel, func.sum(marketing_spend.c.amount)).group_by(
                    marketing_spend.c.channel
                )
            ).all()
        )
        month = year_month(customers.c.first_seen_at)
        new_per_month = conn.execute(
            select(month, func.count()).where(live).group_by(month).order_by(month)
        ).all()
        by_type = conn.execute(
            select(events.c.type, func.count()).group_by(events.c.type).order_by(func.count().desc())
        ).all()
        # First and last event: per type, so each is one seek in the (type, occurred_at) index
        # instead of a scan of the whole events table.
        bounds = [
            conn.execute(
                select(func.min(events.c.occurred_at), func.max(events.c.occurred_at)).where(
                    events.c.type == kind
                )
            ).one()
            for kind, _ in by_type
        ]
        first_event = min((b[0] for b in bounds), default=None)
        last_event = max((b[1] for b in bounds), default=None)
    rows: list[Any] = list(channel_rows)
    return DemoSummary(
        customers=int(n_customers),
        orders=int(n_orders),
        events=int(n_events),
        revenue=float(revenue),
        first_event=first_event,
        last_event=last_event,
        alive_share=(truth_alive / truth_total) if truth_total else 0.0,
        by_channel=[
            ChannelRow(ch or "unknown", int(c), int(b), float(r), float(spend_by_channel.get(ch, 0.0)))
            for ch, c, b, r in rows
        ],
        new_per_month=[(m, int(c)) for m, c in new_per_month if m],
        events_by_type=[(t, int(c)) for t, c in by_type],
    )
