"""Console users: people who sign in with an email and a password (Argon2id), with the same roles
and rights as API keys; failed sign-ins lock the account for a while.

Lock-out: after `MAX_FAILURES` wrong passwords in a row the account is locked for
`LOCK_MINUTES`; while locked even the right password is refused. Every sign-in and every failure
is written to the audit log (`user.sign_in`, `user.sign_in_failed`), in the same transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from clm.auth.service import PERMISSIONS, ROLES, record_audit
from clm.auth.tables import server_secrets, users
from clm.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from clm.core.timeutil import utcnow
from clm.store.engine import reading

MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()  # Argon2id with the library's current recommended costs
# Checked against when the email is unknown, so an unknown address costs as much time as a known one.
_UNKNOWN = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    """A console user as pages and commands see it (never the password hash)."""

    id: int
    email: str
    display_name: str
    role: str
    disabled: bool
    locked_until: datetime | None
    session_version: int
    created_at: datetime
    last_sign_in_at: datetime | None

    @property
    def actor(self) -> str:
        return f"user:{self.id}:{self.email}"

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


class SignInRefused(Exception):
    """A sign-in that did not succeed; `reason` is `invalid` (wrong email or password, said the
    same way for both), `locked` or `disabled`."""

    def __init__(self, reason: str, locked_until: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.locked_until = locked_until


def _user(row: object) -> User:
    r = row._mapping  # type: ignore[attr-defined]
    return User(
        r["id"],
        r["email"],
        r["display_name"],
        r["role"],
        bool(r["disabled"]),
        r["locked_until"],
        r["session_version"],
        r["created_at"],
        r["last_sign_in_at"],
    )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(ROLES)}", "role")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"must be at least {MIN_PASSWORD_LENGTH} characters", "password")
    if len(password) > 1000:
        raise InvalidInput("must be at most 1000 characters", "password")


def _normal_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise InvalidInput("is not an email address", "email")
    return email


def create_user(
    engine: Engine, email: str, role: str, password: str, display_name: str | None = None, actor: str = "cli"
) -> User:
    """Add a user who can sign in to the console; the email must be new."""
    email = _normal_email(email)
    _check_role(role)
    _check_password(password)
    name = (display_name or "").strip() or email.split("@")[0]
    now = utcnow()
    with engine.begin() as conn:
        if conn.execute(select(users.c.id).where(users.c.email == email)).first() is not None:
            raise Conflict(f"a user with email {email} already exists")
        user_id = conn.execute(
            insert(users)
            .values(
                email=email,
                display_name=name[:200],
                role=role,
                password_hash=_hasher.hash(password),
                disabled=False,
                failed_attempts=0,
                session_version=1,
                created_at=now,
            )
            .returning(users.c.id)
        ).scalar_one()
        record_audit(conn, actor, "user.create", "user", str(user_id), {"email": email, "role": role})
        return _user(conn.execute(select(users).where(users.c.id == user_id)).one())


def list_users(engine: Engine) -> list[User]:
    with reading(engine) as conn:
        return [_user(r) for r in conn.execute(select(users).order_by(users.c.id))]


def get_user(engine: Engine, user_id: int) -> User | None:
    """The user behind a session, or None when there is no such user."""
    with reading(engine) as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return _user(row) if row is not None else None


def find_user(engine: Engine, email: str) -> User:
    with reading(engine) as conn:
        row = conn.execute(select(users).where(users.c.email == email.strip().lower())).first()
    if row is None:
        raise NotFound(f"no user with email {email.strip()}")
    return _user(row)


def set_role(engine: Engine, email: str, role: str, actor: str = "cli") -> User:
    _check_role(role)
    user = find_user(engine, email)
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user.id).values(role=role))
        record_audit(conn, actor, "user.set_role", "user", str(user.id), {"from": user.role, "to": role})
    return find_user(engine, email)


def disable_user(engine: Engine, email: str, actor: str = "cli") -> User:
    """Stop a user from signing in; their open sessions end at their next request."""
    user = find_user(engine, email)
    with engine.begin() as conn:
        conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(disabled=True, session_version=users.c.session_version + 1)
        )
        record_audit(conn, actor, "user.disable", "user", str(user.id), None)
    return find_user(engine, email)


def sign_in(engine: Engine, email: str, password: str, source: str | None = None) -> User:
    """The user whose email and password these are; SignInRefused otherwise. Wrong passwords
    count towards the lock-out; a success resets the count. The failure and its audit row are
    committed before the refusal is raised."""
    with engine.begin() as conn:
        outcome = _attempt(conn, email.strip().lower()[:320], password, source)
    if isinstance(outcome, SignInRefused):
        raise outcome
    return get_user(engine, outcome) or find_user(engine, email)


def _attempt(conn: Connection, address: str, password: str, source: str | None) -> int | SignInRefused:
    now = utcnow()
    row = conn.execute(select(users).where(users.c.email == address)).first()
    details: dict[str, object] = {"email": address, "source": source}

    def refuse(
        reason: str, user: User | None, locked: datetime | None = None, **more: object
    ) -> SignInRefused:
        record_audit(
            conn,
            user.actor if user else "anonymous",
            "user.sign_in_failed",
            "user",
            str(user.id) if user else None,
            {**details, "reason": reason, **more},
        )
        return SignInRefused(reason, locked)

    if row is None:
        _verify(_UNKNOWN, password)
        return refuse("invalid", None)
    user = _user(row)
    if user.disabled:
        return refuse("disabled", user)
    if user.locked_until is not None and user.locked_until > now:
        return refuse("locked", user, user.locked_until)
    stored = row._mapping["password_hash"]
    if not _verify(stored, password):
        failures = conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(failed_attempts=users.c.failed_attempts + 1)
            .returning(users.c.failed_attempts)
        ).scalar_one()
        if failures < MAX_FAILURES:
            return refuse("invalid", user, failures=int(failures))
        locked = now + timedelta(minutes=LOCK_MINUTES)
        conn.execute(
            update(users).where(users.c.id == user.id).values(failed_attempts=0, locked_until=locked)
        )
        return refuse("locked", user, locked, failures=int(failures))
    values: dict[str, object] = {"failed_attempts": 0, "locked_until": None, "last_sign_in_at": now}
    if _hasher.check_needs_rehash(stored):
        values["password_hash"] = _hasher.hash(password)
    conn.execute(update(users).where(users.c.id == user.id).values(**values))
    record_audit(conn, user.actor, "user.sign_in", "user", str(user.id), details)
    return user.id


def record_sign_out(engine: Engine, user: User) -> None:
    with engine.begin() as conn:
        record_audit(conn, user.actor, "user.sign_out", "user", str(user.id), None)


def change_password(engine: Engine, user_id: int, current: str, new: str) -> User:
    """Change one's own password (the current one is asked again); other sessions end."""
    _check_password(new)
    with engine.begin() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"no user with id {user_id}")
        user = _user(row)
        if not _verify(row._mapping["password_hash"], current):
            record_audit(conn, user.actor, "user.password_change_failed", "user", str(user.id), None)
            wrong = True
        else:
            wrong = False
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=_hasher.hash(new), session_version=users.c.session_version + 1)
            )
            record_audit(conn, user.actor, "user.password_change", "user", str(user.id), None)
    if wrong:
        raise Forbidden("the current password is not right")
    return get_user(engine, user_id) or user


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def server_secret(engine: Engine, name: str) -> str:
    """A random secret this server keeps in its store (made on first use), so every process and
    every restart signs and checks session cookies with the same key."""
    with reading(engine) as conn:
        value = conn.execute(select(server_secrets.c.value).where(server_secrets.c.name == name)).scalar()
    if value is not None:
        return str(value)
    try:
        with engine.begin() as conn:
            conn.execute(insert(server_secrets).values(name=name, value=secrets.token_urlsafe(48)))
    except IntegrityError:  # another process made it first: use theirs
        pass
    with engine.connect() as conn:
        return str(
            conn.execute(select(server_secrets.c.value).where(server_secrets.c.name == name)).scalar_one()
        )
