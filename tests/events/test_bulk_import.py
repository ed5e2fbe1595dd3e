"""The column-by-column event import stores and rejects exactly what row-by-row ingestion does."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from clm.core import apart
from clm.core.errors import StoreInconsistent, UnusableInput
from clm.core.files import DataFile
from clm.core.imports import ChunkOutcome, ImportReport, run_transactional_import
from clm.core.timeutil import utcnow
from clm.customers.identities import identity_key
from clm.customers.schemas import CustomerIn
from clm.customers.service import RememberingResolver, upsert_customer, upsert_customers
from clm.customers.tables import customer_identities, customer_merges, customers
from clm.events.bulk import EventWriter, local_time, staged_file_chunks, store_zone
from clm.events.importer import import_events, recover_cut_short_load
from clm.events.schemas import ValidEvent, validate_event
from clm.events.service import ingest_events
from clm.events.tables import events, survey_answers
from clm.store.bulk import restore_set_aside, set_aside_for_load
from tests.conftest import empty_all_tables

HEADER = "event_id,type,timestamp,external_id,email,phone,channel,sku,properties.color,utm_source,campaign,properties"  # noqa: E501

SEEN = datetime(2025, 6, 1, tzinfo=UTC)
ROWS = [
    # the plain case, in several spellings
    "e1,page_view,2025-03-01T10:00:00Z,C1,,,web,SKU1,,,,",
    "e2,Product_View,2025-03-01T10:05:00+08:00,C1,,,APP,SKU2,red,,,",
    "e3,add_to_cart,2025-03-02,C2,,,,,,ads,spring,",
    "e4,purchase,2025-03-02 11:00:00.123456,,Ann@Example.COM,,email,,,,,",
    "e5,email_open,2025-03-03T09:00,,,+44 7700 900123,email,,,newsletter,,",
    # rows only the careful validator takes: epoch time, no id, a properties column
    "e6,page_view,1740000000,C3,,,web,,,,,",
    ",signup,2025-03-04T00:00:00Z,C4,,,web,,,,,",
    'e8,page_view,2025-03-05T00:00:00Z,C5,,,web,SKU9,,,,"{""ref"": ""x"", ""n"": 2}"',
    # one row names two existing people: they merge
    "e9,inquiry,2025-03-06T00:00:00Z,M1,m2@example.com,,support,,,,,",
    # the same person again, earlier than first seen
    "e10,page_view,2024-12-31T23:59:59Z,C1,,,web,,,,,",
    # bad rows, each with its own reason
    "e11,,2025-03-01,C1,,,web,,,,,",
    "e12,page_view,not a time,C1,,,web,,,,,",
    "e13,page_view,2025-03-01,,not-an-email,,web,,,,,",
    "e14,page_view,2025-03-01,,,,web,,,,,",
    "clm:e15,page_view,2025-03-01,C1,,,web,,,,,",
    "e16,page_view,2025-03-01,C1,,,system,,,,,",
    "e17,page_view,2025-03-01,C1,,,web,SKU1",
    "e18,page_view,1985-01-01,C1,,,web,,,,,",
    "e19,Bad Type!,2025-03-01,C1,,,web,,,,,",
    # a duplicate id: stored once
    "e1,page_view,2025-03-01T10:00:00Z,C1,,,web,SKU1,,,,",
    "e20,survey_response,2025-03-07T00:00:00Z,C2,,,email,,,,,",
]


def reference_import(engine: Engine, data: DataFile) -> ImportReport:
    """The row-by-row path: each row through validate_event, chunks through ingest_events (a
    time without a zone read in the store's time zone first, as every file import does)."""
    now = utcnow()
    tz = ZoneInfo(store_zone())

    def store(conn: Any, batch: list[ValidEvent]) -> ChunkOutcome:
        result = ingest_events(conn, batch, actor="import")
        return ChunkOutcome(
            accepted=result.accepted,
            duplicates=result.duplicates,
            counters={"customers_created": result.created_customers, "merges": result.merges},
            customer_ids=result.customer_ids,
        )

    return run_transactional_import(
        "events", engine, data, lambda row: validate_event(local_time(row, tz), now), store, chunk_size=7
    )


def snapshot(engine: Engine) -> dict[str, Any]:
    """What the store holds, with profiles named by their identities instead of their ids."""
    with engine.connect() as conn:
        names: dict[int, str] = {}
        for cid, kind, value in conn.execute(
            select(customer_identities.c.customer_id, customer_identities.c.kind, customer_identities.c.value)
        ):
            names[cid] = min(names.get(cid, f"{kind}:{value}"), f"{kind}:{value}")
        profiles = sorted(
            (
                names.get(r.id, "?"),
                r.merged_into is not None,
                r.first_seen_at,
                r.acquisition_channel,
                r.acquisition_campaign,
                r.email,
                r.phone,
                r.external_id,
            )
            for r in conn.execute(select(customers))
        )
        stored = sorted(
            (r.event_id, names[r.customer_id], r.type, r.channel, r.occurred_at, r.properties)
            for r in conn.execute(select(events))
        )
        answers = conn.execute(select(survey_answers.c.answered_at)).scalars().all()
        merges = conn.execute(select(customer_merges.c.reason)).scalars().all()
    return {"profiles": profiles, "events": stored, "answers": answers, "merges": merges}


def existing_people(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert_customers(
            conn,
            [
                CustomerIn(external_id="M1", first_seen_at=SEEN),
                CustomerIn(email="m2@example.com", first_seen_at=SEEN),
                CustomerIn(external_id="C1", first_seen_at=SEEN),
            ],
            actor="test",
        )


@pytest.mark.parametrize("apart", [False, True], ids=["read-here", "read-apart"])
@pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
@pytest.mark.parametrize("block_bytes", [1 << 20, 64])
def test_column_import_matches_row_by_row_ingestion(
    engine, write_file, block_bytes, large, apart, monkeypatch
):
    """A large load (indexes set aside, first-seen times held back to the end) too, and a file
    read and checked in a child process."""
    monkeypatch.setattr("clm.core.files.BLOCK_BYTES", block_bytes)
    path = write_file("events.csv", HEADER + "\n" + "\n".join(ROWS) + "\n")

    existing_people(engine)
    expected_report = reference_import(engine, DataFile(path))
    expected = snapshot(engine)

    empty_all_tables(engine)
    existing_people(engine)
    report = import_events(
        engine,
        DataFile(path),
        set_aside_min_rows=1 if large else 10**9,
        read_apart_min_bytes=0 if apart else 10**12,
    )
    got = snapshot(engine)

    assert got == expected
    assert [(r.line, r.reason) for r in report.rejections] == [
        (r.line, r.reason) for r in expected_report.rejections
    ]
    assert (report.rows, report.accepted, report.duplicates, report.rejected) == (
        expected_report.rows,
        expected_report.accepted,
        expected_report.duplicates,
        expected_report.rejected,
    )
    assert report.counters == expected_report.counters
    assert report.rejected == 9 and report.duplicates == 1
    assert len(got["merges"]) == 1 and len(got["answers"]) == 1


def test_plain_file_goes_the_fast_way_and_a_quoted_block_the_careful_way(engine, write_file):
    plain = [f"p{i},page_view,2025-01-01T00:00:{i % 60:02d}Z,U{i % 7},web,SKU{i % 3}" for i in range(300)]
    quoted = [
        'q1,page_view,2025-01-02T00:00:00Z,U1,web,"multi\nline"',
        "q2,page_view,2025-01-02,U1,web,,oops",
    ]
    path = write_file(
        "e.csv", "event_id,type,timestamp,external_id,channel,sku\n" + "\n".join(plain + quoted) + "\n"
    )
    report = import_events(engine, DataFile(path))
    assert (report.accepted, report.rejected) == (301, 1)
    # the quoted cell spans lines 302-303, so the bad row is on line 304
    assert [(r.line, r.reason) for r in report.rejections] == [(304, "expected 6 columns, found 7")]
    with engine.connect() as conn:
        sku = conn.execute(select(events.c.properties).where(events.c.event_id == "q1")).scalar_one()
        assert sku == {"sku": "multi\nline"}
        assert conn.execute(select(customers.c.id)).all().__len__() == 7


def test_first_seen_times_held_back_are_the_same_when_the_pile_is_reduced_along_the_way(
    engine, write_file, monkeypatch
):
    monkeypatch.setattr("clm.core.files.BLOCK_BYTES", 64)  # a chunk a row or two
    monkeypatch.setattr(EventWriter, "MAX_DEFERRED", 2)  # reduced after nearly every chunk
    path = write_file("events.csv", HEADER + "\n" + "\n".join(ROWS) + "\n")
    existing_people(engine)
    reference_import(engine, DataFile(path))
    expected = snapshot(engine)

    empty_all_tables(engine)
    existing_people(engine)
    import_events(engine, DataFile(path), set_aside_min_rows=1)
    assert snapshot(engine)["profiles"] == expected["profiles"]


def test_a_file_read_apart_reports_progress_through_the_file_and_its_errors_here(
    engine, write_file, monkeypatch
):
    monkeypatch.setattr("clm.core.files.BLOCK_BYTES", 256)
    rows = [f"p{i},page_view,2025-01-01T00:00:{i % 60:02d}Z,U{i % 7},web" for i in range(100)]
    path = write_file("e.csv", "event_id,type,timestamp,external_id,channel\n" + "\n".join(rows) + "\n")
    children: list[object] = []
    read_apart = apart.iterate_apart
    monkeypatch.setattr(apart, "iterate_apart", lambda *args: children.append(args[0]) or read_apart(*args))
    seen: list[int] = []
    report = import_events(engine, DataFile(path), read_apart_min_bytes=0, progress=seen.append)
    assert report.accepted == 100 and children == [staged_file_chunks]
    size = path.stat().st_size
    assert len(seen) > 10 and seen == sorted(seen) and 0 < seen[0] < size and seen[-1] == size

    empty = write_file("empty.csv", "")
    with pytest.raises(UnusableInput, match=r"empty\.csv is empty"):
        import_events(engine, DataFile(empty), read_apart_min_bytes=0)


@pytest.mark.parametrize("ahead", [False, True], ids=["looked-up-in-the-transaction", "looked-up-ahead"])
def test_remembered_profiles_are_forgotten_when_someone_merges_them(engine, ahead):
    """Also when the lookup was made ahead, before the merge (`prepare`, in the reading thread)."""
    resolver = RememberingResolver(actor="import")
    a, b = identity_key([("external_id", "A")]), identity_key([("email", "b@x.co")])
    with engine.begin() as conn:
        first = resolver.resolve(conn, [a, b], lambda i: None).customer_ids
    assert first[0] != first[1]
    staged = resolver.prepare([a, b])
    assert staged.guess == first  # remembered
    with engine.begin() as conn:  # an API event links the two people: they merge
        ingest_events(
            conn,
            [
                validate_event(
                    {"type": "signup", "timestamp": "2025-01-01", "external_id": "A", "email": "b@x.co"}
                )
            ],
        )
    with engine.connect() as conn:
        live = set(conn.execute(select(customers.c.id).where(customers.c.merged_into.is_(None))).scalars())
    with engine.begin() as conn:
        if ahead:
            again = resolver.resolve_batch(conn, staged, lambda i: None).customer_ids.tolist()
        else:
            again = resolver.resolve(conn, [a, b], lambda i: None).customer_ids
    assert again[0] == again[1] and again[0] in live


def test_a_lookup_made_ahead_takes_up_profiles_remembered_since_and_is_void_after_a_reset(engine):
    resolver = RememberingResolver(actor="import")
    a, b = identity_key([("external_id", "A")]), identity_key([("external_id", "B")])
    staged = resolver.prepare([a, b])  # nothing remembered yet
    with engine.begin() as conn:
        made = resolver.resolve(conn, [a], lambda i: None).customer_ids  # meanwhile: A's profile
        both = resolver.resolve_batch(conn, staged, lambda i: None)
    assert both.customer_ids[0] == made[0] and len(both.created) == 1  # only B's is new
    resolver.owners[a] = -1  # a memory about to turn out wrong (someone merged, say) …
    staged = resolver.prepare([a, b])
    assert staged.guess[0] == -1
    resolver._forget()  # … and forgotten before the chunk is written: the lookup ahead is void
    with engine.begin() as conn:
        again = resolver.resolve_batch(conn, staged, lambda i: None).customer_ids.tolist()
    assert again == [made[0], both.customer_ids[1]]


FOREIGN_KEY = "fk_events_customer_id_customers"


def _checked_foreign_keys(conn) -> set[str]:
    """The events' foreign keys in force and checked for every stored row (PostgreSQL)."""
    found = conn.exec_driver_sql(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'events'::regclass AND contype = 'f'"
        " AND convalidated"
    )
    return set(found.scalars())


def test_a_large_load_builds_the_secondary_indexes_afterwards(engine, write_file):
    rows = [f"x{i},page_view,2025-01-01T00:00:{i % 60:02d}Z,U{i % 11},web" for i in range(500)]
    path = write_file("e.csv", "event_id,type,timestamp,external_id,channel\n" + "\n".join(rows) + "\n")
    report = import_events(engine, DataFile(path), set_aside_min_rows=100)
    assert report.accepted == 500
    with engine.connect() as conn:
        names = {i["name"] for i in inspect(conn).get_indexes("events")}
        assert {"ix_events_customer_time", "ix_events_type_time"} <= names
        if engine.dialect.name == "postgresql":  # set aside for the load, checked afterwards
            assert FOREIGN_KEY in _checked_foreign_keys(conn)


def test_indexes_and_keys_left_out_by_a_load_cut_short_come_back(engine, write_file):
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_events_type_time")
        if postgres:
            conn.exec_driver_sql(f"ALTER TABLE events DROP CONSTRAINT {FOREIGN_KEY}")
    path = write_file("e.csv", "event_id,type,timestamp,external_id\nz1,page_view,2025-01-01,Z\n")
    import_events(engine, DataFile(path))
    with engine.connect() as conn:
        assert "ix_events_type_time" in {i["name"] for i in inspect(conn).get_indexes("events")}
        if postgres:
            assert FOREIGN_KEY in _checked_foreign_keys(conn)


def test_a_row_the_key_would_have_refused_during_a_load_is_caught_when_the_key_comes_back(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL drops foreign keys for a load")
    customer = upsert_customer(engine, CustomerIn(external_id="k"), actor="t")[0].id
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE events DROP CONSTRAINT {FOREIGN_KEY}")
        conn.exec_driver_sql(
            "INSERT INTO events (event_id, customer_id, type, channel, occurred_at, received_at)"
            f" VALUES ('ok', {customer}, 'page_view', 'web', now(), now()),"
            " ('orphan', 987654321, 'page_view', 'web', now(), now())"
        )
    with pytest.raises(IntegrityError, match="987654321"):
        restore_set_aside(engine, [events])
    with engine.begin() as conn:  # the key is back and refuses new strays; the old one is named
        assert FOREIGN_KEY not in _checked_foreign_keys(conn)
        conn.exec_driver_sql("DELETE FROM events WHERE event_id = 'orphan'")
    restore_set_aside(engine, [events])
    with engine.connect() as conn:
        assert FOREIGN_KEY in _checked_foreign_keys(conn)


def test_sqlite_checks_a_loads_keys_once_at_the_end_and_every_row_again_afterwards(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL drops its keys instead (test above)")
    customer = upsert_customer(engine, CustomerIn(external_id="k"), actor="t")[0].id
    orphan = (
        "INSERT INTO events (event_id, customer_id, type, channel, occurred_at, received_at)"
        " VALUES ('{id}', {customer}, 'page_view', 'web', '2025-01-01', '2025-01-01')"
    )
    loading = set_aside_for_load(engine, events, ["ix_events_type_time"])
    with pytest.raises(StoreInconsistent, match="987654321"), loading as loader, loader.begin() as conn:
        conn.exec_driver_sql(orphan.format(id="ok", customer=customer))
        conn.exec_driver_sql(orphan.format(id="stray", customer=987654321))  # not refused now
    with engine.connect() as conn:  # the indexes are back all the same
        assert "ix_events_type_time" in {i["name"] for i in inspect(conn).get_indexes("events")}
    for _ in range(3):  # whichever pooled connection comes next checks every row again
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.exec_driver_sql(orphan.format(id="stray2", customer=987654322))


def test_gzipped_and_tab_separated_files_go_the_column_way_too(engine, tmp_path):
    import gzip

    path = tmp_path / "events.tsv.gz"
    with gzip.open(path, "wt") as f:
        f.write("event_id\ttype\ttimestamp\texternal_id\tpage\n")
        f.write("g1\tpage_view\t2025-01-01T00:00:00Z\tG\t/a\n")
        f.write("g2\tpage_view\t2025-01-02T00:00:00Z\tG\n")  # a cell short
    report = import_events(engine, DataFile(path))
    assert (report.accepted, report.rejected) == (1, 1)
    assert [(r.line, r.reason) for r in report.rejections] == [(3, "expected 5 columns, found 4")]
    with engine.connect() as conn:
        assert conn.execute(select(events.c.properties)).scalar_one() == {"page": "/a"}


def test_the_vector_timestamp_check_vouches_for_exactly_what_the_plain_iso_pattern_matches():
    import re

    from clm.events.bulk import PLAIN_ISO, iso_shaped

    cells = [
        *("2025-01-01", "2025-01-01T10:00", "2025-01-01 10:00:05", "2025-01-01T10:00:05.1Z"),
        *("2025-01-01T10:00:05.123456+05:30", "2025-01-01T10:00Z", "2025-01-01T10:00-01:00"),
        *("2025-01-01T99:99:99Z", "2025-01-01T10:00:05.1234567Z", "2025-1-01", "2025-01-01T"),
        *("2025-01-01Z", "2025/01/01", "", "x" * 100, "2025-01-01T10:00:05-0530", "2025-01-01t10:00"),
        *(" 2025-01-01", "2025-01-01 ", "2025-01-01T10:00:05.Z", "2025-01-01T10:00,01:00"),
        *("2025+01-01T10:00-01:00", "2025-01-01T10:00 01:00", "2025 01-01", "2025-01-01T10:0\x00"),
        *("２０２５-01-01", "é025-01-01"),  # other digits and letters: left to the row check
    ]
    expected = [bool(re.fullmatch(PLAIN_ISO, c)) and c.isascii() for c in cells]
    assert iso_shaped(cells).tolist() == expected
    assert sum(expected) == 8
    assert iso_shaped(["2025-03-01T10:00:00Z"] * 3).all()  # one shape throughout


def test_the_vector_white_space_check_agrees_with_strip_on_every_short_mix_of_tricky_cells():
    from itertools import product

    from clm.events.bulk import _tidy_cells

    pieces = ["", "a", " a", "a ", "\ta", "a\t", "a b", "\x1ca", "a\x1f", "\xa0a", "a\u3000", " é"]
    pieces += ["a\nb", "ab\r"]
    for n in (1, 2, 3):
        for cells in product(pieces, repeat=n):
            assert _tidy_cells(list(cells)) == all("\n" not in c and c == c.strip() for c in cells), cells


def test_a_large_load_killed_before_its_end_has_first_seen_times_repaired(engine, write_file):
    early = "event_id,type,timestamp,external_id\nk1,page_view,2025-03-01T00:00:00Z,K\n"
    import_events(engine, DataFile(write_file("a.csv", early)))
    with engine.begin() as conn:  # as a load that died before storing what it held back
        conn.exec_driver_sql("DROP INDEX ix_events_type_time")
        conn.execute(
            insert(events).values(
                event_id="k0",
                customer_id=select(customers.c.id).scalar_subquery(),
                type="page_view",
                channel="web",
                occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
                received_at=datetime(2025, 5, 1, tzinfo=UTC),
            )
        )
    assert recover_cut_short_load(engine) == ["ix_events_type_time"]
    with engine.connect() as conn:
        seen = conn.execute(select(customers.c.first_seen_at)).scalar_one()
    assert seen == datetime(2024, 5, 1, tzinfo=UTC)
    assert recover_cut_short_load(engine) == []


@pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
def test_a_first_seen_time_held_back_goes_to_the_survivor_of_a_later_merge(
    engine, write_file, large, monkeypatch
):
    monkeypatch.setattr("clm.core.files.BLOCK_BYTES", 64)  # a chunk a row or two
    june = datetime(2025, 6, 1, tzinfo=UTC)
    with engine.begin() as conn:
        upsert_customers(
            conn,
            [CustomerIn(external_id="X", first_seen_at=june), CustomerIn(email="e@x.co", first_seen_at=june)],
            actor="test",
        )
    rows = [
        "a,page_view,2025-05-15T00:00:00Z,X,",
        "b,page_view,2025-05-01T00:00:00Z,,e@x.co",
        *(f"z{i},page_view,2025-05-20T00:00:00Z,Z{i}," for i in range(4)),  # chunks apart
        "c,page_view,2025-07-01T00:00:00Z,X,e@x.co",  # the same person: the two merge
    ]
    path = write_file("m.csv", "event_id,type,timestamp,external_id,email\n" + "\n".join(rows) + "\n")
    report = import_events(engine, DataFile(path), set_aside_min_rows=1 if large else 10**9)
    assert (report.accepted, report.counters["merges"]) == (7, 1)
    with engine.connect() as conn:
        merged = select(customers.c.id).where(customers.c.merged_into.is_not(None)).scalar_subquery()
        survivor = select(customers.c.merged_into).where(customers.c.id == merged).scalar_subquery()
        seen = conn.execute(select(customers.c.first_seen_at).where(customers.c.id == survivor)).scalar_one()
    assert seen == datetime(2025, 5, 1, tzinfo=UTC)


def test_events_left_on_a_profile_merged_while_the_key_was_away_follow_the_merge(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL drops foreign keys for a load")
    with engine.begin() as conn:
        ingest_events(
            conn,
            [
                validate_event({"type": "page_view", "timestamp": "2025-01-01", "external_id": "S"}),
                validate_event(
                    {"type": "survey_response", "timestamp": "2025-01-02", "external_id": "T"}
                    | {"properties": {"survey": "nps", "score": 9}}
                ),
            ],
        )
        ids = dict(conn.execute(select(customers.c.external_id, customers.c.id)).all())
        # as a merge in another process leaves things while a load has the key set aside
        conn.exec_driver_sql(f"ALTER TABLE events DROP CONSTRAINT {FOREIGN_KEY}")
        conn.execute(customers.update().where(customers.c.id == ids["T"]).values(merged_into=ids["S"]))
    recover_cut_short_load(engine)
    with engine.connect() as conn:
        assert set(conn.execute(select(events.c.customer_id)).scalars()) == {ids["S"]}
        assert conn.execute(select(survey_answers.c.customer_id)).scalar_one() == ids["S"]
        assert FOREIGN_KEY in _checked_foreign_keys(conn)


def test_a_large_load_that_fails_midway_still_stores_the_first_seen_times_it_held_back(
    engine, write_file, monkeypatch
):
    from clm.events.bulk import EventWriter

    monkeypatch.setattr("clm.core.files.BLOCK_BYTES", 64)  # a chunk a row or two
    june = datetime(2025, 6, 1, tzinfo=UTC)
    with engine.begin() as conn:
        upsert_customers(conn, [CustomerIn(external_id="X", first_seen_at=june)], actor="test")
    store, calls = EventWriter._store, []

    def failing(self, conn, batch, ids):
        calls.append(len(batch))
        if len(calls) == 3:
            raise RuntimeError("the disk is full")
        return store(self, conn, batch, ids)

    monkeypatch.setattr(EventWriter, "_store", failing)
    rows = [
        "a,page_view,2025-05-01T00:00:00Z,X",
        *(f"z{i},page_view,2025-05-20T00:00:00Z,Z{i}" for i in range(9)),
    ]
    path = write_file("f.csv", "event_id,type,timestamp,external_id\n" + "\n".join(rows) + "\n")
    with pytest.raises(RuntimeError, match="disk is full"):
        import_events(engine, DataFile(path), set_aside_min_rows=1)
    with engine.connect() as conn:
        seen = conn.execute(select(customers.c.first_seen_at).where(customers.c.external_id == "X")).scalar()
        assert seen == datetime(2025, 5, 1, tzinfo=UTC)
        assert conn.execute(select(events.c.event_id).where(events.c.event_id == "a")).scalar() == "a"
        assert {"ix_events_customer_time", "ix_events_type_time"} <= {
            i["name"] for i in inspect(conn).get_indexes("events")
        }


def test_setting_the_key_aside_waits_for_a_request_instead_of_deadlocking_with_it(engine, caplog):
    """A request holds a profile (re-evaluating it) and then reads events, as the API's refresh
    does, while a large load sets the events' key aside. Left to the ALTERs, the load would hold
    events and wait for customers while the request waits for events: a deadlock, with one side
    rolled back. Locked customers-first, the load simply waits for the request."""
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL drops foreign keys for a load")
    customer = upsert_customer(engine, CustomerIn(external_id="k"), actor="t")[0].id
    request = engine.connect()
    request.begin()
    request.execute(select(customers.c.id).where(customers.c.id == customer).with_for_update(key_share=True))
    loading = set_aside_for_load(engine, events, ["ix_events_type_time"])
    with caplog.at_level(logging.WARNING, logger="clm.store"), ThreadPoolExecutor(1) as pool:
        setting_aside = pool.submit(loading.__enter__)
        time.sleep(0.5)  # the load is now waiting for its locks
        assert not setting_aside.done()
        request.execute(select(func.count()).select_from(events).where(events.c.customer_id == customer))
        request.commit()
        request.close()
        setting_aside.result(timeout=30)
    loading.__exit__(None, None, None)  # the load ends: indexes and key come back
    assert [r.getMessage() for r in caplog.records] == []  # no deadlock, nothing run twice
    with engine.connect() as conn:
        assert FOREIGN_KEY in _checked_foreign_keys(conn)
