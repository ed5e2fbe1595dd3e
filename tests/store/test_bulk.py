"""Bulk writes (clm.store.bulk): many rows a statement, duplicates skipped and counted."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from clm.core.timeutil import utcnow
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.customers.tables import customers
from clm.events.service import STORED_COLUMNS
from clm.events.tables import events
from clm.store.bulk import (
    insert_columns,
    insert_ignore_columns,
    insert_ignore_many,
    insert_many,
    update_if_earlier,
)
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


def test_columns_with_nulls_numbers_times_and_awkward_text_go_in_as_given(engine: Engine) -> None:
    """`insert_columns`: COPY text on PostgreSQL (NULL as \\N, the rest escaped), one statement
    of many rows on SQLite; the stored rows read back the same either way."""
    now = to_db_timestamp(utcnow(), engine.dialect.name)
    awkward = ["tab\there", "back\\slash", "new\nline", "\\N", "", None]
    count = 3_000  # several statements on SQLite
    ids = list(range(1, count + 1))
    emails = [awkward[i % len(awkward)] for i in range(count)]
    # distinct times, a few repeated, some missing: each spelled as itself (a time is spelled
    # once however often it repeats)
    base = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    seen = [base + timedelta(seconds=i % 500, microseconds=i % 7) if i % 3 else None for i in ids]
    with engine.begin() as conn:
        insert_columns(
            conn,
            customers,
            ("id", "email", "external_id", "first_seen_at", "attributes", "created_at", "updated_at"),
            [
                ids,
                emails,
                [f"c{i}" if i % 2 else None for i in ids],
                [None if t is None else to_db_timestamp(t, engine.dialect.name) for t in seen],
                ["{}"] * count,
                [now] * count,
                [now] * count,
            ],
        )
    with engine.connect() as conn:
        stored = conn.execute(
            select(
                customers.c.id, customers.c.email, customers.c.external_id, customers.c.first_seen_at
            ).order_by(customers.c.id)
        ).all()
    assert [tuple(r) for r in stored] == [
        (i, emails[i - 1], f"c{i}" if i % 2 else None, seen[i - 1]) for i in ids
    ]


def _profiles_seen(engine: Engine, seen: list[datetime | None]) -> None:
    now = to_db_timestamp(utcnow(), engine.dialect.name)
    ids = list(range(1, len(seen) + 1))
    with engine.begin() as conn:
        insert_columns(
            conn,
            customers,
            ("id", "first_seen_at", "attributes", "created_at", "updated_at"),
            [
                ids,
                [None if t is None else to_db_timestamp(t, engine.dialect.name) for t in seen],
                ["{}"] * len(ids),
                [now] * len(ids),
                [now] * len(ids),
            ],
        )


def _first_seen(engine: Engine) -> list[datetime | None]:
    with engine.connect() as conn:
        return list(conn.execute(select(customers.c.first_seen_at).order_by(customers.c.id)).scalars())


def test_a_time_replaces_a_later_or_missing_one_and_never_an_earlier_one(engine: Engine) -> None:
    """A few pairs (an API batch: arrays on PostgreSQL) and more than 5,000 (a bulk chunk: a
    temporary table) move each profile's first-seen time to the earlier of the two."""
    base = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    for count in (30, 6_000):
        with engine.begin() as conn:
            conn.execute(customers.delete())
        stored = [None if i % 3 == 0 else base + timedelta(hours=i) for i in range(count)]
        _profiles_seen(engine, stored)
        # for each profile: an hour earlier, an hour later, or for an empty one a day before base
        given = {
            i + 1: base - timedelta(days=1) if t is None else t + timedelta(hours=1 if i % 2 else -1)
            for i, t in enumerate(stored)
        }
        skipped = set(range(5, count + 1, 7))  # profiles not in this call keep their time
        with engine.begin() as conn:
            update_if_earlier(
                conn, customers, "first_seen_at", {k: v for k, v in given.items() if k not in skipped}
            )
        expected = [
            t if i + 1 in skipped else given[i + 1] if t is None else min(t, given[i + 1])
            for i, t in enumerate(stored)
        ]
        assert _first_seen(engine) == expected, count
