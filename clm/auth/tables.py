"""Tables of the auth domain: API keys (stored hashed) and the audit log."""

from sqlalchemy import Column, Index, String, Table

from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("entity", String(100), nullable=False),
    Column("entity_id", String(200)),
    Column("details", JSONType),
    Index("ix_audit_log_entity", "entity", "entity_id"),
)
