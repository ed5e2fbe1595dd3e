"""Working on a message template before it goes live: render it (saved or as being edited) for
one customer, with what a real send would give it (profile, loyalty, recommendations, the
customer's latest cart), and send one test copy to an address a person types, through the
channel's configured transport. A test copy goes to that address only: no outbox row, no
customer's frequency cap used, no open or click counted; it is audited."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from clm.auth.service import record_audit
from clm.channels.base import OutboundMessage, SendResult, Transport, transport
from clm.channels.templates import MessageTemplate, Rendered, render
from clm.core.errors import InvalidInput, NotFound
from clm.core.timeutil import utcnow
from clm.events.tables import events
from clm.journeys.context import build_contexts, language, profiles

TEST_PREFIX = "[TEST] "
# the names a template can use (journeys/context.py builds them; outbox.py adds the links)
VARIABLES = (
    "customer.first_name", "customer.last_name", "customer.email", "customer.phone", "customer.city",
    "customer.birthday", "customer.attr", "loyalty.tier_title", "loyalty.balance", "shop.name", "shop.url",
    "event", "cart", "recommendations", "coupon", "survey_link", "unsubscribe_url", "track(url)",
    "variant", "journey",
)  # fmt: skip


@dataclass(frozen=True)
class Preview:
    customer_id: int
    lang: str
    subject: str
    text: str
    html: str | None


def _sample_event(engine: Engine, customer_id: int) -> dict[str, Any]:
    """The customer's latest add-to-cart, so a cart template shows their cart."""
    with engine.connect() as conn:
        props = conn.execute(
            select(events.c.properties)
            .where(events.c.customer_id == customer_id, events.c.type == "add_to_cart")
            .order_by(events.c.occurred_at.desc())
            .limit(1)
        ).scalar()
    return dict(props or {})


def render_for(
    engine: Engine, template: MessageTemplate, customer_id: int, lang: str | None = None
) -> Preview:
    """The template as `customer_id` would get it now (in their language unless `lang` says).
    Links stay as written (no per-message tracking); the unsubscribe link is a placeholder."""
    people = profiles(engine, [customer_id])
    if customer_id not in people:
        raise NotFound(f"no customer with id {customer_id}")
    extra = {"event": _sample_event(engine, customer_id)}
    context = build_contexts(engine, [(customer_id, extra)], utcnow(), with_recommendations=True)[0]
    context["unsubscribe_url"] = f"{context['shop']['url']}/u/preview"
    context["track"] = lambda url: url
    out: Rendered = render(template, context, lang or language(people[customer_id]))
    return Preview(customer_id, out.lang, out.subject, out.text, out.html)


def send_test(
    engine: Engine,
    template: MessageTemplate,
    customer_id: int,
    address: str,
    *,
    actor: str,
    lang: str | None = None,
    sender: Transport | None = None,
) -> SendResult:
    """Render for `customer_id` and send one copy to `address` (not to the customer), subject
    marked as a test; the result says whether the transport took it. Audited."""
    address = address.strip()
    if template.channel == "email" and ("@" not in address or len(address) > 320 or " " in address):
        raise InvalidInput("an email address is needed, e.g. you@example.com", "address")
    if template.channel == "sms" and not address.lstrip("+").isdigit():
        raise InvalidInput("a phone number is needed, e.g. +8613800000000", "address")
    if template.channel not in ("email", "sms"):
        raise InvalidInput(f"test sends go by email or SMS, not {template.channel}", "channel")
    shown = render_for(engine, template, customer_id, lang)
    message = OutboundMessage(
        f"test:{template.name}:{secrets.token_hex(8)}",
        template.channel,
        address,
        TEST_PREFIX + shown.subject,
        shown.text,
        shown.html if template.channel == "email" else None,
    )
    own = sender is None
    sender = sender or transport(template.channel)
    try:
        result = sender.send(message)
    except Exception as exc:  # the transport's own failure is the answer shown to the person
        result = SendResult(False, detail=f"{type(exc).__name__}: {exc}")
    finally:
        if own:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing more to do
                sender.close()
    with engine.begin() as conn:
        record_audit(
            conn,
            actor,
            "template.test_send",
            "template",
            template.name,
            {"customer_id": customer_id, "to": address, "ok": result.ok, "detail": result.detail[:500]},
        )
    return result
