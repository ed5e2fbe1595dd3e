"""COPY bodies (clm.store.pgcopy): the text format's escapes, the binary format's bytes, and
both read back by a real PostgreSQL server as the values they were built from."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, select

from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.events.service import STORED_COLUMNS
from clm.events.tables import events
from clm.store.bulk import copy_new_rows, insert_ignore_copy
from clm.store.pgcopy import bigints, blanked_body, copy_binary, copy_text, jsonbs, texts, timestamps


def test_copy_text_tells_a_null_from_a_text_that_reads_like_one() -> None:
    body = copy_text([["a", None, "tab\there"], ["\\N", "x", None]])
    assert body == "a\t\\\\N\n\\N\tx\ntab\\there\t\\N\n"


def test_a_binary_body_is_laid_out_byte_for_byte_as_postgresql_documents_it() -> None:
    """Two rows of (bigint, text, timestamptz, jsonb), spelled out by hand from the COPY page:
    11-byte signature, 4-byte flags, 4-byte extension length; per row a 2-byte field count, then
    per field a 4-byte length (-1: NULL) and the bytes; a 2-byte -1 to end."""
    body = copy_binary(
        [
            bigints([1, 258]),
            texts(["é", None]),
            timestamps(np.array(["2000-01-01T00:00:01", "NaT"], dtype="datetime64[us]")),
            jsonbs([None, "{}"]),
        ]
    )
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    first = (
        b"\x00\x04"
        + b"\x00\x00\x00\x08" + (1).to_bytes(8, "big")
        + b"\x00\x00\x00\x02" + "é".encode()  # two bytes in UTF-8
        + b"\x00\x00\x00\x08" + (1_000_000).to_bytes(8, "big")  # µs after 2000-01-01 UTC
        + b"\xff\xff\xff\xff"
    )  # fmt: skip
    second = (
        b"\x00\x04"
        + b"\x00\x00\x00\x08" + (258).to_bytes(8, "big")
        + b"\xff\xff\xff\xff"
        + b"\xff\xff\xff\xff"
        + b"\x00\x00\x00\x03" + b"\x01{}"  # jsonb's version byte, then the text
    )  # fmt: skip
    assert body == header + first + second + b"\xff\xff"


def test_a_body_laid_out_with_a_blank_column_is_filled_to_the_same_bytes() -> None:
    """What an event file's reader lays out ahead (profile ids unknown yet), once filled, is
    exactly the body built with the ids: values of every length around the blank."""
    ids = np.array([7, 2**40 + 3, -1, 0], dtype=np.int64)
    names = texts(["a", "", None, "中文 ✓"])
    moments = timestamps(np.array(["2025-03-01T10:00", "NaT", "1970-01-01", "9999-12-31"], "datetime64[us]"))
    documents = jsonbs([None, "{}", "[1]", None])
    laid = blanked_body([names, bigints(np.zeros(4, dtype=np.int64)), moments, documents], 1)
    assert laid.filled(ids) == copy_binary([names, bigints(ids), moments, documents])


def test_times_before_2000_count_back_from_it() -> None:
    moment = np.array(["1999-12-31T23:59:59.999999"], dtype="datetime64[us]")
    assert timestamps(moment).data.tobytes() == (-1).to_bytes(8, "big", signed=True)


@pytest.fixture
def postgres(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    return engine


AWKWARD = ["plain", "tab\there", "new\nline", "back\\slash", "\\N", "", "naïve 中文 ✓", "a\r\n"]
RECEIVED = datetime(2026, 12, 3, 12, 0, 0, 123_456, tzinfo=UTC)


def _occurred(j: int) -> datetime:
    """Times either side of 2000 (the binary form's zero), to the microsecond, and the extremes."""
    if j % 50 == 0:
        return datetime(1, 1, 1, tzinfo=UTC) + timedelta(days=j)
    if j % 50 == 49:
        return datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC) - timedelta(days=j)
    return datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC) + timedelta(days=(j - 25) * 37, microseconds=j)


def _rows(customer: int, numbers: range) -> list[tuple[object, ...]]:
    """Events as `STORED_COLUMNS` reads them back: awkward text, NULL and non-ASCII JSON."""
    return [
        (
            f"e{j}·{AWKWARD[j % len(AWKWARD)]}",
            customer,
            AWKWARD[j % len(AWKWARD)] or "x",
            AWKWARD[(j + 3) % len(AWKWARD)],
            _occurred(j),
            RECEIVED,
            None if j % 5 == 0 else {"n": j, "s": "é\t中"},
        )
        for j in numbers
    ]


def _binary(rows: list[tuple[object, ...]]) -> bytes:
    event_id, ids, kind, channel, occurred, received, properties = (list(c) for c in zip(*rows, strict=True))
    return copy_binary(
        [
            texts(event_id),
            bigints(ids),
            texts(kind),
            texts(channel),
            timestamps(np.array([t.replace(tzinfo=None) for t in occurred], dtype="datetime64[us]")),
            timestamps(np.array([t.replace(tzinfo=None) for t in received], dtype="datetime64[us]")),
            jsonbs([None if p is None else json.dumps(p) for p in properties]),
        ]
    )


def _stored(engine: Engine) -> list[tuple[object, ...]]:
    columns = [events.c[name] for name in STORED_COLUMNS]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).order_by(events.c.id))]


def test_a_binary_body_reads_back_as_the_values_it_was_built_from(postgres: Engine) -> None:
    customer = upsert_customer(postgres, CustomerIn(external_id="c"), actor="t")[0].id
    rows = _rows(customer, range(3_000))
    with postgres.begin() as conn:
        assert copy_new_rows(conn, events, STORED_COLUMNS, _binary(rows))
    assert _stored(postgres) == rows


def test_a_binary_body_that_clashes_is_refused_whole_then_skips_what_is_stored(postgres: Engine) -> None:
    customer = upsert_customer(postgres, CustomerIn(external_id="c"), actor="t")[0].id
    with postgres.begin() as conn:
        assert copy_new_rows(conn, events, STORED_COLUMNS, _binary(_rows(customer, range(100))))
    again = _rows(customer, range(50, 200))  # the first 50 stored already
    with postgres.begin() as conn:
        assert not copy_new_rows(conn, events, STORED_COLUMNS, _binary(again))
        assert insert_ignore_copy(conn, events, STORED_COLUMNS, _binary(again), ("event_id",)) == 100
    assert _stored(postgres) == _rows(customer, range(200))
