"""A test send of a journey's message to an address a person types, before the journey goes live:
the step's template rendered with a sample customer (or a real one, by id) and handed to the
channel's transport now. It goes around the outbox on purpose: it is not a customer's message, so
it counts in no figure, passes no guardrail and never repeats; it is written to the audit log."""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from clm.auth.service import record_audit
from clm.channels.base import OutboundMessage, transport
from clm.channels.templates import get_template, render
from clm.core.errors import InvalidInput, NotFound
from clm.core.settings import settings
from clm.core.timeutil import utcnow
from clm.journeys.context import build_contexts, profiles
from clm.journeys.store import get_journey

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9 ()-]{6,20}$")
SAMPLE_EVENT = {"sku": "SAMPLE-1", "name": "Sample product", "price": 99.0, "url": "https://example.com/p/1"}


@dataclass(frozen=True)
class TestSend:
    step: str
    channel: str
    to: str
    subject: str
    ok: bool
    detail: str


def _sample_context(address: str, channel: str) -> dict[str, Any]:
    customer = {
        "id": 0,
        "first_name": "Test",
        "last_name": "",
        "email": address if channel == "email" else None,
        "phone": address if channel == "sms" else None,
        "attr": {},
    }
    return {
        "customer": customer,
        "loyalty": {},
        "shop": {"name": settings().shop_name, "url": settings().public_url},
        "event": dict(SAMPLE_EVENT),
        "variant": None,
        "journey": None,
        "coupon": "TEST-COUPON",
        "recommendations": [],
        "survey_link": f"{settings().public_url}/s/test",
    }


def send_test(
    engine: Engine,
    journey: str,
    step_id: str,
    address: str,
    *,
    actor: str,
    lang: str = "zh",
    customer_id: int | None = None,
) -> TestSend:
    """Render the send step's template (for `customer_id`, else a sample customer) in `lang` and
    send it to `address` now, marked as a test in the subject. Raises InvalidInput for an address
    the channel cannot use or a step that sends nothing; a transport's refusal is returned."""
    _, d = get_journey(engine, journey)
    try:
        step = d.step(step_id)
    except KeyError:
        raise NotFound(f"journey {journey!r} has no step {step_id!r}") from None
    if step.action != "send":
        raise InvalidInput(f"step {step_id!r} sends no message", "step")
    channel = str(step.args["channel"])
    address = address.strip()
    if channel == "email" and not EMAIL.match(address):
        raise InvalidInput("an email address, e.g. ann@example.com", "address")
    if channel == "sms" and not PHONE.match(address):
        raise InvalidInput("a mobile number, e.g. +8613800138000", "address")
    if channel not in ("email", "sms"):
        raise InvalidInput(f"test sends go by email or SMS; this step sends by {channel}", "address")
    template = get_template(engine, str(step.args["template"]))
    now = utcnow()
    context = _sample_context(address, channel)
    if customer_id is not None:
        if customer_id not in profiles(engine, [customer_id]):
            raise NotFound(f"no customer with id {customer_id}")
        context = build_contexts(engine, [(customer_id, {"event": SAMPLE_EVENT})], now)[0]
    context["journey"] = d.name
    context["unsubscribe_url"] = f"{settings().public_url}/u/test"
    context["track"] = lambda url: url
    out = render(template, context, lang)
    subject = f"[TEST] {out.subject}" if out.subject else ""
    key = f"test:{d.name}:{step_id}:{secrets.token_hex(6)}"
    message = OutboundMessage(key, channel, address, subject, out.text, out.html)
    sender = transport(channel)
    try:
        sender.open()
        result = sender.send(message)
    except Exception as exc:  # a server that cannot be reached is the answer the person needs
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    else:
        ok, detail = result.ok, result.detail
    finally:
        with contextlib.suppress(Exception):  # closing after a failed open may fail too
            sender.close()
    with engine.begin() as conn:
        record_audit(
            conn,
            actor,
            "journey.test_send",
            "journey",
            d.name,
            {"step": step_id, "template": template.name, "to": address, "ok": ok, "detail": detail[:500]},
        )
    return TestSend(step_id, channel, address, subject, ok, detail)
