"""Bodies for PostgreSQL's `COPY … FROM STDIN`, built a column at a time: the text format, and
the binary format for the largest loads (events), which the server takes with less work.

Binary COPY spares the server parsing every value's text (a 1M-event COPY into `events` with its
unique key: 3.4-3.5 s of server time against 4.1-5.3 s in text), and building it here costs no
more than the text: whole columns are laid into one buffer with NumPy, no Python per row. The
layout (header, per row a field count, per field a length and the value's bytes, trailer) is
PostgreSQL's documented one (COPY, "Binary Format"; `timestamptz` as microseconds since 2000,
`jsonb` as a version byte and the text, as their send/receive functions take them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

_COPY_NULL = "\\N"
_COPY_SPECIAL = "\\\t\n\r"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(columns: Sequence[Sequence[str | None]]) -> str:
    """Columns of text (None for NULL) as the body of a PostgreSQL `COPY … FROM STDIN` (text
    format), built a column at a time: much cheaper than handing the driver one row tuple after
    another."""
    escaped = []
    for values in columns:
        cells = list(values)
        nulls = [i for i, v in enumerate(cells) if v is None] if None in cells else []
        for i in nulls:
            cells[i] = ""
        joined = "".join(cast(list[str], cells))
        if any(c in joined for c in _COPY_SPECIAL):
            cells = [v.translate(_COPY_ESCAPES) for v in cast(list[str], cells)]
        for i in nulls:
            cells[i] = _COPY_NULL
        escaped.append(cells)
    return "\n".join(map("\t".join, zip(*escaped, strict=True))) + "\n"


@dataclass(frozen=True)
class BinaryColumn:
    """One column in binary COPY form: every value's bytes end to end, and each value's length
    in bytes (-1 for NULL)."""

    data: np.ndarray  # uint8
    lengths: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.lengths)


_PG_EPOCH_US = int(np.datetime64("2000-01-01T00:00:00", "us").astype(np.int64))


def bigints(values: np.ndarray | Sequence[int]) -> BinaryColumn:
    """`bigint` values (no NULLs): eight bytes each, most significant first."""
    numbers = np.asarray(values, dtype=">i8")
    return BinaryColumn(numbers.view(np.uint8), np.full(len(numbers), 8, dtype=np.int64))


def timestamps(moments: np.ndarray) -> BinaryColumn:
    """UTC `datetime64` values as `timestamptz` (microseconds since 2000-01-01 UTC); NaT is NULL."""
    us = moments.astype("datetime64[us]")
    missing = np.isnat(us)
    lengths = np.where(missing, -1, 8).astype(np.int64)
    since = (us[~missing].astype(np.int64) - _PG_EPOCH_US).astype(">i8")
    return BinaryColumn(since.view(np.uint8), lengths)


def texts(values: Sequence[str | None]) -> BinaryColumn:
    """Text (`text`, `varchar`) values as UTF-8; None is NULL. Encoded all at once: one join, one
    encode; each value's own encoding is needed only when some are not ASCII."""
    has_null = None in values
    present = [v for v in values if v is not None] if has_null else cast(Sequence[str], values)
    joined = "".join(present)
    data = joined.encode()
    sizes = map(len, present) if len(data) == len(joined) else (len(v.encode()) for v in present)
    lengths = np.fromiter(sizes, dtype=np.int64, count=len(present))
    if has_null:
        given = np.array([v is not None for v in values], dtype=bool)
        full = np.full(len(values), -1, dtype=np.int64)
        full[given] = lengths
        lengths = full
    return BinaryColumn(np.frombuffer(data, dtype=np.uint8), lengths)


def jsonbs(values: Sequence[str | None]) -> BinaryColumn:
    """JSON text as `jsonb`: its binary form is a version byte (1) ahead of the text."""
    plain = texts(values)
    present = plain.lengths >= 0
    lengths = plain.lengths + present
    # each value's bytes move right by one per value up to and including its own
    shift = np.repeat(np.cumsum(present), np.maximum(plain.lengths, 0))
    data = np.ones(len(plain.data) + int(present.sum()), dtype=np.uint8)
    data[np.arange(len(plain.data)) + shift] = plain.data
    return BinaryColumn(data, lengths)


# the signature, no flags, no header extension
_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"


def copy_binary(columns: Sequence[BinaryColumn]) -> bytes:
    """The columns (of equal length) as the body of `COPY … FROM STDIN (FORMAT binary)`."""
    return _laid_out(columns, None)[0].tobytes()


@dataclass(frozen=True)
class BlankedBody:
    """A binary COPY body laid out ahead with one `bigint` column left blank (zeros), to be
    filled in when its values are known: an event file's chunk is laid out by the process that
    reads it, before matching has told each event's profile."""

    body: bytes
    blanks: np.ndarray  # each row's blank value: its byte offset in `body`

    def filled(self, values: np.ndarray) -> bytes:
        """The body with the values in place."""
        body = np.frombuffer(self.body, dtype=np.uint8).copy()
        _put(body, self.blanks, np.asarray(values, dtype=">i8").view(np.uint8), 8)
        return body.tobytes()


def blanked_body(columns: Sequence[BinaryColumn], blank: int) -> BlankedBody:
    """`copy_binary` with column `blank` (eight bytes a value: `bigints`) to be filled in later
    (see `BlankedBody`)."""
    body, blanks = _laid_out(columns, blank)
    assert blanks is not None
    return BlankedBody(body.tobytes(), blanks)


def _laid_out(columns: Sequence[BinaryColumn], remember: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The body, and where each row's value of column `remember` starts (if asked)."""
    rows = len(columns[0])
    sizes = np.full(rows, 2 + 4 * len(columns), dtype=np.int64)
    for column in columns:
        sizes += np.maximum(column.lengths, 0)
    starts = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts[1:])
    body = np.empty(len(_HEADER) + int(starts[-1]) + len(_TRAILER), dtype=np.uint8)
    body[: len(_HEADER)] = np.frombuffer(_HEADER, dtype=np.uint8)
    body[len(body) - len(_TRAILER) :] = np.frombuffer(_TRAILER, dtype=np.uint8)
    at = starts[:-1] + len(_HEADER)  # where each row's next field goes
    _put(body, at, np.full(rows, len(columns), dtype=">i2").view(np.uint8), 2)
    at += 2
    remembered = None
    for k, column in enumerate(columns):
        _put(body, at, column.lengths.astype(">i4").view(np.uint8), 4)
        at += 4
        if k == remember:
            remembered = at.copy()
        present = np.maximum(column.lengths, 0)
        source_starts = np.cumsum(present) - present
        body[np.repeat(at - source_starts, present) + np.arange(len(column.data))] = column.data
        at += present
    return body, remembered


def _put(body: np.ndarray, at: np.ndarray, data: np.ndarray, width: int) -> None:
    """Fixed-width bytes, `width` a row, at each row's position."""
    body[(at[:, None] + np.arange(width)).ravel()] = data
