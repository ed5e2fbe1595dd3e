"""Bulk writes (clm.store.bulk): many rows a statement, duplicates skipped and counted."""

from sqlalchemy import Engine, func, select

from clm.core.timeutil import utcnow
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.events.service import STORED_COLUMNS
from clm.events.tables import events
from clm.store.bulk import insert_ignore_columns, insert_ignore_many, insert_many
from clm.store.schema import to_db_timestamp


def _rows(engine: Engine, ids: range, customer: int) -> list[tuple[object, ...]]:
    at = to_db_timestamp(utcnow(), engine.dialect.name)
    return [(f"e{i}", customer, "page_view", "web", at, at, f'{{"n": {i}}}') for i in ids]


def test_thousands_of_rows_go_in_once_each_across_statement_boundaries(engine: Engine) -> None:
    customer = upsert_customer(engine, CustomerIn(external_id="c"), actor="t")[0].id
    with engine.begin() as conn:  # 10,000 rows of 7 values: several statements on SQLite
        assert (
            insert_ignore_many(
                conn, events, STORED_COLUMNS, _rows(engine, range(10_000), customer), ["event_id"]
            )
            == 10_000
        )
    # half already stored, and one row twice within the batch: each counted once
    again = _rows(engine, range(5_000, 15_000), customer) + _rows(engine, range(14_999, 15_000), customer)
    with engine.begin() as conn:
        assert insert_ignore_many(conn, events, STORED_COLUMNS, again, ["event_id"]) == 5_000
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(events)) == 15_000
        assert conn.scalar(select(func.count(func.distinct(events.c.event_id)))) == 15_000
        last = conn.execute(select(events.c.properties).where(events.c.event_id == "e14999")).scalar_one()
        assert last == {"n": 14999}


def test_a_plain_insert_of_many_rows_stores_every_one(engine: Engine) -> None:
    customer = upsert_customer(engine, CustomerIn(external_id="c"), actor="t")[0].id
    with engine.begin() as conn:
        insert_many(conn, events, STORED_COLUMNS, _rows(engine, range(9_001), customer))
    with engine.connect() as conn:
        ids = conn.execute(select(events.c.event_id).order_by(events.c.id)).scalars().all()
    assert ids == [f"e{i}" for i in range(9_001)]


def test_rows_given_column_by_column_go_in_like_rows(engine: Engine) -> None:
    customer = upsert_customer(engine, CustomerIn(external_id="c"), actor="t")[0].id
    rows = _rows(engine, range(5_000), customer) + _rows(engine, range(4_990, 5_003), customer)
    columns = [list(column) for column in zip(*rows, strict=True)]
    with engine.begin() as conn:
        assert insert_ignore_columns(conn, events, STORED_COLUMNS, columns, ["event_id"]) == 5_003
    with engine.connect() as conn:
        stored = conn.execute(select(events.c.event_id, events.c.customer_id, events.c.properties)).all()
    assert sorted(stored) == sorted((f"e{i}", customer, {"n": i}) for i in range(5_003))
