"""The cart journey end to end against a real SMTP server: the exact message with its headers
and unsubscribe link, the coupon a day later, leaving the journey on purchase, the trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from clm.customers.schemas import CustomerIn
from clm.customers.service import set_consent, upsert_customer
from clm.events.schemas import validate_event
from clm.events.service import ingest
from clm.journeys.service import save_definition, set_status, tick, trace
from clm.journeys.tables import outbox

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
CART = {
    "name": "cart-test",
    "trigger": {"event": "add_to_cart"},
    "reentry": {"every_days": 7},
    "exit_when": {"event": "purchase"},
    "goal": {"event": "purchase", "within_days": 7},
    "steps": [
        {"wait": {"hours": 4}},
        {"send": {"channel": "email", "template": "cart-reminder"}},
        {"wait": {"event": "purchase", "timeout_days": 1, "then": "done", "timeout": "coupon"}},
        {"id": "coupon", "send": {"channel": "email", "template": "cart-coupon", "coupon": "CART10"}},
        {"id": "done", "exit": {}},
    ],
}


def shopper(engine, name: str, country: str = "GB") -> int:
    profile = CustomerIn(
        external_id=name, email=f"{name}@example.com", first_name=name.title(), country=country
    )
    cid = upsert_customer(engine, profile, actor="test")[0].id
    set_consent(engine, cid, "email", True, source="signup form")
    return cid


def event(engine, who: str, kind: str, at: datetime, **props) -> None:
    raw = {
        "event_id": f"{who}-{kind}-{at.timestamp()}",
        "type": kind,
        "external_id": who,
        "timestamp": at,
        **props,
    }
    ingest(engine, [validate_event(raw)], actor="test")


def test_the_cart_journey_sends_the_exact_messages_and_stops_when_the_customer_buys(engine, smtp):
    save_definition(engine, CART)
    set_status(engine, "cart-test", "live")
    ann, bob = shopper(engine, "ann"), shopper(engine, "bob", country="CN")
    event(engine, "ann", "add_to_cart", T0, sku="SH-1", name="Red shoes")
    event(engine, "bob", "add_to_cart", T0, sku="SH-1", name="Red shoes")

    first = tick(engine, T0 + timedelta(minutes=1))
    assert first.enrolled == {"cart-test": 2} and smtp.messages == []
    tick(engine, T0 + timedelta(hours=4, minutes=2))
    assert len(smtp.messages) == 2
    mail = smtp.to("ann@example.com")[0]
    assert mail["From"] == "Shop <shop@example.com>"
    assert mail["Subject"] == "You left something in your cart"
    assert mail["Message-ID"].startswith("<j") and mail["Message-ID"].endswith("@clm>")
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://clm.example.com/u/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = _part(mail, "text/plain")
    html = _part(mail, "text/html")  # the ready-made email is HTML with a plain-text twin
    assert "Red shoes" in html and "/o/" in html and "<img" in html  # product card and open pixel
    assert body.startswith("Hello Ann,") and "(Red shoes)" in body and f"Unsubscribe: {unsubscribe}" in body
    assert smtp.to("bob@example.com")[0]["Subject"] == "您的购物车里还有商品"  # a CN customer reads Chinese

    event(engine, "ann", "purchase", T0 + timedelta(hours=6))
    later = tick(engine, T0 + timedelta(hours=7))
    assert later.exited == 1
    tick(engine, T0 + timedelta(days=1, hours=5))  # bob's wait for a purchase times out: coupon
    assert len(smtp.to("ann@example.com")) == 1
    coupon_mail = smtp.to("bob@example.com")[1]
    assert "CART10-" in _part(coupon_mail, "text/plain")
    tick(engine, T0 + timedelta(days=3))
    assert len(smtp.messages) == 3  # nothing more: bob finished, ann left

    path = trace(engine, ann, "cart-test")
    assert [(s.action, s.outcome) for s in path.steps] == [
        ("wait", "scheduled"),
        ("send", "queued"),
        ("wait", "waiting"),
        ("exit", "exited"),
    ]
    assert path.enrolments[0]["state"] == "exited" and path.enrolments[0]["exit_reason"] == "exit: purchase"
    assert [(m.template, m.status) for m in trace(engine, bob).messages] == [
        ("cart-reminder", "sent"),
        ("cart-coupon", "sent"),
    ]
    with engine.connect() as conn:
        assert conn.execute(select(outbox.c.status).where(outbox.c.customer_id == ann)).scalars().all() == [
            "sent"
        ]


def test_editing_a_live_journey_leaves_customers_on_their_version(engine, smtp):
    save_definition(engine, CART)
    set_status(engine, "cart-test", "live")
    shopper(engine, "ann")
    event(engine, "ann", "add_to_cart", T0)
    tick(engine, T0 + timedelta(minutes=1))
    # version 2 sends the SMS reminder at once instead; ann stays on version 1
    save_definition(engine, {**CART, "steps": [{"send": {"channel": "email", "template": "holiday"}}]})
    tick(engine, T0 + timedelta(hours=5))
    assert [m["Subject"] for m in smtp.messages] == ["You left something in your cart"]


def _part(mail, kind: str) -> str:  # type: ignore[no-untyped-def]
    """The decoded body part of one content type (`text/plain` or `text/html`)."""
    parts = [p for p in mail.walk() if p.get_content_type() == kind]
    assert len(parts) == 1, [p.get_content_type() for p in mail.walk()]
    return str(parts[0].get_payload(decode=True).decode())
