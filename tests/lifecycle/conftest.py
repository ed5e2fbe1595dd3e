"""A small hand-made shop for lifecycle tests: customers, orders and events written through the
real ingestion services, so every figure in the tests can be worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from clm.commerce.schemas import OrderIn, ProductIn, SpendIn
from clm.commerce.service import ingest_order_batch, record_spend, upsert_products
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.events.schemas import EventIn
from clm.events.service import ingest


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Shop:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.ids: dict[str, int] = {}

    def customer(self, ext: str, first_seen: str, channel: str = "web", **fields: Any) -> int:
        item = CustomerIn(
            external_id=ext, first_seen_at=day(first_seen), acquisition_channel=channel, **fields
        )
        customer, _ = upsert_customer(self.engine, item, actor="test")
        self.ids[ext] = customer.id
        return customer.id

    def order(
        self,
        ext: str,
        when: str,
        total: float,
        *,
        status: str = "completed",
        sku: str = "A",
        refunded_at: str | None = None,
        order_id: str | None = None,
    ) -> None:
        oid = order_id or f"{ext}-{when}-{total}"
        ingest_order_batch(
            self.engine,
            [
                OrderIn(
                    order_id=oid,
                    external_id=ext,
                    ordered_at=day(when),
                    status=status,
                    refunded_at=day(refunded_at) if refunded_at else None,
                    total=total,
                    items=[{"sku": sku, "unit_price": total}],
                )
            ],
            actor="test",
        )

    def event(self, ext: str, kind: str, when: str, channel: str = "web", **props: Any) -> None:
        item = EventIn(type=kind, timestamp=day(when), channel=channel, external_id=ext, properties=props)
        ingest(self.engine, [item.to_valid(datetime.now(UTC) + timedelta(days=1))], actor="test")

    def products(self, *rows: tuple[str, str, float, float]) -> None:
        with self.engine.begin() as conn:
            upsert_products(
                conn, [ProductIn(sku=s, name=s, category=c, price=p, cost=k) for s, c, p, k in rows]
            )

    def spend(self, channel: str, start: date, end: date, amount: float) -> None:
        with self.engine.begin() as conn:
            record_spend(conn, [SpendIn(channel=channel, period_start=start, period_end=end, amount=amount)])


@pytest.fixture
def shop(engine: Any) -> Shop:
    return Shop(engine)
