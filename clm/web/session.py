"""The console's session: one signed cookie (HttpOnly, SameSite=Lax, Secure over HTTPS) that
holds who is signed in and the CSRF token every form and htmx request must send back.

The cookie is signed with a key kept in the store (`server_secrets`), so all server processes
agree; a session lasts `SESSION_HOURS` from sign-in and ends early when the user's password
changes or the user is disabled (their `session_version` moves on)."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

from clm.auth.users import server_secret

COOKIE = "clm_session"
SESSION_HOURS = 12
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass
class Session:
    """What the cookie carries; `changed` says the response must send it again."""

    csrf: str
    user_id: int | None = None
    version: int = 0
    signed_in_at: float = 0.0
    changed: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def sign_in(self, user_id: int, version: int) -> None:
        # a new token at sign-in: a token seen before it cannot be replayed after it
        self.csrf = secrets.token_urlsafe(32)
        self.user_id, self.version, self.signed_in_at = user_id, version, time.time()
        self.changed = True

    def sign_out(self) -> None:
        self.csrf = secrets.token_urlsafe(32)
        self.user_id, self.version, self.signed_in_at = None, 0, 0.0
        self.changed = True

    def csrf_matches(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf, str(sent))


def _serializer(engine: Engine, cache: dict[str, URLSafeTimedSerializer]) -> URLSafeTimedSerializer:
    if "s" not in cache:
        cache["s"] = URLSafeTimedSerializer(server_secret(engine, "console-session"), salt="clm-console")
    return cache["s"]


def load(request: Request) -> Session:
    """The session of this request, or a fresh anonymous one (with its own CSRF token)."""
    cached = getattr(request.state, "console_session", None)
    if cached is not None:
        return cached
    state = request.app.state
    if not hasattr(state, "console_signer"):
        state.console_signer = {}
    signer = _serializer(state.engine, state.console_signer)
    session = Session(csrf=secrets.token_urlsafe(32), changed=True)
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            data = signer.loads(raw, max_age=SESSION_HOURS * 3600)
            session = Session(
                csrf=str(data["c"]),
                user_id=data.get("u"),
                version=int(data.get("v", 0)),
                signed_in_at=float(data.get("t", 0.0)),
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            pass  # expired, forged or from another key: start again signed out
    request.state.console_session = session
    return session


def save(request: Request, response: Response, session: Session) -> None:
    if not session.changed:
        return
    state = request.app.state
    signer = _serializer(state.engine, state.console_signer)
    value = signer.dumps(
        {"c": session.csrf, "u": session.user_id, "v": session.version, "t": session.signed_in_at}
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
