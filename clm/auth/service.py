"""API keys and roles. A key is shown once at creation and only its SHA-256 is stored."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError

from clm.auth.tables import api_keys, audit_log
from clm.core.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from clm.core.timeutil import utcnow
from clm.core.tokens import token_digest
from clm.store.engine import is_busy, reading, writing_unless_busy

ROLES = ("admin", "marketer", "analyst", "viewer")

# What each role may do. "read": every GET; "write": change customer data (ingest, upsert,
# merge); "admin": manage users and keys.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "write", "admin"}),
    "marketer": frozenset({"read", "write"}),
    "analyst": frozenset({"read"}),
    "viewer": frozenset({"read"}),
}

_KEY_PREFIX = "clm_"
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """The caller behind a request: which key, which role."""

    key_id: int
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"apikey:{self.key_id}:{self.name}"

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def create_api_key(engine: Engine, name: str, role: str, actor: str = "cli") -> tuple[ApiKey, str]:
    """Create a key; return it with its secret, which is never retrievable again."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(ROLES)}", "role")
    if not name.strip():
        raise InvalidInput("must not be empty", "name")
    prefix = secrets.token_hex(6)
    token = f"{_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    with engine.begin() as conn:
        key_id = conn.execute(
            insert(api_keys)
            .values(name=name.strip(), role=role, prefix=prefix, key_hash=token_digest(token), created_at=now)
            .returning(api_keys.c.id)
        ).scalar_one()
        record_audit(conn, actor, "apikey.create", "api_key", str(key_id), {"role": role, "name": name})
    return ApiKey(key_id, name.strip(), role, prefix, now, None, None), token


def list_api_keys(engine: Engine) -> list[ApiKey]:
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings()
        return [
            ApiKey(
                r["id"],
                r["name"],
                r["role"],
                r["prefix"],
                r["created_at"],
                r["last_used_at"],
                r["revoked_at"],
            )
            for r in rows
        ]


def revoke_api_key(engine: Engine, key_id: int, actor: str = "cli") -> None:
    with engine.begin() as conn:
        done = conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        ).rowcount
        if not done:
            raise NotFound(f"no active API key with id {key_id}")
        record_audit(conn, actor, "apikey.revoke", "api_key", str(key_id), None)


def authenticate(engine: Engine, authorization: str | None) -> Principal:
    """Check an `Authorization: Bearer <key>` header value and return who is calling."""
    if not authorization:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("malformed Authorization header: expected 'Bearer <key>'")
    parts = token.split("_")
    if not token.startswith(_KEY_PREFIX) or len(parts) < 3:
        raise Unauthorized("invalid API key")
    prefix = parts[1]
    with reading(engine) as conn:  # on SQLite, no waiting for the write lock to check a key
        row = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).mappings().first()
    if row is None or not hmac.compare_digest(row["key_hash"], token_digest(token)):
        raise Unauthorized("invalid API key")
    if row["revoked_at"] is not None:
        raise Unauthorized("this API key has been revoked")
    now = utcnow()
    if row["last_used_at"] is None or now - row["last_used_at"] > _TOUCH_EVERY:
        try:
            with writing_unless_busy(engine) as conn:  # a request never waits to note a key's use
                conn.execute(update(api_keys).where(api_keys.c.id == row["id"]).values(last_used_at=now))
        except DBAPIError as exc:  # a usage time may wait for the next call; the call may not
            if not is_busy(exc):
                raise
    return Principal(row["id"], row["name"], row["role"])


def require_permission(principal: Principal, permission: str) -> None:
    if not principal.can(permission):
        raise Forbidden(
            f"role '{principal.role}' may not {permission}; ask an admin for a key with more rights"
        )


def record_audit(
    conn: Connection,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | None,
    details: dict[str, Any] | None,
) -> None:
    """Append one audit record inside the caller's transaction."""
    conn.execute(
        insert(audit_log).values(
            at=utcnow(),
            actor=actor,
            action=action,
            entity=entity,
            entity_id=entity_id,
            details=details,
        )
    )


def record_audits(
    conn: Connection, actor: str, action: str, entity: str, items: Sequence[tuple[str, dict[str, Any] | None]]
) -> None:
    """`record_audit` for many entities at once ((entity id, details) pairs): one statement."""
    if not items:
        return
    at = utcnow()
    conn.execute(
        insert(audit_log),
        [
            {"at": at, "actor": actor, "action": action, "entity": entity, "entity_id": eid, "details": d}
            for eid, d in items
        ],
    )
