"""Concurrent ingestion: the same new person arriving on several connections at once gets
one profile, and nothing is lost."""

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from clm.customers.tables import customer_identities, customers
from clm.events.schemas import validate_event
from clm.events.service import ingest
from clm.events.tables import events


def test_parallel_batches_for_the_same_new_people_create_each_profile_once(engine):
    def batch(worker: int):
        return [
            validate_event(
                {
                    "type": "page_view",
                    "timestamp": "2025-01-01T00:00:00Z",
                    "email": f"p{i}@x.com",
                    "event_id": f"w{worker}-{i}",
                }
            )
            for i in range(50)
        ]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda w: ingest(engine, batch(w), actor="t"), range(4)))
    assert sum(r.accepted for r in results) == 200
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 200
        assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == 50
        assert conn.execute(select(func.count()).select_from(customer_identities)).scalar_one() == 50


def test_a_report_reads_its_snapshot_while_a_writer_holds_the_lock(engine):
    from datetime import UTC, datetime

    from clm.store.engine import reading

    now = datetime.now(UTC)
    with engine.begin() as writer:
        writer.execute(customers.insert().values(id=1, attributes={}, created_at=now, updated_at=now))
        with reading(engine) as report:  # would wait for the writer if it took the write lock
            assert report.execute(select(func.count()).select_from(customers)).scalar_one() == 0
    with reading(engine) as report:
        assert report.execute(select(func.count()).select_from(customers)).scalar_one() == 1
