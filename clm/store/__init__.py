"""The database: engine (SQLite by default, PostgreSQL by URL), shared metadata and types, bulk writes."""

from clm.store.bulk import insert_ignore_many, insert_many, reserve_ids, upsert_many
from clm.store.engine import is_postgres, make_engine, normalize_url
from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

__all__ = [
    "JSONType",
    "PKType",
    "UTCDateTime",
    "insert_ignore_many",
    "insert_many",
    "is_postgres",
    "make_engine",
    "metadata",
    "normalize_url",
    "reserve_ids",
    "upsert_many",
]
