"""Bulk import of event files (CSV / TSV / JSON Lines): checked and written column by column
(see clm.events.bulk), with the same rules as the API."""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import ExitStack, closing
from datetime import datetime
from itertools import chain
from pathlib import Path

from sqlalchemy import Engine, func, or_, select, update

from clm.core import apart, files
from clm.core.files import DataFile
from clm.core.imports import ImportReport, Prepared, run_prepared_import
from clm.core.timeutil import utcnow
from clm.customers.tables import customers
from clm.events.bulk import EventWriter, StagedEvents, row_chunks, stage_events, staged_file_chunks
from clm.events.schemas import SYSTEM_CHANNEL
from clm.events.tables import events, survey_answers
from clm.store.bulk import approximate_rows, restore_set_aside, set_aside_for_load

# A load expected to hold at least this many events, and at least as many as the table already
# has, builds the events' secondary indexes (and checks their foreign key) afterwards instead of
# row by row.
SET_ASIDE_MIN_ROWS = 250_000
SECONDARY_INDEXES = ("ix_events_customer_time", "ix_events_type_time")
# On SQLite a delimited file at least this large (~500,000 events) is read and checked in a
# child process (see clm.core.apart): starting one costs about half a second and 100 MB. Not on
# PostgreSQL, whose server does much of a load's work on the same cores: alternating runs of
# 5M events took as long either way (44.7-47.8 s), with 120 MB more memory.
READ_APART_MIN_BYTES = {"sqlite": 32 << 20}
_NEVER = 1 << 62


def import_events(
    engine: Engine,
    data: DataFile,
    *,
    actor: str = "import",
    chunk_size: int = 20_000,
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    set_aside_min_rows: int = SET_ASIDE_MIN_ROWS,
    read_apart_min_bytes: int | None = None,
) -> ImportReport:
    """Import an event file; `chunk_size` is the rows per transaction of JSON Lines (delimited
    files go a block of a few MB at a time). A delimited file of `read_apart_min_bytes` or more
    (by default: see `READ_APART_MIN_BYTES`) is read and checked in a process of its own while
    this one stores it."""
    now = utcnow()
    dialect = engine.dialect.name
    recover_cut_short_load(engine)
    if read_apart_min_bytes is None:
        read_apart_min_bytes = READ_APART_MIN_BYTES.get(dialect, _NEVER)
    source = _staged_chunks(data, now, dialect, chunk_size, read_apart_min_bytes)
    with ExitStack() as stack:
        stack.callback(source.close)  # a reading process stops however this ends
        first = next(source, None)
        chunks = iter(()) if first is None else chain([first], source)
        large = first is not None and _large_load(engine, data, first.rows, set_aside_min_rows)
        writer = EventWriter(actor=actor, dialect=dialect, defer_first_seen=large, pipelined=large)
        staged = (Prepared(chunk.rows, writer.look_up(chunk.items), chunk.rejections) for chunk in chunks)
        loader = engine
        if large:
            loader = stack.enter_context(
                set_aside_for_load(engine, events, SECONDARY_INDEXES, before_keys=follow_merges)
            )
            # on the way out, failed or not, and before the indexes are back
            stack.callback(_store_first_seen, engine, writer)
        with closing(source):  # before the indexes are rebuilt, should the load fail
            return run_prepared_import(
                "events", loader, data, staged, writer, rejections_path=rejections_path, progress=progress
            )


def _staged_chunks(
    data: DataFile, now: datetime, dialect: str, chunk_size: int, read_apart_min_bytes: int
) -> Generator[Prepared[StagedEvents]]:
    """The file's chunks checked and staged (`stage_events`): JSON Lines row by row here; a
    delimited file column by column, here or, when it is large, in a child process."""
    if data.format == "jsonl":
        for checked in row_chunks(data.rows(), now, chunk_size):
            yield Prepared(checked.rows, stage_events(checked.items, dialect), checked.rejections)
        return
    args = (
        str(data.path),
        data.format,
        data.mapping,
        now,
        dialect,
        files.BLOCK_BYTES,
        data.given_encoding,
        data.sheet_name,
    )
    if data.size >= read_apart_min_bytes and apart.AVAILABLE:
        read = apart.iterate_apart(staged_file_chunks, *args)
    else:
        read = staged_file_chunks(*args)
    for position, chunk in read:
        data.read_elsewhere(position)
        yield chunk


def _store_first_seen(engine: Engine, writer: EventWriter) -> None:
    """The first-seen times a large load held back; if that fails, all of them from the events."""
    try:
        with engine.begin() as conn:
            writer.store_deferred(conn)
    except Exception:
        repair_first_seen(engine)
        raise


def recover_cut_short_load(engine: Engine) -> list[str]:
    """Put back what a large event load that died midway left undone: the indexes it set aside,
    on PostgreSQL its foreign key and the events of profiles merged while the key was away, and
    the first-seen times it held back. A load does all of that before its indexes return, so
    missing indexes (or key) are the sign. Run at the start of every import and by `clm init`;
    returns the names of what was rebuilt."""
    rebuilt = restore_set_aside(engine, [events], before_keys=follow_merges)
    if rebuilt:
        repair_first_seen(engine)
    return rebuilt


def follow_merges(engine: Engine) -> None:
    """Events and survey answers still on a profile merged away go to its survivor.

    Why: a merge moves the rows that point at a profile through their foreign keys; while a
    large load has the events' key set aside (PostgreSQL), a merge, here or in another
    process, does not see the events, and the load may store events for a profile that
    merged a moment before."""
    with engine.begin() as conn:
        for table in (events, survey_answers):
            conn.execute(
                update(table)
                .where(table.c.customer_id == customers.c.id, customers.c.merged_into.is_not(None))
                .values(customer_id=customers.c.merged_into)
            )


def repair_first_seen(engine: Engine) -> None:
    """Every profile's first-seen time no later than its earliest stored event: one pass."""
    earliest = (
        select(events.c.customer_id, func.min(events.c.occurred_at).label("at"))
        .where(events.c.channel != SYSTEM_CHANNEL)
        .group_by(events.c.customer_id)
        .subquery()
    )
    first_seen = customers.c.first_seen_at
    with engine.begin() as conn:
        conn.execute(
            update(customers)
            .where(customers.c.id == earliest.c.customer_id)
            .where(or_(first_seen.is_(None), first_seen > earliest.c.at))
            .values(first_seen_at=earliest.c.at)
        )


def _large_load(engine: Engine, data: DataFile, first_rows: int, min_rows: int) -> bool:
    """Whether the file, judged by its first chunk, holds more events than the table already does."""
    read = max(data.bytes_read, 1)
    expected = first_rows * data.size / read
    if expected < min_rows:
        return False
    with engine.connect() as conn:
        return expected >= approximate_rows(conn, events)
