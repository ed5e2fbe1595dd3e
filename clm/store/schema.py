"""Shared SQLAlchemy metadata and the column types every domain's tables use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, MetaData, String, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from clm.core.timeutil import as_utc

# Stable constraint names, so migrations generated on one database apply to the other.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# 64-bit keys on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-increment rowid.
PKType = BigInteger().with_variant(Integer(), "sqlite")

JSONType = JSON().with_variant(JSONB(), "postgresql")


def key_text(length: int) -> TypeEngine[str]:
    """Text that is a key, never prose (event ids, identity values): compared byte by byte.
    On PostgreSQL that is the "C" collation: its unique indexes then compare with memcmp, not
    the locale's strcoll, and a COPY of a million events into the unique event id spends ~10%
    less on the server. Equality is the same either way; only an ORDER BY on the column would
    differ, and none is ordered for reading. SQLite compares bytes already (BINARY)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC: timestamptz on PostgreSQL, UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def to_db_timestamp(value: datetime, dialect_name: str) -> Any:
    """The stored form of an aware timestamp, for bulk writes that bypass SQLAlchemy types."""
    if dialect_name == "sqlite":
        # isoformat pads the year to four digits (strftime's %Y does not for years < 1000)
        return as_utc(value).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


def to_db_timestamps(moments: np.ndarray, dialect_name: str) -> list[str]:
    """`to_db_timestamp` for a whole array of UTC datetime64 values, as text: what SQLite stores
    (and PostgreSQL's COPY reads, with the offset added)."""
    if not len(moments):
        return []
    us = moments.astype("datetime64[us]")
    suffix = b"" if dialect_name == "sqlite" else b"+00"
    text = _iso_digits(us.astype(np.int64), suffix)
    if text is None:  # a year outside 1000-9999 (NumPy pads it to four digits, as isoformat does)
        spelled = np.datetime_as_string(us, unit="us").tolist()
        return [s.replace("T", " ") + suffix.decode() for s in spelled]
    stamps: list[str] = text.astype(f"U{26 + len(suffix)}").tolist()
    return stamps


def _iso_digits(us: np.ndarray, suffix: bytes) -> np.ndarray | None:
    """Microseconds since the epoch as 'YYYY-MM-DD HH:MM:SS.ffffff' + suffix, ASCII bytes, each
    digit computed for the whole array at once: `np.datetime_as_string` took ~0.5 µs a value, a
    few seconds of a 5M-event load; this a fifth of that. Written a character position at a time
    (one contiguous row each), turned into one string per value at the end. None when a year
    has other than four digits."""
    days, in_day = np.divmod(us, 86_400_000_000)
    seconds, micro = (part.astype(np.int32) for part in np.divmod(in_day, 1_000_000))
    year, month, day = (part.astype(np.int32) for part in _civil(days))
    if len(year) and (year.min() < 1000 or year.max() > 9999):
        return None
    minutes, second = np.divmod(seconds, 60)
    hour, minute = np.divmod(minutes, 60)
    width = 26 + len(suffix)
    out = np.empty((width, len(us)), dtype=np.uint8)
    for start, value, digits in (
        (0, year, 4),
        (5, month, 2),
        (8, day, 2),
        (11, hour, 2),
        (14, minute, 2),
        (17, second, 2),
        (20, micro, 6),
    ):
        for k in range(digits - 1, -1, -1):
            value, digit = np.divmod(value, 10)
            np.add(digit, ord("0"), out=out[start + k], casting="unsafe")
    for at, char in zip((4, 7, 10, 13, 16, 19, *range(26, width)), b"-- ::." + suffix, strict=True):
        out[at] = char
    return np.ascontiguousarray(out.T).view(f"S{width}").ravel()


def _civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Proleptic Gregorian (year, month, day) of days since 1970-01-01: the days-to-civil
    arithmetic of the C++ <chrono> proposal (H. Hinnant, "chrono-Compatible Low-Level Date
    Algorithms"), on whole arrays."""
    z = days + 719_468  # days since 0000-03-01
    era = z // 146_097
    doe = z - era * 146_097  # day of the 400-year era, 0..146096
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # day of the year starting 1 March
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day
