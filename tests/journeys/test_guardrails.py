"""Guardrails at send time, each on its own: consent, one-click unsubscribe, the frequency cap
(transactional messages are not capped), quiet hours (delayed, not dropped), hard bounces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from clm.channels.base import OutboundMessage, SendResult
from clm.customers.schemas import CustomerIn
from clm.customers.service import get_customer, set_consent, upsert_customer
from clm.journeys.outbox import dispatch, parse_cap, queue_message, quiet_until
from clm.journeys.tables import outbox, suppressions

NOW = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def person(engine, name: str, consent: bool = True, tz: str | None = None) -> int:
    profile = CustomerIn(external_id=name, email=f"{name}@example.com", first_name=name.title(), timezone=tz)
    cid = upsert_customer(engine, profile, actor="test")[0].id
    if consent:
        set_consent(engine, cid, "email", True, source="test")
    return cid


def statuses(engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(select(outbox.c.status, outbox.c.reason).order_by(outbox.c.id))
        ]


def test_marketing_needs_consent_and_unsubscribing_withdraws_it(engine, smtp, client):
    ann, bob = person(engine, "ann"), person(engine, "bob", consent=False)
    queue_message(engine, ann, "holiday", key="m1", kind="marketing", not_before=NOW)
    queue_message(engine, bob, "holiday", key="m2", kind="marketing", not_before=NOW)
    queue_message(engine, bob, "tier-upgrade", key="m3", kind="transactional", not_before=NOW)
    dispatch(engine, NOW)
    assert statuses(engine) == [("sent", None), ("skipped", "no email marketing consent"), ("sent", None)]
    assert "List-Unsubscribe" not in smtp.to("bob@example.com")[0]  # transactional: no unsubscribe header

    link = smtp.to("ann@example.com")[0]["List-Unsubscribe"].strip("<>")
    path = link.replace("https://clm.example.com", "")
    assert "Unsubscribe" in client.get(path).text
    assert client.post(path).status_code == 200  # one click, as RFC 8058 mail clients do
    me = get_customer(engine, ann)
    assert {c.channel: c.granted for c in me.consents}["email"] is False
    queue_message(engine, ann, "holiday", key="m4", kind="marketing", not_before=NOW)
    dispatch(engine, NOW)
    assert statuses(engine)[-1] == ("skipped", "no email marketing consent")


def test_the_frequency_cap_limits_marketing_but_not_transactional_messages(engine, smtp, monkeypatch):
    monkeypatch.setenv("CLM_FREQUENCY_CAP", "email=2/7d")
    ann = person(engine, "ann")
    for i in range(3):
        queue_message(engine, ann, "holiday", key=f"m{i}", kind="marketing", not_before=NOW)
    queue_message(engine, ann, "tier-upgrade", key="t1", kind="transactional", not_before=NOW)
    dispatch(engine, NOW)
    assert [s for s, _ in statuses(engine)] == ["sent", "sent", "skipped", "sent"]
    assert statuses(engine)[2][1] == "frequency cap: 2 email messages in 7 days (limit 2)"
    # a week later the window has moved on
    queue_message(engine, ann, "holiday", key="m9", kind="marketing", not_before=NOW + timedelta(days=8))
    dispatch(engine, NOW + timedelta(days=8))
    assert statuses(engine)[-1] == ("sent", None)
    assert parse_cap("3/7d") == {"*": (3, 7.0)}


def test_quiet_hours_delay_marketing_until_morning_in_the_customers_zone(engine, smtp, monkeypatch):
    monkeypatch.setenv("CLM_QUIET_HOURS", "21:00-08:00")
    late = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai, 14:00 in London
    shanghai, london = person(engine, "ann", tz="Asia/Shanghai"), person(engine, "bob", tz="Europe/London")
    queue_message(engine, shanghai, "holiday", key="a", kind="marketing", not_before=late)
    queue_message(engine, london, "holiday", key="b", kind="marketing", not_before=late)
    report = dispatch(engine, late)
    assert (report.sent, report.deferred) == (1, 1) and smtp.to("ann@example.com") == []
    with engine.connect() as conn:
        waiting = conn.execute(select(outbox.c.status, outbox.c.not_before).where(outbox.c.key == "a")).one()
    assert waiting.status == "queued" and waiting.not_before == datetime(
        2026, 11, 3, 0, 0, tzinfo=UTC
    )  # 08:00 local
    dispatch(engine, datetime(2026, 11, 3, 0, 1, tzinfo=UTC))
    assert len(smtp.to("ann@example.com")) == 1
    assert quiet_until(NOW, "Asia/Shanghai", None) is None


class Bouncing:
    """A transport whose server refuses one mailbox for good (a hard bounce)."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, message: OutboundMessage) -> SendResult:
        if message.to == "gone@example.com":
            return SendResult(False, permanent=True, bounce=True, detail="550 5.1.1 no such user")
        return SendResult(True)


def test_a_hard_bounce_suppresses_the_address(engine, smtp):
    gone = upsert_customer(engine, CustomerIn(external_id="g", email="gone@example.com"), actor="t")[0].id
    set_consent(engine, gone, "email", True, source="t")
    queue_message(engine, gone, "holiday", key="x1", kind="marketing", not_before=NOW)
    dispatch(engine, NOW, transports={"email": Bouncing()})
    queue_message(engine, gone, "tier-upgrade", key="x2", kind="transactional", not_before=NOW)
    dispatch(engine, NOW)
    assert statuses(engine) == [
        ("failed", "550 5.1.1 no such user"),
        ("suppressed", "gone@example.com is suppressed (bounced)"),
    ]
    with engine.connect() as conn:
        assert conn.execute(select(suppressions.c.address)).scalars().all() == ["gone@example.com"]
