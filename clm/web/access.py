"""Who may see a console page or do a console action, checked on the server for every request:
the signed-in user (from the session cookie), their role's permission, and the CSRF token of
every request that changes something."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from clm.auth.users import User, get_user
from clm.web import session as sessions
from clm.web.i18n import LANGUAGE_COOKIE, pick_locale, render
from clm.web.menu import SECTIONS, Section

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ConsoleRedirect(Exception):
    """Send the browser elsewhere (to the sign-in page, mostly)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class ConsoleDenied(Exception):
    """A refusal shown as a page: `reason` is `csrf` or `role`."""

    def __init__(self, console: Console, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.console, self.reason, self.status = console, reason, status


@dataclass
class Console:
    """One console request: who, in which language, with which session."""

    request: Request
    session: sessions.Session
    locale: str
    user: User | None
    section: str | None = None
    crumbs: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def engine(self) -> Any:
        return self.request.app.state.engine

    def visible_sections(self) -> list[Section]:
        return [s for s in SECTIONS if self.user is not None and self.user.can(s.permission)]

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = render(
            self.locale,
            template,
            {
                "console": self,
                "user": self.user,
                "csrf_token": self.session.csrf,
                "csrf_field": sessions.CSRF_FIELD,
                "path": self.request.url.path,
                "sections": self.visible_sections(),
                "current": self.section,
                "crumbs": self.crumbs,
                **context,
            },
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        sessions.save(self.request, response, self.session)
        return response

    def redirect(self, location: str) -> RedirectResponse:
        response = RedirectResponse(location, status_code=303)
        sessions.save(self.request, response, self.session)
        return response


def safe_next(target: str | None, default: str = "/") -> str:
    """A place in this console to go to after signing in: a local path, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def page(permission: str | None, section: str | None = None) -> Callable[[Request], Awaitable[Console]]:
    """Dependency for a console route: `permission` (read, write, admin) or None for a public page
    such as /login. Requests other than GET/HEAD must carry the session's CSRF token (form field
    `csrf_token` or header `X-CSRF-Token`), public ones too."""

    async def dependency(request: Request) -> Console:
        session = sessions.load(request)
        locale = pick_locale(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
        user = None
        if session.user_id is not None:
            user = await run_in_threadpool(get_user, request.app.state.engine, int(session.user_id))
            expired = time.time() - session.signed_in_at > sessions.SESSION_HOURS * 3600
            if user is None or user.disabled or user.session_version != session.version or expired:
                user = None
                session.sign_out()
        console = Console(request, session, locale, user, section)
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(sessions.CSRF_HEADER)
            if not sent and "form" in request.headers.get("content-type", ""):
                sent = (await request.form()).get(sessions.CSRF_FIELD)  # type: ignore[assignment]
            if not session.csrf_matches(sent if isinstance(sent, str) else None):
                raise ConsoleDenied(console, "csrf")
        if permission is None:
            return console
        if user is None:
            there = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise ConsoleRedirect("/login" + ("" if there == "/" else f"?next={quote(there)}"))
        if not user.can(permission):
            raise ConsoleDenied(console, "role")
        return console

    dependency.permission = permission  # type: ignore[attr-defined]  # read by the permission test
    return dependency
