"""Delivery receipts (状态报告) of Alibaba Cloud and Tencent Cloud SMS: the provider pushes them to
CLM, each names a message we sent, and each becomes an outcome in the outbox and an event on the
customer's profile (`sms_delivered` / `sms_undelivered`).

- Alibaba Cloud, SmsReport in "HTTP batch push" mode (help.aliyun.com/zh/sms/developer-reference/
  smsreport-2): a JSON array of {phone_number, send_time, report_time, success, err_code, err_msg,
  sms_size, biz_id, out_id}; `out_id` is our outbox key (sent as OutId), `biz_id` the BizId SendSms
  returned. It wants {"code": 0, "msg": "接收成功"} and pushes again (1, 5, 10 minutes) otherwise.
- Tencent Cloud, "短信下发状态通知" (cloud.tencent.com/document/product/382/5807): a JSON array of
  {user_receive_time, nationcode, mobile, report_status SUCCESS|FAIL, errmsg, description, sid};
  `sid` is the SerialNo SendSms returned. It wants {"result": 0, "errmsg": "OK"}.

Neither provider signs its pushes, so the receipt URL carries a shared secret: the address set in
the provider's console is `https://CLM/hooks/sms/aliyun?token=SECRET` with SECRET the value of
CLM_SMS_RECEIPT_TOKEN (compared in constant time; unset, every push is refused). Times in
receipts are Beijing time. A receipt may come twice: the outcome and the event are written once."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy import Engine, func, or_, select, update

from clm.core.errors import Forbidden, InvalidInput, Unauthorized
from clm.core.settings import settings
from clm.core.timeutil import utcnow
from clm.customers.service import set_consent
from clm.events.schemas import SYSTEM_ID_PREFIX, ValidEvent
from clm.events.service import store_events
from clm.journeys.tables import outbox

BEIJING = ZoneInfo("Asia/Shanghai")
MAX_RECEIPTS = 1_000  # per push


@dataclass(frozen=True)
class Receipt:
    """One delivery report: the message (our key and/or the provider's id), and what happened."""

    provider: str
    key: str | None
    ref: str | None
    delivered: bool
    code: str
    text: str
    at: datetime
    channel: str = "sms"  # the outbox channel of the message: sms, or wechat (clm.journeys.wechat_push)
    refused: bool = False  # the person refused it (WeChat "failed:user block"): consent withdrawn


def _beijing(text: Any) -> datetime:
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).astimezone(UTC)
    except ValueError:
        return utcnow()


def _items(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
        raise InvalidInput("a receipt push is a JSON array of reports", "body")
    if len(body) > MAX_RECEIPTS:
        raise InvalidInput(f"more than {MAX_RECEIPTS} reports in one push", "body")
    return body


def aliyun_receipts(body: Any) -> list[Receipt]:
    return [
        Receipt(
            "aliyun",
            str(x.get("out_id") or "") or None,
            str(x.get("biz_id") or "") or None,
            x.get("success") is True or str(x.get("success")).lower() == "true",
            str(x.get("err_code") or "")[:64],
            str(x.get("err_msg") or "")[:200],
            _beijing(x.get("report_time")),
        )
        for x in _items(body)
    ]


def tencent_receipts(body: Any) -> list[Receipt]:
    return [
        Receipt(
            "tencent",
            None,
            str(x.get("sid") or "") or None,
            str(x.get("report_status", "")).upper() == "SUCCESS",
            str(x.get("errmsg") or "")[:64],
            str(x.get("description") or "")[:200],
            _beijing(x.get("user_receive_time")),
        )
        for x in _items(body)
    ]


def record_receipts(engine: Engine, receipts: list[Receipt]) -> tuple[int, int]:
    """Apply receipts to the messages they name (of the receipt's channel): delivered →
    `delivery` delivered (and `sent` if the outbox did not know it went out, `unknown`);
    undelivered → `failed` with the carrier's code. Each becomes an event on the profile
    (`sms_delivered`, `wechat_undelivered`, …); a refused one withdraws the customer's consent for
    the channel. Returns (matched, unknown receipts)."""
    if not receipts:
        return 0, 0
    keys = [r.key for r in receipts if r.key]
    refs = [r.ref for r in receipts if r.ref]
    channels = sorted({r.channel for r in receipts})
    matched = 0
    refused: list[tuple[int, str, str, datetime]] = []  # (customer, channel, why, when)
    with engine.begin() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.key, outbox.c.provider_ref, outbox.c.customer_id, outbox.c.template,
                   outbox.c.journey_id, outbox.c.channel)
            .where(outbox.c.channel.in_(channels),
                   or_(outbox.c.key.in_(keys), outbox.c.provider_ref.in_(refs)))
        ).all()  # fmt: skip
        by_key = {(r.channel, r.key): r for r in rows}
        by_ref = {(r.channel, r.provider_ref): r for r in rows if r.provider_ref}
        events: list[ValidEvent] = []
        owners: list[int] = []
        for receipt in receipts:
            ch = receipt.channel
            row = by_key.get((ch, receipt.key or "")) or by_ref.get((ch, receipt.ref or ""))
            if row is None:
                continue
            matched += 1
            kind = f"{ch}_delivered" if receipt.delivered else f"{ch}_undelivered"
            if receipt.delivered:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id, outbox.c.status.in_(("sent", "sending", "unknown")))
                    .values(
                        status="sent",
                        delivery="delivered",
                        delivered_at=receipt.at,
                        sent_at=func.coalesce(outbox.c.sent_at, receipt.at),
                        lease_until=None,
                    )
                )
            else:
                why = f"not delivered ({receipt.provider} receipt): {receipt.code} {receipt.text}".strip()
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id, outbox.c.status.in_(("sent", "sending", "unknown")))
                    .values(status="failed", delivery="undelivered", delivered_at=receipt.at, reason=why)
                )
            props = {
                "message": row.key,
                "template": row.template,
                "journey_id": row.journey_id,
                "provider": receipt.provider,
                "code": receipt.code,
            }
            events.append(ValidEvent(f"{SYSTEM_ID_PREFIX}{kind}:{row.id}", kind, ch, receipt.at, {}, props))
            owners.append(row.customer_id)
            if receipt.refused:
                why = f"{ch}: {receipt.provider} {receipt.code}".strip()
                refused.append((row.customer_id, ch, why, receipt.at))
        if events:
            store_events(conn, events, owners)
    # as an unsubscribe would, after the outcomes are written; at the report's time, so a report
    # pushed again after the person consented anew is history, not news
    for customer_id, ch, why, at in refused:
        set_consent(engine, customer_id, ch, False, source=why[:200], at=at)
    return matched, len(receipts) - matched


def _authorised(token: Annotated[str, Query(max_length=200)] = "") -> None:
    """The shared secret, checked before the body is read."""
    expected = settings().sms_receipt_token
    if not expected:
        raise Forbidden("SMS delivery receipts are off: set CLM_SMS_RECEIPT_TOKEN and give it in the URL")
    if not token:
        raise Unauthorized("the receipt URL needs ?token= (CLM_SMS_RECEIPT_TOKEN)")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("wrong receipt token")


router = APIRouter(prefix="/hooks/sms", tags=["channels"], dependencies=[Depends(_authorised)])


Reports = Annotated[list[dict[str, Any]], Body(max_length=MAX_RECEIPTS, description="the provider's reports")]


@router.post("/aliyun")
def aliyun(request: Request, reports: Reports) -> dict[str, Any]:
    """Alibaba Cloud SMS delivery receipts (SmsReport, HTTP batch push)."""
    matched, unknown = record_receipts(request.app.state.engine, aliyun_receipts(reports))
    return {"code": 0, "msg": "接收成功", "matched": matched, "unknown": unknown}


@router.post("/tencent")
def tencent(request: Request, reports: Reports) -> dict[str, Any]:
    """Tencent Cloud SMS delivery receipts (短信下发状态通知)."""
    matched, unknown = record_receipts(request.app.state.engine, tencent_receipts(reports))
    return {"result": 0, "errmsg": "OK", "matched": matched, "unknown": unknown}
