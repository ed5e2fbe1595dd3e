"""Bulk event import column by column: a chunk of a file is checked, matched to profiles and
written as whole columns, so a typical event costs a few vector operations, not Python objects.

The vector checks only vouch for the plain case (a known-good name, an ISO timestamp, identities
that normalise, an event id). Every other row goes through `validate_event` on its own, which
also words the reason for a rejection: a row is stored, or rejected, exactly as the API and the
row-by-row import would do it, but for one thing: a file's time without a zone is in the store's
time zone (`local_time`), as in every other import, where the API still takes it as UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import repeat
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pandas as pd
from pydantic import ValidationError
from sqlalchemy import Connection, select

from clm.core.errors import InvalidInput
from clm.core.files import BadRow, ColumnChunk, DataFile
from clm.core.imports import ChunkOutcome, Matched, Prepared, Rejection, describe_error
from clm.core.settings import settings
from clm.core.timeutil import EARLIEST, MAX_FUTURE
from clm.core.values import parse_local_datetime
from clm.customers.identities import IDENTITY_KINDS, MAX_PLAIN_ID, identity_key, normalize_identity
from clm.customers.schemas import SeedColumns
from clm.customers.service import KeyBatch, RememberingResolver, key_batch, note_first_seen_stored
from clm.customers.tables import customers
from clm.events.schemas import (
    DEFAULT_CHANNEL,
    MAX_EVENT_ID,
    RESERVED_FIELDS,
    SYSTEM_CHANNEL,
    SYSTEM_ID_PREFIX,
    ValidEvent,
    tidy_name,
    validate_event,
)
from clm.events.service import STORED_COLUMNS, SURVEY_RESPONSE, profile_seed, record_answers
from clm.events.tables import events
from clm.store.bulk import copy_new_rows, insert_ignore_columns, insert_ignore_copy
from clm.store.pgcopy import (
    BinaryColumn,
    BlankedBody,
    bigints,
    blanked_body,
    copy_binary,
    jsonbs,
    texts,
    timestamps,
)
from clm.store.schema import to_db_timestamp, to_db_timestamps

# Timestamps both pandas and `datetime.fromisoformat` read the same way; others go row by row.
PLAIN_ISO = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso_shapes() -> dict[int, list[bytes]]:
    """Every shape `PLAIN_ISO` allows with ASCII digits, by length, spelled in the classes of
    `_CLASS` ('d' any digit, 'T' the date-time separator, a space or a 'T')."""
    date = "dddd-dd-dd"
    times = ["Tdd:dd", "Tdd:dd:dd", *(f"Tdd:dd:dd.{'d' * k}" for k in range(1, 7))]
    zones = ("", "Z", "+dd:dd", "-dd:dd")
    by_length: dict[int, list[bytes]] = {}
    for shape in [date] + [date + t + z for t in times for z in zones]:
        by_length.setdefault(len(shape), []).append(shape.encode())
    return by_length


_ISO_SHAPES = _iso_shapes()
# the shapes that end in a zone (Z, +hh:mm or -hh:mm after a time)
_ZONED_SHAPES = {
    shape
    for shapes in _ISO_SHAPES.values()
    for shape in shapes
    if len(shape) > 10 and (shape.endswith(b"Z") or shape[-6:-5] in (b"+", b"-"))
}
_CLASS = np.arange(256, dtype=np.uint8)  # each ASCII character's class in `_ISO_SHAPES`
_CLASS[ord("0") : ord("9") + 1] = ord("d")
_CLASS[ord(" ")] = ord("T")
# in cells joined by newlines, one with white space at either end
_PADDED = re.compile(r"(?:^|\n)[^\S\n]|[^\S\n](?:\n|$)")


@dataclass
class EventColumns:
    """The valid events of a chunk, one array per field, in file order."""

    lines: np.ndarray  # int64
    event_id: np.ndarray  # object (str)
    type: np.ndarray
    channel: np.ndarray
    occurred_at: np.ndarray  # datetime64[us], UTC
    keys: np.ndarray  # object: each row's identities as one `identity_key`
    properties: np.ndarray  # stored JSON text
    source: np.ndarray  # a new profile's acquisition channel
    campaign: np.ndarray  # … and campaign (None when unknown)

    def __len__(self) -> int:
        return len(self.lines)

    def take(self, index: np.ndarray) -> EventColumns:
        return EventColumns(
            self.lines[index],
            self.event_id[index],
            self.type[index],
            self.channel[index],
            self.occurred_at[index],
            self.keys[index],
            self.properties[index],
            self.source[index],
            self.campaign[index],
        )

    @staticmethod
    def concat(parts: Sequence[EventColumns]) -> EventColumns:
        """The parts as one, back in line order."""
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if len(parts) == 1:
            return parts[0]
        whole = EventColumns(
            np.concatenate([p.lines for p in parts]),
            np.concatenate([p.event_id for p in parts]),
            np.concatenate([p.type for p in parts]),
            np.concatenate([p.channel for p in parts]),
            np.concatenate([p.occurred_at for p in parts]),
            np.concatenate([p.keys for p in parts]),
            np.concatenate([p.properties for p in parts]),
            np.concatenate([p.source for p in parts]),
            np.concatenate([p.campaign for p in parts]),
        )
        return whole.take(np.argsort(whole.lines, kind="stable"))


def _objects(values: Iterable[Any]) -> np.ndarray:
    """A 1-D object array of the values as they are (tuples stay elements)."""
    return np.fromiter(values, dtype=object)


def from_valid(lines: Sequence[int], batch: Sequence[ValidEvent]) -> EventColumns:
    """Columns of events validated one by one."""
    seeds = [profile_seed(e) for e in batch]
    return EventColumns(
        np.array(lines, dtype=np.int64),
        _objects(e.event_id for e in batch),
        _objects(e.type for e in batch),
        _objects(e.channel for e in batch),
        np.array([e.occurred_at.astimezone(UTC).replace(tzinfo=None) for e in batch], dtype="datetime64[us]"),
        _objects(identity_key(e.identities.items()) for e in batch),  # kept in IDENTITY_KINDS order
        _objects(orjson.dumps(e.properties).decode() for e in batch),
        _objects(s.acquisition_channel for s in seeds),
        _objects(s.acquisition_campaign for s in seeds),
    )


def store_zone() -> str:
    """The store's time zone, in which a file's times without a zone are read."""
    return settings().default_timezone


def local_time(row: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """The row with its timestamp text read as people write it (`clm.core.values`): without a
    zone, in `tz`. Text that is no time is left for `validate_event` to word the reason."""
    value = row.get("timestamp")
    if not isinstance(value, str):
        return row
    try:
        return {**row, "timestamp": parse_local_datetime(value, tz, "timestamp")}
    except InvalidInput:
        return row


def check_rows(rows: Iterable[tuple[int, dict[str, Any] | BadRow]], now: datetime) -> Prepared[EventColumns]:
    """Rows (from `DataFile.rows()`) validated one by one, into columns."""
    tz = ZoneInfo(store_zone())
    lines: list[int] = []
    valid: list[ValidEvent] = []
    rejections: list[Rejection] = []
    count = 0
    for line, row in rows:
        count += 1
        if isinstance(row, BadRow):
            rejections.append(Rejection(line, row.reason))
            continue
        try:
            valid.append(validate_event(local_time(row, tz), now))
            lines.append(line)
        except (InvalidInput, ValidationError, ValueError, TypeError) as exc:
            rejections.append(Rejection(line, describe_error(exc)))
    return Prepared(count, from_valid(lines, valid), rejections)


def row_chunks(
    rows: Iterator[tuple[int, dict[str, Any] | BadRow]], now: datetime, size: int
) -> Iterator[Prepared[EventColumns]]:
    """JSON Lines and the like: `size` rows at a time, validated one by one."""
    while True:
        part = []
        for item in rows:
            part.append(item)
            if len(part) >= size:
                break
        if not part:
            return
        yield check_rows(part, now)


def _names(values: np.ndarray, field: str, default: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normalised names and a mask of the rows whose value is not a valid name."""
    codes, uniques = pd.factorize(values)
    tidy: list[str | None] = []
    for value in uniques:
        if value == "":
            value = default
        try:
            tidy.append(None if value is None else tidy_name(value, field))
        except InvalidInput:
            tidy.append(None)
    names = _objects(tidy)[codes]
    return names, pd.isna(names)


def _identity(values: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Normalised values (None where empty) and a mask of values that do not normalise."""
    codes, uniques = pd.factorize(values)
    if kind in _PLAIN_IDS and _plain(uniques.tolist()):
        tidy_plain = _objects(uniques.tolist())
        tidy_plain[tidy_plain == ""] = None
        return tidy_plain[codes], np.zeros(len(values), dtype=bool)
    tidy: list[str | None] = []
    bad: list[bool] = []
    for value in uniques:
        if value == "":
            tidy.append(None)
            bad.append(False)
            continue
        try:
            tidy.append(normalize_identity(kind, value))
            bad.append(False)
        except InvalidInput:
            tidy.append(None)
            bad.append(True)
    return _objects(tidy)[codes], np.array(bad, dtype=bool)[codes]


_PLAIN_IDS = ("external_id", "anonymous_id")


def _plain(cells: list[str]) -> bool:
    """Whether every cell is already a tidy id: no white space at either end, at most
    MAX_PLAIN_ID characters (what `normalize_plain_id` would return unchanged; '' is absent)."""
    return max(map(len, cells), default=0) <= MAX_PLAIN_ID and _tidy_cells(cells)


def _tidy_cells(cells: list[str]) -> bool:
    """No cell has white space (or a line break) at either end, checked in one pass: on ASCII,
    each cell's first and last character looked up at once (a regex over the joined column
    took 12 ms a block, a tenth of checking it)."""
    joined = "\n".join(cells)
    if joined.count("\n") != len(cells) - 1:
        return False
    if not joined.isascii():
        return not _PADDED.search(joined)
    lengths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    ends = np.cumsum(lengths + 1) - 1  # where each cell's separator is (or would be)
    filled = lengths > 0
    text = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    edges = np.concatenate([text[(ends - lengths)[filled]], text[ends[filled] - 1]])
    return not _SPACE[edges].any()


_SPACE = np.array([chr(c).isspace() for c in range(256)])  # white space, as `str.strip` sees it


def iso_shaped(cells: list[str]) -> np.ndarray:
    """Which cells are plain ISO timestamps as `PLAIN_ISO` matches them (see `iso_cells`)."""
    return iso_cells(cells)[0]


def iso_cells(cells: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which cells are plain ISO timestamps as `PLAIN_ISO` matches them (ASCII digits only; others
    are left to the row check), and which of those name their zone: every character mapped to
    its class at once, then each cell compared whole with the shapes of its length. A regex
    over the column would hold the interpreter for a microsecond a cell."""
    n = len(cells)
    joined = "".join(cells)
    if not joined.isascii():
        cells = [c if c.isascii() else "" for c in cells]
        joined = "".join(cells)
    lengths = np.fromiter(map(len, cells), dtype=np.int64, count=n)
    starts = np.cumsum(lengths) - lengths
    classes = _CLASS[np.frombuffer(joined.encode("ascii"), dtype=np.uint8)]
    shaped = np.zeros(n, dtype=bool)
    zoned = np.zeros(n, dtype=bool)
    for length, shapes in _ISO_SHAPES.items():
        rows = np.flatnonzero(lengths == length)
        if not len(rows):
            continue
        if len(rows) == n:  # the usual case: one shape throughout
            block = classes.reshape(n, length)
        else:
            block = classes[starts[rows, None] + np.arange(length)]
        whole = np.ascontiguousarray(block).view(f"S{length}").ravel()
        found = np.zeros(len(rows), dtype=bool)
        with_zone = np.zeros(len(rows), dtype=bool)
        for shape in shapes:
            hit = whole == shape
            found |= hit
            if shape in _ZONED_SHAPES:
                with_zone |= hit
        shaped[rows] = found
        zoned[rows] = with_zone
    return shaped, zoned


def _timestamps(values: np.ndarray, now: datetime) -> tuple[np.ndarray, np.ndarray]:
    """UTC datetime64[us] and a mask of the rows that are not plain, plausible ISO timestamps.
    A time without a zone is in the store's time zone (a wall time that zone skips or repeats
    is left to the row check)."""
    text = pd.Series(values, dtype=object)
    plain, zoned = iso_cells(values.tolist())
    if plain.all():  # the usual case
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    else:
        parsed = pd.to_datetime(text.where(plain), format="ISO8601", utc=True, errors="coerce")
    stamps = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    naive = plain & ~zoned
    if naive.any():  # read as UTC wall times above: moved to the store's zone
        local = pd.DatetimeIndex(stamps[naive]).tz_localize(store_zone(), ambiguous="NaT", nonexistent="NaT")
        stamps = stamps.copy()
        stamps[naive] = local.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[us]")
    low = np.datetime64(EARLIEST.replace(tzinfo=None), "us")
    high = np.datetime64((now + MAX_FUTURE).astimezone(UTC).replace(tzinfo=None), "us")
    bad = np.isnat(stamps) | (stamps < low) | (stamps > high)
    return stamps, bad


def check_columns(chunk: ColumnChunk, now: datetime) -> Prepared[EventColumns]:
    """A chunk of a delimited file validated column by column; rows the vector checks cannot
    vouch for are validated one by one (`validate_event`)."""
    n = len(chunk)
    bad_lines = [Rejection(line, reason) for line, reason in chunk.bad]
    cols = chunk.columns
    kinds = [k for k in IDENTITY_KINDS if k in cols]
    extra = [c for c in cols if c not in RESERVED_FIELDS]
    keys = [c.removeprefix("properties.") for c in extra]
    if (
        n == 0
        or "type" not in cols
        or "timestamp" not in cols
        or "event_id" not in cols  # content-derived ids are computed row by row
        or not kinds
        or len(set(keys)) != len(keys)
    ):
        rows = ((int(chunk.lines[i]), chunk.row(i)) for i in range(n))
        checked = check_rows(rows, now)
        return Prepared(n + len(chunk.bad), checked.items, _by_line(bad_lines + checked.rejections))

    slow = np.zeros(n, dtype=bool)
    kind, bad = _names(cols["type"], "type")
    slow |= bad
    channel, bad = _names(cols.get("channel", np.full(n, "", dtype=object)), "channel", DEFAULT_CHANNEL)
    slow |= bad | (channel == SYSTEM_CHANNEL)
    occurred, bad = _timestamps(cols["timestamp"], now)
    slow |= bad
    slow |= _odd_ids(cols["event_id"])
    normalised = []
    for k in kinds:
        values, bad = _identity(cols[k], k)
        slow |= bad
        normalised.append(values)
    present = np.zeros(n, dtype=bool)
    for values in normalised:
        present |= ~pd.isna(values)
    slow |= ~present
    if "properties" in cols:
        slow |= cols["properties"] != ""

    fast = np.flatnonzero(~slow)
    if len(kinds) == 1:
        prefix = identity_key([(kinds[0], "")])
        row_keys = _objects(prefix + v for v in normalised[0][fast].tolist())
    else:
        picked = [values[fast].tolist() for values in normalised]
        row_keys = _objects(
            identity_key((k, v) for k, v in zip(kinds, vals, strict=True) if v is not None)
            for vals in zip(*picked, strict=True)
        )
    props = _properties([cols[c][fast] for c in extra], keys, len(fast))
    given = {key: cols[c][fast] for c, key in zip(extra, keys, strict=True)}
    source = _first_given(given, ("utm_source", "acquisition_channel"), channel[fast])
    campaign = _first_given(given, ("utm_campaign", "campaign"), np.full(len(fast), None, dtype=object))
    quick = EventColumns(
        chunk.lines[fast],
        cols["event_id"][fast],
        kind[fast],
        channel[fast],
        occurred[fast],
        row_keys,
        props,
        source,
        campaign,
    )
    rest = np.flatnonzero(slow)
    checked = check_rows(((int(chunk.lines[i]), chunk.row(i)) for i in rest.tolist()), now)
    return Prepared(
        n + len(chunk.bad),
        EventColumns.concat([quick, checked.items]),
        _by_line(bad_lines + checked.rejections),
    )


def _by_line(rejections: list[Rejection]) -> list[Rejection]:
    return sorted(rejections, key=lambda r: r.line)


def _odd_ids(ids: np.ndarray) -> np.ndarray:
    """Rows whose event id the vector path does not take: empty (a content id is derived),
    too long, reserved, or with white space at either end."""
    cells = ids.tolist()
    if (
        min(map(len, cells), default=1) > 0
        and max(map(len, cells), default=0) <= MAX_EVENT_ID
        and _tidy_cells(cells)
        and "\n" + SYSTEM_ID_PREFIX not in "\n" + "\n".join(cells)
    ):
        return np.zeros(len(cells), dtype=bool)
    return np.array(
        [
            not cell or len(cell) > MAX_EVENT_ID or cell.startswith(SYSTEM_ID_PREFIX) or cell.strip() != cell
            for cell in cells
        ],
        dtype=bool,
    )


def _properties(columns: list[np.ndarray], keys: list[str], n: int) -> np.ndarray:
    """Each row's extra cells as the JSON text `validate_event` would store (empty cells left out)."""
    if not columns:
        return np.full(n, "{}", dtype=object)
    fragments = []
    for values, key in zip(columns, keys, strict=True):
        codes, uniques = pd.factorize(values)
        label = orjson.dumps(key).decode() + ":"
        pieces = _objects(None if v == "" else label + orjson.dumps(v).decode() for v in uniques)
        if len(columns) == 1:  # the usual case: each distinct cell's whole object, spread at once
            return _objects("{}" if p is None else "{" + p + "}" for p in pieces)[codes]
        fragments.append(pieces[codes].tolist())
    rows = zip(*fragments, strict=True)
    return _objects("{" + ",".join(f for f in parts if f is not None) + "}" for parts in rows)


def _first_given(given: dict[str, np.ndarray], names: Sequence[str], default: np.ndarray) -> np.ndarray:
    """Per row, the first non-empty of the named cells, else the default (as `profile_seed`)."""
    out = default.copy()
    for name in reversed(names):
        if name in given:
            values = given[name]
            out = np.where(values != "", values, out)
    return out


@dataclass
class StagedEvents:
    """A chunk of valid events made ready for `EventWriter` (see `stage_events`)."""

    batch: EventColumns  # without its `keys`: see `keys`
    order: np.ndarray  # the rows earliest first
    keys: KeyBatch  # their identity keys, in that order
    columns: list[Any]  # event id, type, channel, time, properties: as the store takes them
    # PostgreSQL: the COPY body laid out, profile ids blank (when no event id repeats)
    body: BlankedBody | None = None

    def __len__(self) -> int:
        return len(self.batch)


def stage_events(batch: EventColumns, dialect: str) -> StagedEvents:
    """What of storing a chunk needs neither the database nor the writer's memory (pure: may
    run in the process that reads the file): the time order, the distinct identity keys, the
    columns as the store takes them and, for PostgreSQL, the COPY body but for profile ids."""
    order = np.argsort(batch.occurred_at, kind="stable")  # a new profile's seed: its first event
    # PostgreSQL takes the times as they are (binary COPY); SQLite stores them as text
    stamps = batch.occurred_at if dialect == "postgresql" else to_db_timestamps(batch.occurred_at, dialect)
    columns = [
        batch.event_id.tolist(),
        batch.type.tolist(),
        batch.channel.tolist(),
        stamps,
        batch.properties.tolist(),
    ]
    keys = key_batch(batch.keys[order])
    body = None
    if dialect == "postgresql" and not pd.Series(columns[0]).duplicated().any():
        body = blanked_body(_binary_columns(columns, np.zeros(len(batch), dtype=np.int64)), _PROFILE_IDS)
    # each row's key lives on as its distinct key's code: not carried (or pickled) twice
    return StagedEvents(replace(batch, keys=_NO_KEYS), order, keys, columns, body)


_NO_KEYS = np.empty(0, dtype=object)


def staged_file_chunks(
    path: str,
    fmt: str,
    mapping: dict[str, str],
    now: datetime,
    dialect: str,
    block_bytes: int,
    encoding: str | None = None,
    sheet: str | None = None,
) -> Iterator[tuple[int, Prepared[StagedEvents]]]:
    """A delimited event file (or workbook) read (`block_bytes` at a time), checked and staged
    chunk by chunk, each chunk with how far into the file reading had got. Plain values in, so
    a child process can run it (`clm.core.apart`)."""
    data = DataFile(path, fmt, mapping, encoding=encoding, sheet=sheet)
    for chunk in data.column_chunks(block_bytes):
        # each step's input let go as soon as it is used: one block's worth in memory at a time
        checked = check_columns(chunk, now)
        if checked.rejections:
            checked.rejections[:] = _as_in_file(checked.rejections, chunk, data)
        del chunk
        staged = Prepared(checked.rows, stage_events(checked.items, dialect), checked.rejections)
        del checked
        yield data.bytes_read, staged
        del staged


def _as_in_file(rejections: list[Rejection], chunk: ColumnChunk, data: DataFile) -> list[Rejection]:
    """Rejections with their sheet and their row as the file has it (its own column names), for
    a rejections file that can be fixed and imported again. Only rejected rows pay for this."""
    original = {v: k for k, v in data.mapping.items()}
    found = np.searchsorted(chunk.lines, [r.line for r in rejections])
    out = []
    for r, i in zip(rejections, found.tolist(), strict=True):
        row = None
        if i < len(chunk.lines) and chunk.lines[i] == r.line:
            row = {original.get(k, k): v for k, v in chunk.row(i).items()}
        out.append(replace(r, sheet=chunk.sheet, row=row))
    return out


class EventWriter:
    """Stores checked chunks: profiles matched (remembered across chunks), first-seen times
    moved, events inserted once each, survey answers recorded. Whatever needs no database is
    done ahead by the reader (`stage_events`, then `look_up`), down to PostgreSQL's COPY body
    with the profile ids blank: the writer limits a load.

    With `pipelined` (a large load into PostgreSQL, with the events' foreign key set aside),
    a chunk's events are COPYed in a transaction of their own while the next chunk is matched
    to profiles (see `Matched`): the server's work on one overlaps our matching of the next.
    Events of a profile that merges in between are moved after the load (`follow_merges`).

    With `defer_first_seen` (a large load), the first-seen times of profiles that existed
    before are held back and written at once by `store_deferred`: in a file out of time order
    the same people are seen earlier again and again, and moving them chunk after chunk cost a
    fifth of a load. A load killed before that is repaired by `repair_first_seen`.
    """

    MAX_DEFERRED = 500_000  # event times held back; beyond, only the earliest per profile are kept

    def __init__(
        self, *, actor: str, dialect: str, defer_first_seen: bool = False, pipelined: bool = False
    ) -> None:
        self.resolver = RememberingResolver(actor=actor)
        self.dialect = dialect
        self.pipelined = pipelined
        self.fresh = True  # no event id of this import has met a stored one yet
        self.defer = defer_first_seen
        # (profile ids, times in µs since the epoch) this load saw earlier than stored, held back
        self.deferred: list[tuple[np.ndarray, np.ndarray]] = []
        self.deferred_count = 0
        self.compact_at = self.MAX_DEFERRED

    def look_up(self, staged: StagedEvents) -> StagedEvents:
        """A chunk staged ahead (`stage_events`), with the profiles remembered for its keys."""
        self.resolver.look_up(staged.keys)
        return staged

    def __call__(self, conn: Connection, staged: StagedEvents) -> ChunkOutcome | Matched:
        batch, order = staged.batch, staged.order
        n = len(batch)
        if not n:
            return ChunkOutcome()

        # a new profile's seed: its first event (the keys are in time order)
        seeds = SeedColumns(batch.occurred_at, batch.source, batch.campaign).take(order)
        matches = self.resolver.resolve_batch(conn, staged.keys, seeds)
        ids = np.empty(n, dtype=np.int64)
        ids[order] = matches.customer_ids
        self._note_first_seen(conn, ids, batch.occurred_at, matches.created)
        matched = ChunkOutcome(
            counters={"customers_created": len(matches.created), "merges": len(matches.merges)},
            customer_ids=set(ids.tolist()),
        )
        if self.pipelined and conn.dialect.name == "postgresql":
            return Matched(matched, lambda later: self._store(later, staged, ids))
        stored = self._store(conn, staged, ids)
        matched.accepted, matched.duplicates = stored.accepted, stored.duplicates
        return matched

    def _store(self, conn: Connection, staged: StagedEvents, ids: np.ndarray) -> ChunkOutcome:
        """The events of a chunk matched to profiles `ids`, and their survey answers."""
        n = len(staged)
        event_id, kind, channel, stamps, properties = staged.columns
        if self.dialect == "postgresql":
            accepted = self._copy(conn, staged, ids)
        else:
            received = to_db_timestamp(datetime.now(UTC), self.dialect)
            columns = [event_id, ids.tolist(), kind, channel, stamps, [received] * n, properties]
            accepted = insert_ignore_columns(conn, events, STORED_COLUMNS, columns, ("event_id",))
        batch = staged.batch
        answers = batch.event_id[batch.type == SURVEY_RESPONSE]
        if len(answers):
            record_answers(conn, answers.tolist())
        return ChunkOutcome(accepted=accepted, duplicates=n - accepted)

    def _copy(self, conn: Connection, staged: StagedEvents, ids: np.ndarray) -> int:
        """PostgreSQL: COPY (binary) straight into `events` while no event of the file was
        already stored, with the body the reader laid out if it could (no event id repeats in
        the chunk); from the first clash on (a file sent again, say), stage and skip duplicates."""
        if self.fresh:
            if staged.body is not None:
                unique, body = staged.columns, staged.body.filled(ids)
            else:
                first = ~pd.Series(staged.columns[0]).duplicated().to_numpy()
                unique = [_kept(c, first) for c in staged.columns]
                body = copy_binary(_binary_columns(unique, ids[first]))
            if copy_new_rows(conn, events, STORED_COLUMNS, body):
                return len(unique[0])
            self.fresh = False
        body = copy_binary(_binary_columns(staged.columns, ids))
        return insert_ignore_copy(conn, events, STORED_COLUMNS, body, ("event_id",))

    def _note_first_seen(
        self, conn: Connection, ids: np.ndarray, occurred: np.ndarray, created: frozenset[int]
    ) -> None:
        """Move existing profiles' first-seen time earlier where this chunk saw them earlier
        (skipping those known to have been seen earlier still). Held back, every event's time
        goes in the pile as it is (a profile new in this chunk's too: moving its time to the
        earliest changes nothing), reduced to each profile's earliest only when the pile grows
        large: sorting it out at the end is cheaper than asking, or than grouping each chunk."""
        if self.defer:
            self.deferred.append((ids, occurred.astype(np.int64)))
            self.deferred_count += len(ids)
            if self.deferred_count > self.compact_at:
                self.deferred = [_earliest_each(*self._held_back())]
                self.deferred_count = len(self.deferred[0][0])
                # with more profiles than that, reduce after as many times again, not every chunk
                self.compact_at = max(self.MAX_DEFERRED, 2 * self.deferred_count)
            return
        frame = pd.DataFrame({"id": ids, "at": occurred.astype(np.int64)})
        earliest = frame.groupby("id", sort=False)["at"].min()
        people = earliest.index.to_numpy()
        first = earliest.to_numpy()
        is_new = np.isin(people, np.fromiter(created, dtype=np.int64, count=len(created)))
        known = self.resolver.first_seen
        never = np.iinfo(np.int64).max
        floor = np.fromiter(map(known.get, people.tolist(), repeat(never)), dtype=np.int64, count=len(people))
        move = (first < floor) & ~is_new
        if move.any():
            self._store_first_seen(conn, people[move], first[move])
        remember = move | is_new
        known.update(zip(people[remember].tolist(), first[remember].tolist(), strict=True))

    def store_deferred(self, conn: Connection) -> None:
        """Write the first-seen times a large load held back (see `defer_first_seen`), each to
        the live profile: one that merged meanwhile passes its time to the survivor."""
        if not self.deferred:
            return
        ids, times = self._held_back()
        self.deferred, self.deferred_count = [], 0
        merged = select(customers.c.id, customers.c.merged_into).where(customers.c.merged_into.is_not(None))
        survivor = pd.Series({tomb: live for tomb, live in conn.execute(merged)}, dtype=np.int64)
        gone = np.isin(ids, survivor.index.to_numpy())
        if gone.any():
            ids = ids.copy()
            ids[gone] = survivor.loc[ids[gone]].to_numpy()
        self._store_first_seen(conn, *_earliest_each(ids, times))

    def _held_back(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate([p for p, _ in self.deferred]), np.concatenate([t for _, t in self.deferred]))

    @staticmethod
    def _store_first_seen(conn: Connection, ids: np.ndarray, times: np.ndarray) -> None:
        stamps = to_db_timestamps(times.astype("datetime64[us]"), conn.dialect.name)
        note_first_seen_stored(conn, list(zip(ids.tolist(), stamps, strict=True)))


def _kept(column: Any, keep: np.ndarray) -> Any:
    """The column's values where `keep` is true, in the column's own form (array or list)."""
    return column[keep] if isinstance(column, np.ndarray) else _objects(column)[keep].tolist()


_PROFILE_IDS = STORED_COLUMNS.index("customer_id")


def _binary_columns(columns: list[Any], ids: np.ndarray) -> list[BinaryColumn]:
    """A chunk's staged columns and its profile ids in binary COPY form, in `STORED_COLUMNS`
    order, received now."""
    event_id, kind, channel, stamps, properties = columns
    received = np.full(len(event_id), np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us"))
    return [
        texts(event_id),
        bigints(ids),
        texts(kind),
        texts(channel),
        timestamps(stamps),
        timestamps(received),
        jsonbs(properties),
    ]


def _earliest_each(ids: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each id once, with its earliest time."""
    earliest = pd.Series(times).groupby(ids, sort=False).min()
    return earliest.index.to_numpy(dtype=np.int64), earliest.to_numpy(dtype=np.int64)
