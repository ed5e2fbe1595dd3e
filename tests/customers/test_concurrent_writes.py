"""Writers of every kind at once on the same people: event batches (some carrying identities
of two profiles, so they merge), orders, profile upserts and consent changes, each followed by
the app's refresh of stages, loyalty and segments. On PostgreSQL they take row locks on shared
profiles; every one must go through, and none may even need a second attempt as a deadlock
victim (profiles are locked in id order before anything about them changes)."""

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from clm.commerce.schemas import OrderIn
from clm.commerce.service import ingest_order_batch
from clm.commerce.tables import orders
from clm.customers.schemas import CustomerIn
from clm.customers.service import set_consent, upsert_customers
from clm.customers.tables import customers
from clm.events.schemas import validate_event
from clm.events.service import ingest
from clm.events.tables import events
from clm.lifecycle.tables import customer_features
from clm.segments.service import create_segment
from clm.worker.refresh import refresh_customers

PEOPLE = 40
JOBS = 80


def write(engine: Any, k: int) -> tuple[int, int]:
    """One request of kind k % 4; returns (events, orders) it sent."""
    rnd = random.Random(k)
    now = datetime.now(UTC)
    kind = k % 4
    sent = (0, 0)
    if kind == 0:
        batch = []
        for j in range(20):
            record = {
                "event_id": f"e{k}-{j}",
                "type": rnd.choice(["page_view", "add_to_cart", "email_open"]),
                "timestamp": (now - timedelta(days=rnd.randrange(60))).isoformat(),
                "external_id": f"u{rnd.randrange(PEOPLE)}",
            }
            if rnd.random() < 0.15:
                record["email"] = f"p{rnd.randrange(PEOPLE)}@x.com"  # may join two profiles
            batch.append(validate_event(record))
        ids, changed, sent = ingest(engine, batch, actor="t").customer_ids, {"event:page_view"}, (20, 0)
    elif kind == 1:
        batch = [
            OrderIn(
                order_id=f"o{k}-{j}",
                external_id=f"u{rnd.randrange(PEOPLE)}",
                ordered_at=now - timedelta(days=rnd.randrange(60)),
                items=[{"sku": "S1", "unit_price": 10}],
            )
            for j in range(8)
        ]
        ids, changed, sent = ingest_order_batch(engine, batch, actor="t").customer_ids, {"orders"}, (0, 8)
    elif kind == 2:
        people = [
            CustomerIn(
                external_id=f"u{rnd.randrange(PEOPLE)}",
                email=f"p{rnd.randrange(PEOPLE)}@x.com",
                city="Hangzhou",
                consents={"email": rnd.random() < 0.5},
            )
            for _ in range(8)
        ]
        with engine.begin() as conn:
            ids, changed = set(upsert_customers(conn, people, actor="t").customer_ids), {"profile", "consent"}
    else:
        with engine.connect() as conn:
            live = select(customers.c.id).where(customers.c.merged_into.is_(None)).limit(3)
            ids = set(conn.execute(live.order_by(func.random())).scalars())
        for cid in sorted(ids):
            set_consent(engine, cid, "sms", rnd.random() < 0.5, source="t")
        changed = {"consent"}
    refresh_customers(engine, ids, changed)
    return sent


def test_mixed_writers_on_shared_people_all_go_through_first_time(engine: Any, caplog: Any) -> None:
    create_segment(engine, "browsers", where="events(page_view, last 90d) >= 1")
    with caplog.at_level(logging.WARNING, logger="clm.store"), ThreadPoolExecutor(max_workers=6) as pool:
        sent = list(pool.map(lambda k: write(engine, k), range(JOBS)))
    assert [r.getMessage() for r in caplog.records] == []  # no transaction had to run again

    with engine.connect() as conn:
        stored_events = conn.execute(
            select(func.count()).select_from(events).where(events.c.event_id.like("e%"))
        ).scalar_one()
        stored_orders = conn.execute(select(func.count()).select_from(orders)).scalar_one()
        live = set(conn.execute(select(customers.c.id).where(customers.c.merged_into.is_(None))).scalars())
        assessed = conn.execute(select(customer_features.c.customer_id)).scalars().all()
    assert stored_events == sum(e for e, _ in sent)
    assert stored_orders == sum(o for _, o in sent)
    assert len(assessed) == len(set(assessed)) and set(assessed) <= live
