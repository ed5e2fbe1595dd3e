"""Concurrent ingestion: the same new person arriving on several connections at once gets
one profile, and nothing is lost."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, func, select

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


def _customer(conn, cid: int) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    conn.execute(customers.insert().values(id=cid, attributes={}, created_at=now, updated_at=now))


def test_a_plain_connection_reads_without_waiting_for_a_writer(engine):
    """`engine.connect()` that only reads begins a deferred transaction on SQLite: it neither
    waits for the write lock nor takes it (a writer beside it goes on)."""
    import time

    with engine.connect() as reader:
        with engine.begin() as writer:
            _customer(writer, 1)
            started = time.perf_counter()
            assert reader.execute(select(func.count()).select_from(customers)).scalar_one() == 0
            assert time.perf_counter() - started < 1
        with engine.begin() as writer:  # the reader's transaction is open, holding no lock
            _customer(writer, 2)
        if engine.dialect.name == "sqlite":  # its snapshot
            assert reader.execute(select(func.count()).select_from(customers)).scalar_one() == 0
    with engine.connect() as reader:
        assert reader.execute(select(func.count()).select_from(customers)).scalar_one() == 2


def test_transactions_begun_on_purpose_take_the_write_lock_at_once(engine):
    """`engine.begin()` and `conn.begin()` begin SQLite transactions with BEGIN IMMEDIATE, so two
    that read and then write wait for each other instead of failing with "database is locked"."""
    import threading

    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn, _cursor, statement, *_):
        statements.append(statement)

    try:
        with engine.begin() as conn:
            conn.execute(select(func.count()).select_from(customers))
        with engine.connect() as conn, conn.begin():
            conn.execute(select(func.count()).select_from(customers))
        with engine.connect() as conn:
            conn.execute(select(func.count()).select_from(customers))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    begins = [s for s in statements if s.startswith("BEGIN")]
    if engine.dialect.name == "sqlite":
        assert begins == ["BEGIN IMMEDIATE", "BEGIN IMMEDIATE", "BEGIN"]

    def read_then_write(cid: int) -> None:
        with engine.begin() as conn:
            conn.execute(select(func.count()).select_from(customers)).scalar_one()
            barrier.wait(timeout=0.5) if engine.dialect.name == "postgresql" else None
            _customer(conn, cid)

    barrier = threading.Barrier(4)
    threads = [threading.Thread(target=read_then_write, args=(cid,)) for cid in range(10, 14)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == 4


def test_a_write_that_may_be_skipped_gives_up_at_once_when_the_lock_is_taken(engine):
    """`writing_unless_busy` fails at once with a busy error (`is_busy`) where another writer
    holds what it needs, instead of waiting; the connection's patience is then as before."""
    import time

    from sqlalchemy import update
    from sqlalchemy.exc import DBAPIError

    from clm.store.engine import is_busy, writing_unless_busy

    with engine.begin() as conn:
        _customer(conn, 1)
    with engine.begin() as writer:
        writer.execute(update(customers).where(customers.c.id == 1).values(attributes={"by": "writer"}))
        started = time.perf_counter()
        with pytest.raises(DBAPIError) as raised, writing_unless_busy(engine) as conn:
            conn.execute(update(customers).where(customers.c.id == 1).values(attributes={"by": "me"}))
        assert is_busy(raised.value)
        assert time.perf_counter() - started < 1
    with writing_unless_busy(engine) as conn:  # free now: it writes
        conn.execute(update(customers).where(customers.c.id == 1).values(attributes={"by": "me"}))
    with engine.connect() as conn:
        assert conn.execute(select(customers.c.attributes)).scalar_one() == {"by": "me"}
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30000
