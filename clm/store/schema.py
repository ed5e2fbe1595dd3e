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
    text = np.datetime_as_string(moments.astype("datetime64[us]"), unit="us")
    text.view(np.uint32).reshape(len(text), -1)[:, 10] = ord(" ")  # 'T' → ' ', as isoformat(sep=" ")
    stamps: list[str] = text.tolist()
    return stamps if dialect_name == "sqlite" else [s + "+00" for s in stamps]
