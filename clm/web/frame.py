"""The console's frame: sign-in and sign-out, one's own password, the language switch, the
global search, and a page per menu section (an empty state naming today's commands until the
section's own page is built)."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from clm.auth.users import (
    LOCK_MINUTES,
    MAX_FAILURES,
    MIN_PASSWORD_LENGTH,
    SignInRefused,
    change_password,
    disable_user,
    list_users,
    record_sign_out,
    sign_in,
)
from clm.core.errors import Forbidden, InvalidInput, NotFound
from clm.customers.search import search_customers
from clm.customers.service import list_customers
from clm.web.access import Console, page, safe_next
from clm.web.i18n import LANGUAGE_COOKIE, LOCALES, N_
from clm.web.menu import BY_KEY, SECTIONS

# A wrong password is answered only after this many seconds, so guessing is slow even before
# the lock-out (MAX_FAILURES in a row lock the account for LOCK_MINUTES).
FAILED_SIGN_IN_DELAY = 1.0
SEARCH_LIMIT = 50

router = APIRouter(include_in_schema=False, tags=["console"])


def sees_contact_details(console: Console) -> bool:
    """Admins and marketers see email and phone in full; analysts and viewers see them masked."""
    return console.user is not None and console.user.can("write")


@router.get("/login", response_class=HTMLResponse)
def login_form(
    console: Annotated[Console, Depends(page(None))],
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    if console.user is not None:
        return console.redirect(safe_next(next))
    return console.render("login.html", next=safe_next(next), email="")


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    console: Annotated[Console, Depends(page(None))],
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    source = request.client.host if request.client else None
    try:
        user = await run_in_threadpool(sign_in, console.engine, email, password, source)
    except SignInRefused as refused:
        await asyncio.sleep(FAILED_SIGN_IN_DELAY)
        status = 429 if refused.reason == "locked" else 401
        return console.render(
            "login.html",
            status,
            next=safe_next(next),
            email=email,
            error=refused.reason,
            locked_until=refused.locked_until,
            lock_minutes=LOCK_MINUTES,
            max_failures=MAX_FAILURES,
        )
    console.session.sign_in(user.id, user.session_version)
    return console.redirect(safe_next(next))


@router.post("/logout")
def logout(console: Annotated[Console, Depends(page("read"))]) -> Response:
    assert console.user is not None
    record_sign_out(console.engine, console.user)
    console.session.sign_out()
    return console.redirect("/login")


@router.post("/lang")
def switch_language(
    console: Annotated[Console, Depends(page(None))],
    lang: Annotated[str, Form(max_length=10)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    response = console.redirect(safe_next(next))
    if lang in LOCALES:
        response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return response


@router.get("/account/password", response_class=HTMLResponse)
def password_form(console: Annotated[Console, Depends(page("read"))]) -> Response:
    console.crumbs = [(N_("Account"), None), (N_("Change password"), None)]
    return console.render("password.html", min_length=MIN_PASSWORD_LENGTH)


@router.post("/account/password", response_class=HTMLResponse)
def password_change(
    console: Annotated[Console, Depends(page("read"))],
    current: Annotated[str, Form(max_length=1000)] = "",
    new: Annotated[str, Form(max_length=1000)] = "",
    confirm: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    assert console.user is not None
    console.crumbs = [(N_("Account"), None), (N_("Change password"), None)]
    error = None
    if new != confirm:
        error = "mismatch"
    else:
        try:
            user = change_password(console.engine, console.user.id, current, new)
        except Forbidden:
            error = "current"
        except InvalidInput:
            error = "short"
        else:
            console.session.sign_in(user.id, user.session_version)  # this session stays, others end
            return console.render("password.html", min_length=MIN_PASSWORD_LENGTH, done=True)
    return console.render("password.html", 422, min_length=MIN_PASSWORD_LENGTH, error=error)


@router.get("/search", response_class=HTMLResponse)
def search(
    console: Annotated[Console, Depends(page("read", "customers"))],
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    console.crumbs = [(N_("Customers"), "/customers"), (N_("Search"), None)]
    found = search_customers(console.engine, q, limit=SEARCH_LIMIT) if q.strip() else []
    empty_store = not found and not list_customers(console.engine, limit=1)
    return console.render(
        "search.html",
        q=q,
        found=found,
        full=sees_contact_details(console),
        empty_store=empty_store,
        limit=SEARCH_LIMIT,
    )


@router.get("/settings", response_class=HTMLResponse)
def settings_page(console: Annotated[Console, Depends(page("admin", "settings"))]) -> Response:
    console.crumbs = [(N_("Settings"), None)]
    return console.render("settings.html", users=list_users(console.engine), section=BY_KEY["settings"])


@router.post("/settings/users/disable")
def settings_disable_user(
    console: Annotated[Console, Depends(page("admin", "settings"))],
    email: Annotated[str, Form(max_length=320)],
) -> Response:
    assert console.user is not None
    if email.strip().lower() != console.user.email:  # an admin does not lock themselves out here
        with suppress(NotFound):  # gone already: the list shows what is there
            disable_user(console.engine, email, actor=console.user.actor)
    return console.redirect("/settings")


def _coming(key: str) -> None:
    section = BY_KEY[key]
    allowed = page(section.permission, key)

    def coming_page(console: Console = Depends(allowed)) -> Response:
        console.crumbs = [(section.label, None)]
        return console.render("coming.html", section=section)

    coming_page.__name__ = f"{key}_page"
    router.add_api_route(section.path, coming_page, methods=["GET"], response_class=HTMLResponse)


for _section in SECTIONS:
    if not _section.built:
        _coming(_section.key)
