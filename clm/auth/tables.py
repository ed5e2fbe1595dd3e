"""Tables of the auth domain: API keys (stored hashed), console users, the audit log and the
server's own secrets (the key that signs console sessions)."""

from sqlalchemy import Boolean, Column, Index, Integer, String, Table

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

users = Table(
    "users",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # lower-cased
    Column("display_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=False),  # Argon2id, PHC string
    Column("disabled", Boolean, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", UTCDateTime),
    # bumped when the password changes or the user is disabled: older session cookies stop working
    Column("session_version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_sign_in_at", UTCDateTime),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
)
