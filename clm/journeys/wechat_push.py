"""What WeChat pushes to the Official Account's server URL (服务器配置 → URL), as far as messages
are concerned: the results of template and subscribe messages, and people leaving.

WeChat signs every request to the URL the same way: `signature` = SHA-1 of the account's Token
(CLM_WECHAT_TOKEN, set beside the URL in the console), `timestamp` and `nonce` sorted and joined,
in the query string. The first request, when the URL is saved, is a GET with `echostr`, answered
with that string as it came; later ones are POSTs of one XML message each, answered `success`.
Only the plain-text mode (明文模式) and the compatible mode (兼容模式) are read; the safe mode
(安全模式, the whole message encrypted) is refused with a 400 saying so.

- TEMPLATESENDJOBFINISH (模板消息发送结果): `MsgID` (the msgid template/send returned, kept as the
  outbox's provider_ref) and `Status`: `success` → delivered; `failed:user block` → not delivered,
  the person refused the account's messages, so their `wechat` consent is withdrawn; `failed:
  system failed` (or anything else) → not delivered.
- subscribe_msg_sent_event (订阅通知发送结果): a `List` per message of `TemplateId`, `MsgID`,
  `ErrorCode` (0 delivered) and `ErrorStatus`; 43101 or a status naming refusal/block withdraws
  the consent. bizsend returns no msgid as WeChat documents it, so these only find a message
  when WeChat did return one.
- unsubscribe (取消关注), and subscribe_msg_change_event with `reject` (the person turned a
  notification off): the profile holding the sender's OpenID loses its `wechat` consent.

Matched results go through `clm.journeys.receipts.record_receipts` as the SMS receipts do: the
outbox row becomes delivered / failed, and `wechat_delivered` / `wechat_undelivered` goes on the
profile. WeChat pushes again when it gets no answer within 5 seconds: a result is written once.
The token is compared in constant time and never shown."""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from clm.core.errors import Forbidden, InvalidInput, Unauthorized
from clm.core.settings import settings
from clm.core.timeutil import utcnow
from clm.customers.service import find_customers, set_consent
from clm.journeys.receipts import Receipt, record_receipts

MAX_BODY = 64 * 1024  # one event is a few hundred bytes
REFUSED_CODES = frozenset({"43101"})


def signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's request signature: SHA-1 of token, timestamp and nonce, sorted and joined."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()


def _check(signature_: str, timestamp: str, nonce: str) -> None:
    token = settings().wechat_token
    if not token:
        raise Forbidden("WeChat pushes are off: set CLM_WECHAT_TOKEN to the Token of the server URL")
    if not signature_:
        raise Unauthorized("a WeChat push carries signature, timestamp and nonce in its URL")
    if not hmac.compare_digest(signature(token, timestamp, nonce).encode(), signature_.lower().encode()):
        raise Unauthorized("wrong WeChat signature (is CLM_WECHAT_TOKEN the Token set in the console?)")


def _at(root: ET.Element) -> datetime:
    try:
        return datetime.fromtimestamp(int(root.findtext("CreateTime") or ""), UTC)
    except (ValueError, OverflowError, OSError):
        return utcnow()


def parse(body: bytes) -> ET.Element:
    """One pushed message (no DOCTYPE: WeChat never sends one, and entities are refused)."""
    if len(body) > MAX_BODY:
        raise InvalidInput(f"a WeChat push is at most {MAX_BODY // 1024} KB", "body")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise InvalidInput("a WeChat push has no DOCTYPE or entities", "body")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise InvalidInput(f"a WeChat push is one XML message: {exc}", "body") from None
    if root.find("Encrypt") is not None and root.find("MsgType") is None:
        raise InvalidInput(
            "the push is encrypted (安全模式): set the account's message encryption to 明文模式 or 兼容模式",
            "body",
        )
    return root


def receipts_of(root: ET.Element) -> list[Receipt]:
    """The delivery results in one pushed message (none for other events)."""
    event, at = (root.findtext("Event") or "").strip(), _at(root)
    if event == "TEMPLATESENDJOBFINISH":
        status = (root.findtext("Status") or "").strip()
        msg_id = (root.findtext("MsgID") or "").strip()
        delivered = status == "success"
        refused = "user block" in status
        return [Receipt("wechat", None, msg_id or None, delivered, status[:64], "", at, "wechat", refused)]
    if event == "subscribe_msg_sent_event":
        found = []
        for item in root.iter("List"):
            code = (item.findtext("ErrorCode") or "").strip()
            status = (item.findtext("ErrorStatus") or "").strip()
            msg_id = (item.findtext("MsgID") or "").strip()
            refused = code in REFUSED_CODES or "refuse" in status or "block" in status
            ok = code == "0"
            found.append(
                Receipt("wechat", None, msg_id or None, ok, code[:64], status[:200], at, "wechat", refused)
            )
        return found
    return []


def withdrawals_of(root: ET.Element) -> str | None:
    """Why the sender no longer wants the account's messages, when the message says so."""
    event = (root.findtext("Event") or "").strip()
    if event == "unsubscribe":
        return "wechat: unfollowed the account"
    if event == "subscribe_msg_change_event":
        rejected = [
            (item.findtext("TemplateId") or "").strip()
            for item in root.iter("List")
            if (item.findtext("SubscribeStatusString") or "").strip() == "reject"
        ]
        if rejected:
            return f"wechat: turned off notification {rejected[0]}"[:200]
    return None


def handle(engine: Engine, root: ET.Element) -> dict[str, int]:
    """Record what one pushed message says; returns counts (matched, unknown, withdrawn)."""
    matched, unknown = record_receipts(engine, receipts_of(root))
    withdrawn = 0
    why = withdrawals_of(root)
    open_id = (root.findtext("FromUserName") or "").strip()
    app_id = settings().wechat_app_id
    if why and open_id and app_id:
        try:
            people = find_customers(engine, {"wechat_openid": f"{app_id}:{open_id}"})
        except InvalidInput:  # not an OpenID we could hold: nobody to withdraw
            people = []
        for person in people:
            set_consent(engine, person.id, "wechat", False, source=why, at=_at(root))
            withdrawn += 1
    return {"matched": matched, "unknown": unknown, "withdrawn": withdrawn}


router = APIRouter(prefix="/hooks/wechat", tags=["channels"])
Signed = Annotated[str, Query(max_length=100)]


# the answers are plain text, as WeChat reads them; errors stay JSON like every other route's
TEXT: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}


@router.get("", response_class=Response, responses=TEXT)
def verify(
    signature: Signed = "", timestamp: Signed = "", nonce: Signed = "", echostr: Signed = ""
) -> Response:
    """WeChat's check of the server URL: `echostr` back when the signature is right."""
    _check(signature, timestamp, nonce)
    return PlainTextResponse(echostr)


@router.post("", response_class=Response, responses=TEXT)
async def push(
    request: Request, signature: Signed = "", timestamp: Signed = "", nonce: Signed = ""
) -> Response:
    """One message WeChat pushes (XML): results of template and subscribe messages, unfollows."""
    _check(signature, timestamp, nonce)
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise InvalidInput(f"a WeChat push is at most {MAX_BODY // 1024} KB", "body")
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/")
    ):
        # read as a form before this point (clm.api.errors), so its bytes are gone: not WeChat's
        raise InvalidInput("a WeChat push is one XML message (Content-Type text/xml), not a form", "body")
    root = parse(await request.body())
    await run_in_threadpool(handle, request.app.state.engine, root)
    return PlainTextResponse("success")
