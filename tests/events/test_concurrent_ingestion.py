"""Several API requests at once: each stores its batch and then refreshes its customers' stages
and segments. The batches share customers, in different orders, and move first-seen times
earlier, so on PostgreSQL the transactions take row locks on the same profiles: none may fail
(a deadlock would lose a request or leave stages stale) and every customer ends up assessed."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select

from clm.customers.tables import customers
from clm.events.schemas import validate_event
from clm.events.service import ingest
from clm.events.tables import events
from clm.lifecycle.tables import customer_stages
from clm.segments.service import create_segment
from clm.worker.refresh import refresh_customers

PEOPLE = 60
REQUESTS = 24
PER_REQUEST = 40


def test_parallel_requests_on_shared_customers_all_succeed(engine: Any) -> None:
    create_segment(engine, "browsers", where="events(page_view, last 30d) >= 1")
    rng = np.random.default_rng(7)
    start = datetime.now(UTC) - timedelta(days=20)

    def request(k: int) -> set[int]:
        who = rng.permutation(PEOPLE)[:PER_REQUEST]  # a different order each time
        batch = [
            validate_event(
                {
                    "event_id": f"r{k}-{j}",
                    "type": "page_view",
                    # later requests carry older events: first-seen times move earlier
                    "timestamp": (start - timedelta(hours=k, minutes=j)).isoformat(),
                    "external_id": f"u{int(c)}",
                }
            )
            for j, c in enumerate(who)
        ]
        result = ingest(engine, batch, actor="t")
        refresh_customers(engine, result.customer_ids, {"event:page_view"})
        return result.customer_ids

    with ThreadPoolExecutor(max_workers=4) as pool:
        touched = set().union(*pool.map(request, range(REQUESTS)))

    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(events).where(events.c.type == "page_view")
            ).scalar_one()
            == REQUESTS * PER_REQUEST
        )
        assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == PEOPLE
        staged = set(conn.execute(select(customer_stages.c.customer_id)).scalars())
    assert touched == staged
