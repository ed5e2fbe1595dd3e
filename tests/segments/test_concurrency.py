"""Re-checks of the same customers from several requests, with full rebuilds alongside, finish
without errors and leave each customer in the segment once, with one entry recorded."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from clm.events.schemas import validate_event
from clm.events.service import ingest
from clm.events.tables import events
from clm.segments.service import create_segment, rebuild_segments, refresh_customers
from clm.segments.tables import segment_members


def test_parallel_rechecks_and_rebuilds_do_not_collide(engine: Any) -> None:
    create_segment(engine, "browsers", where="events(page_view, last 7d) >= 1")
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    batch = [
        validate_event({"type": "page_view", "timestamp": when, "external_id": f"u{i}"}) for i in range(30)
    ]
    ids = sorted(ingest(engine, batch, actor="t").customer_ids)

    def work(k: int) -> None:
        if k % 4 == 3:
            rebuild_segments(engine, ["browsers"])
        else:
            refresh_customers(engine, ids, {"event:page_view"})

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(12)))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(segment_members)).scalar_one() == 30
        entered = select(func.count()).where(events.c.type == "segment_entered")
        assert conn.execute(entered).scalar_one() == 30
