"""A marketer steers held messages: releasing sends them at once past quiet hours (consent still
applies), cancelling closes them; both change only messages still held, are audited, and never
make a message go out twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from clm.auth.tables import audit_log
from clm.core.errors import InvalidInput
from clm.customers.service import set_consent
from clm.journeys.outbox import dispatch, queue_message
from clm.journeys.outbox_admin import cancel_messages, outbox_page, release_messages
from clm.journeys.tables import outbox
from tests.journeys.test_guardrails import person

LATE = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai: quiet hours there


@pytest.fixture
def held(engine, smtp, monkeypatch):  # type: ignore[no-untyped-def]
    """Three marketing emails to people in Shanghai, held by quiet hours until 08:00."""
    monkeypatch.setenv("CLM_QUIET_HOURS", "21:00-08:00")
    ids = []
    for name in ("ann", "bob", "cat"):
        cid = person(engine, name, tz="Asia/Shanghai")
        queue_message(engine, cid, "holiday", key=f"m-{name}", kind="marketing", not_before=LATE)
    report = dispatch(engine, LATE)
    assert report.deferred == 3 and smtp.messages == []
    with engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(outbox.c.id).order_by(outbox.c.id))]
    return ids


def test_the_page_shows_held_messages_with_reason_and_release_time(engine, held):
    shown = outbox_page(engine, "held", now=LATE)
    assert shown.counts == {"queued": 0, "held": 3, "sent": 0, "failed": 0, "not_sent": 0}
    assert [m.id for m in shown.messages] == held
    assert {m.reason for m in shown.messages} == {"quiet hours in the customer's time zone"}
    assert {m.not_before for m in shown.messages} == {datetime(2026, 11, 3, 0, 0, tzinfo=UTC)}
    assert outbox_page(engine, "held", channel="sms", now=LATE).counts["held"] == 0
    with pytest.raises(InvalidInput):
        outbox_page(engine, "lost", now=LATE)


def test_released_messages_go_out_now_in_quiet_hours_once(engine, held, smtp):
    ann, bob, _cat = held
    assert release_messages(engine, [ann, bob], actor="user:2:mark@example.com", now=LATE) == [ann, bob]
    assert release_messages(engine, [ann], actor="again", now=LATE) == []  # not held any more
    report = dispatch(engine, LATE + timedelta(seconds=1))
    assert report.sent == 2 and report.deferred == 0  # cat is not due yet
    assert sorted(m["To"] for m in smtp.messages) == ["ann@example.com", "bob@example.com"]
    assert dispatch(engine, LATE + timedelta(seconds=2)).sent == 0  # nothing twice
    assert outbox_page(engine, "held", now=LATE).counts["held"] == 1
    with engine.connect() as conn:
        audit = conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.details)).all()
    released = [a for a in audit if a.action == "outbox.release"]
    assert len(released) == 1 and released[0].actor == "user:2:mark@example.com"


def test_a_released_message_still_needs_consent(engine, held):
    ann = held[0]
    with engine.connect() as conn:
        cid = conn.execute(select(outbox.c.customer_id).where(outbox.c.id == ann)).scalar_one()
    set_consent(engine, cid, "email", False, source="test")
    release_messages(engine, [ann], actor="mark", now=LATE)
    dispatch(engine, LATE + timedelta(seconds=1))
    with engine.connect() as conn:
        row = conn.execute(select(outbox.c.status, outbox.c.reason).where(outbox.c.id == ann)).one()
    assert tuple(row) == ("skipped", "no email marketing consent")


def test_cancelled_messages_are_never_sent_and_claimed_ones_are_left_alone(engine, held, smtp):
    ann, bob, _cat = held
    with engine.begin() as conn:  # a dispatcher holds bob's message right now
        conn.execute(update(outbox).where(outbox.c.id == bob).values(status="claimed"))
    assert cancel_messages(engine, [ann, bob], actor="mark", now=LATE) == [ann]
    assert release_messages(engine, [bob], actor="mark", now=LATE) == []
    dispatch(engine, datetime(2026, 11, 3, 0, 1, tzinfo=UTC))  # morning: cat goes, ann does not
    assert [m["To"] for m in smtp.messages] == ["cat@example.com"]
    shown = outbox_page(engine, "not_sent", now=LATE)
    assert [(m.id, m.status, m.reason) for m in shown.messages] == [(ann, "cancelled", "cancelled by mark")]
    with pytest.raises(InvalidInput):
        cancel_messages(engine, [], actor="mark")
