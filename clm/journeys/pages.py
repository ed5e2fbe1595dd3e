"""Pages and links a message carries: one-click unsubscribe (RFC 8058: the List-Unsubscribe-Post
header lets a mail client unsubscribe with a POST), the open pixel and tracked links, which come
back as `email_open` / `email_click` events on the profile."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine, select

from clm.core.followups import refresh_customers
from clm.core.timeutil import utcnow
from clm.core.tokens import token_digest
from clm.customers.service import set_consent
from clm.events.schemas import SYSTEM_ID_PREFIX
from clm.events.tables import events
from clm.journeys.links import is_genuine, link_key
from clm.journeys.tables import outbox
from clm.store.bulk import insert_ignore_many
from clm.store.schema import to_db_timestamp

router = APIRouter(include_in_schema=False)
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


def _message(engine: Engine, token: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(outbox).where(outbox.c.unsubscribe_hash == token_digest(token))).first()


def _event(engine: Engine, row: Any, kind: str, suffix: str, properties: dict[str, Any]) -> None:
    now = to_db_timestamp(utcnow(), engine.dialect.name)
    event_id = f"{SYSTEM_ID_PREFIX}{kind}:{row.id}{suffix}"
    props = {"message": row.key, "template": row.template, "journey_id": row.journey_id, **properties}
    with engine.begin() as conn:
        insert_ignore_many(
            conn,
            events,
            ("event_id", "customer_id", "type", "channel", "occurred_at", "received_at", "properties"),
            [(event_id, row.customer_id, kind, row.channel, now, now, orjson.dumps(props).decode())],
            ("event_id",),
        )


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    row = _message(request.app.state.engine, token)
    if row is None:
        return HTMLResponse(_PAGE.format(lang="en", title="This link is not valid", body=""), 404)
    body = (
        f"<p>Stop receiving {row.channel} messages from us? / 不再接收我们的消息?</p>"
        '<form method="post"><button type="submit">Unsubscribe / 退订</button></form>'
    )
    return HTMLResponse(_PAGE.format(lang="en", title="Unsubscribe / 退订", body=body))


@router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(request: Request, token: str) -> HTMLResponse:
    """One click (a mail client's POST or the button): consent for the channel is withdrawn."""
    engine = request.app.state.engine
    row = _message(engine, token)
    if row is None:
        return HTMLResponse(_PAGE.format(lang="en", title="This link is not valid", body=""), 404)
    set_consent(engine, row.customer_id, row.channel, False, source=f"unsubscribe link ({row.key})")
    refresh_customers(request.app.state, engine, [row.customer_id], {"consent"})
    body = "<p>You will not receive these messages any more. / 您将不再收到这类消息。</p>"
    return HTMLResponse(_PAGE.format(lang="en", title="Unsubscribed / 已退订", body=body))


@router.get("/t/o/{token}")
def opened(request: Request, token: str) -> Response:
    engine = request.app.state.engine
    row = _message(engine, token)
    if row is not None:
        _event(engine, row, "email_open", "", {})
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/t/c/{token}")
def clicked(request: Request, token: str, u: str = "", s: str = "") -> Response:
    """Goes on to `u` only when a message of ours carried exactly this link (see links.py):
    a changed address, an unknown token or an unsigned link of the old form is a 404."""
    engine = request.app.state.engine
    if not u.startswith(("http://", "https://")) or not s or not is_genuine(link_key(engine), token, u, s):
        return HTMLResponse(_PAGE.format(lang="en", title="This link is not valid / 链接无效", body=""), 404)
    row = _message(engine, token)
    if row is None:
        return HTMLResponse(_PAGE.format(lang="en", title="This link is not valid / 链接无效", body=""), 404)
    kind = "email_click" if row.channel == "email" else f"{row.channel}_click"
    _event(engine, row, kind, ":" + hashlib.sha256(u.encode()).hexdigest()[:12], {"url": u})
    return RedirectResponse(u, status_code=302)
