"""Orders (with items, refunds and their events), products and marketing spend."""

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from clm.commerce.schemas import OrderIn, ProductIn, SpendIn
from clm.commerce.service import (
    get_order,
    get_product,
    ingest_order_batch,
    list_products,
    list_spend,
    order_summary,
    record_spend,
    upsert_products,
)
from clm.core.errors import NotFound
from clm.events.service import event_counts

T0 = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)


def order(**kw):
    base = {"order_id": "o1", "external_id": "u1", "ordered_at": T0}
    return OrderIn(**{**base, **kw})


def test_an_order_is_worth_its_items_unless_a_total_is_given(engine):
    ingest_order_batch(
        engine,
        [
            order(
                items=[
                    {"sku": "A", "quantity": 2, "unit_price": 10.5},
                    {"sku": "B", "unit_price": 4},
                ]
            )
        ],
        actor="t",
    )
    o = get_order(engine, "o1")
    assert o.total == 25.0 and o.status == "completed" and len(o.items) == 2
    ingest_order_batch(
        engine,
        [order(order_id="o2", total=99.9, items=[{"sku": "A", "unit_price": 120}])],
        actor="t",
    )
    assert get_order(engine, "o2").total == 99.9


def test_line_items_arriving_in_separate_batches_add_up(engine):
    ingest_order_batch(engine, [order(items=[{"sku": "A", "unit_price": 10}])], actor="t")
    ingest_order_batch(engine, [order(items=[{"sku": "B", "quantity": 3, "unit_price": 5}])], actor="t")
    o = get_order(engine, "o1")
    assert sorted(i.sku for i in o.items) == ["A", "B"] and o.total == 25.0


def test_refund_updates_the_order_and_records_one_refund_event(engine):
    result = ingest_order_batch(engine, [order(total=80)], actor="t")
    cid = result.customer_ids.pop()
    refunded_at = datetime(2025, 5, 3, tzinfo=UTC)
    for _ in range(2):  # re-sending the refund changes nothing
        r = ingest_order_batch(
            engine, [order(total=80, status="refunded", refunded_at=refunded_at)], actor="t"
        )
        assert (r.created, r.updated) == (0, 1)
    o = get_order(engine, "o1")
    assert o.status == "refunded" and o.refunded_at == refunded_at
    assert event_counts(engine, cid) == {"purchase": 1, "refund": 1}
    summary = order_summary(engine, cid)
    assert (summary.orders, summary.completed, summary.refunded, summary.revenue) == (1, 0, 1, 0.0)


def test_cancelled_orders_have_no_purchase_event_and_no_revenue(engine):
    result = ingest_order_batch(
        engine, [order(total=10, status="cancelled"), order(order_id="o2", total=30)], actor="t"
    )
    cid = result.customer_ids.pop()
    assert event_counts(engine, cid) == {"purchase": 1}
    assert order_summary(engine, cid).revenue == 30.0


def test_order_validation():
    with pytest.raises(ValidationError, match="customer identity"):
        OrderIn(order_id="x", ordered_at=T0, total=1)
    with pytest.raises(ValidationError, match="total or at least one item"):
        OrderIn(order_id="x", external_id="u", ordered_at=T0)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        OrderIn(order_id="x", external_id="u", ordered_at=T0, total=-1)
    with pytest.raises(ValidationError, match="currency"):
        OrderIn(order_id="x", external_id="u", ordered_at=T0, total=1, currency="yuan")


def test_products_upsert_by_sku(engine):
    with engine.begin() as conn:
        upsert_products(conn, [ProductIn(sku="A", name="Case", category="acc", price=99, cost=20)])
        upsert_products(
            conn, [ProductIn(sku="A", name="Phone case", category="acc", price=89, in_stock=False)]
        )
    p = get_product(engine, "A")
    assert (p.name, p.price, p.cost, p.in_stock) == ("Phone case", 89.0, None, False)
    assert [x.sku for x in list_products(engine, category="acc")] == ["A"]
    with pytest.raises(NotFound):
        get_product(engine, "nope")


def test_spend_is_replaced_per_channel_campaign_and_period(engine):
    may = {"period_start": date(2025, 5, 1), "period_end": date(2025, 5, 31)}
    with engine.begin() as conn:
        record_spend(
            conn,
            [
                SpendIn(channel="ads", amount=1000, **may),
                SpendIn(channel="ads", campaign="x", amount=5, **may),
            ],
        )
        record_spend(conn, [SpendIn(channel="ads", amount=1200, **may)])
    rows = list_spend(engine, channel="ads")
    assert [(s.campaign, s.amount) for s in rows] == [("", 1200.0), ("x", 5.0)]
    assert list_spend(engine, start=date(2025, 6, 1)) == []
    with pytest.raises(ValidationError, match="before period_start"):
        SpendIn(channel="ads", amount=1, period_start=date(2025, 5, 2), period_end=date(2025, 5, 1))


def test_order_and_spend_dates_must_be_plausible():
    with pytest.raises(ValidationError, match="before 1990"):
        OrderIn(order_id="x", external_id="u", ordered_at=datetime(1, 1, 1, tzinfo=UTC), total=1)
    with pytest.raises(ValidationError, match="between 1990 and 2100"):
        SpendIn(channel="ads", amount=1, period_start=date(1, 1, 1), period_end=date(1, 1, 2))
