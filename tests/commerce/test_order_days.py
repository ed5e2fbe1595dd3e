"""The per-customer-per-day order summary stays equal to what the orders say, whatever changes."""

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import func, select

from clm.commerce.order_days import BEGINNING, NEVER, counted_at, day_of, rebuild_all_order_days
from clm.commerce.schemas import OrderIn, ProductIn
from clm.commerce.service import ingest_order_batch, upsert_products
from clm.commerce.tables import order_days
from clm.customers.merge import merge_customers
from clm.migrations import config, upgrade

# days are the store's (Asia/Shanghai, UTC+8): 23:59 and 00:00 there are 15:59 and 16:00 UTC
MAY1 = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)
MAY1_LATE = datetime(2025, 5, 1, 15, 59, tzinfo=UTC)
MAY2 = datetime(2025, 5, 1, 16, 0, tzinfo=UTC)
REFUND = datetime(2025, 5, 20, 12, 0, tzinfo=UTC)


def order(order_id, who="u1", at=MAY1, **kw):
    return OrderIn(order_id=order_id, external_id=who, ordered_at=at, **kw)


def summary(engine):
    """{(customer, day, counted_from, counted_until): (orders, revenue, cost)}."""
    od = order_days
    query = select(
        od.c.customer_id,
        od.c.day,
        od.c.counted_from,
        od.c.counted_until,
        od.c.orders,
        od.c.revenue,
        od.c.cost,
    )
    found = {}
    with engine.connect() as conn:
        for c, d, f, u, n, r, k in conn.execute(query):
            assert (c, d, f, u) not in found, "one row per customer, day and stretch"
            found[(c, d, f, u)] = (n, round(float(r), 2), round(float(k), 2))
    return found


def orders_counted_at(engine, moment):
    query = select(func.coalesce(func.sum(order_days.c.orders), 0)).where(counted_at(moment))
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def rebuilt(engine):
    with engine.begin() as conn:
        rebuild_all_order_days(conn)
    return summary(engine)


def test_day_numbers_count_the_stores_days_from_1970():
    assert day_of(datetime(1970, 1, 1, 15, 59, tzinfo=UTC)) == 0  # 23:59 in Shanghai
    assert day_of(datetime(1970, 1, 1, 16, 0, tzinfo=UTC)) == 1
    assert day_of(MAY1) == day_of(MAY1_LATE) == day_of(MAY2) - 1 == 20209


def test_a_day_holds_the_counted_orders_with_their_cost_by_hand(engine):
    with engine.begin() as conn:
        upsert_products(
            conn,
            [
                ProductIn(sku="A", name="a", price=10, cost=4),
                ProductIn(sku="B", name="b", price=5),  # no cost known: counts 0
            ],
        )
    items_a2_b1 = [{"sku": "A", "quantity": 2, "unit_price": 10}, {"sku": "B", "unit_price": 5}]
    result = ingest_order_batch(
        engine,
        [
            order("o1", items=items_a2_b1),  # 25, cost 8
            order("o2", at=MAY1_LATE, total=40, items=[{"sku": "A", "unit_price": 40}]),  # cost 4
            order("o3", at=MAY2, total=7, status="cancelled"),  # never counts
            order("o4", at=MAY2, total=30, status="refunded", refunded_at=REFUND),
        ],
        actor="t",
    )
    (cid,) = result.customer_ids
    may1, may2 = day_of(MAY1), day_of(MAY2)
    assert summary(engine) == {
        (cid, may1, BEGINNING, NEVER): (2, 65.0, 12.0),
        (cid, may2, BEGINNING, REFUND): (1, 30.0, 0.0),
    }
    # the refunded order counts until the moment of its refund, not at it
    assert orders_counted_at(engine, REFUND - timedelta(seconds=1)) == 3
    assert orders_counted_at(engine, REFUND) == 2


def test_refunds_moves_merges_and_new_costs_keep_it_exact(engine):
    first = ingest_order_batch(
        engine,
        [
            order("o1", who="u1", total=10, items=[{"sku": "S", "unit_price": 10}]),
            order("o2", who="u2", total=20, items=[{"sku": "S", "quantity": 2, "unit_price": 10}]),
        ],
        actor="t",
    )
    u1, u2 = sorted(first.customer_ids)
    day = day_of(MAY1)
    always, before_refund, after_refund = (BEGINNING, NEVER), (BEGINNING, REFUND), (REFUND, NEVER)
    assert summary(engine) == {(u1, day, *always): (1, 10.0, 0.0), (u2, day, *always): (1, 20.0, 0.0)}

    # the product (and its cost) arrives after the orders that name it
    with engine.begin() as conn:
        upsert_products(conn, [ProductIn(sku="S", name="s", price=10, cost=3)])
    assert summary(engine) == {(u1, day, *always): (1, 10.0, 3.0), (u2, day, *always): (1, 20.0, 6.0)}

    # a refund: the order counts until its refund time
    ingest_order_batch(
        engine, [order("o1", who="u1", total=10, status="refunded", refunded_at=REFUND)], actor="t"
    )
    assert summary(engine)[(u1, day, *before_refund)] == (1, 10.0, 3.0)

    # an order re-sent under another customer leaves the first one's summary; the day then has
    # two stretches: both orders until the refund, one after it
    ingest_order_batch(engine, [order("o2", who="u1", total=20)], actor="t")
    assert summary(engine) == {
        (u1, day, *before_refund): (2, 30.0, 9.0),
        (u1, day, *after_refund): (1, 20.0, 6.0),
    }
    assert summary(engine) == rebuilt(engine)

    # two profiles with orders on the same day merge: still one row per stretch
    u3 = ingest_order_batch(engine, [order("o3", who="u3", total=5)], actor="t").customer_ids.pop()
    merge_customers(engine, u1, [u3], reason="same person", actor="t")
    assert summary(engine) == {
        (u1, day, *before_refund): (3, 35.0, 9.0),
        (u1, day, *after_refund): (2, 25.0, 6.0),
    }
    assert summary(engine) == rebuilt(engine)

    # a cost change reaches every buyer of the product
    with engine.begin() as conn:
        upsert_products(conn, [ProductIn(sku="S", name="s", price=10, cost=1)])
    assert summary(engine) == {
        (u1, day, *before_refund): (3, 35.0, 3.0),
        (u1, day, *after_refund): (2, 25.0, 2.0),
    }


def test_upgrading_a_store_with_orders_fills_the_summary(engine):
    ingest_order_batch(
        engine,
        [
            order("o1", who="u1", total=10),
            order("o2", who="u1", at=MAY1_LATE, total=15),
            order("o3", who="u2", at=MAY2, total=8, status="refunded", refunded_at=REFUND),
            order("o4", who="u2", total=3, status="cancelled"),
        ],
        actor="t",
    )
    expected = summary(engine)
    assert len(expected) == 2
    try:
        command.downgrade(config(engine), "0007")
    finally:
        upgrade(engine)  # the migration's own SQL fills order_days again
    assert summary(engine) == expected
