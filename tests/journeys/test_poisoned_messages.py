"""One bad message stops nothing: poisoned messages between valid ones (a template that divides
by zero, one that loops without end, an address the SMTP client cannot write) fail alone after
CLM_SEND_ATTEMPTS attempts with their reason, the valid ones reach a real SMTP server, the worker
goes on; a person queues a failed message again (CLI and API)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from clm.auth.tables import audit_log
from clm.channels.templates import save_template, template_from_dict
from clm.cli import main
from clm.customers.schemas import CustomerIn
from clm.customers.service import set_consent, upsert_customer
from clm.journeys.outbox import dispatch, queue_message, recover
from clm.journeys.service import trace
from clm.journeys.tables import outbox

NOW = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)


def person(engine, name: str, email: str | None = None) -> int:
    profile = CustomerIn(external_id=name, email=email or f"{name}@example.com", first_name=name.title())
    cid = upsert_customer(engine, profile, actor="test")[0].id
    set_consent(engine, cid, "email", True, source="test")
    return cid


def rows(engine) -> dict[str, tuple[str, str | None, int]]:
    with engine.connect() as conn:
        found = conn.execute(select(outbox.c.key, outbox.c.status, outbox.c.reason, outbox.c.attempts))
        return {k: (s, r, a) for k, s, r, a in found}


def poison(engine) -> dict[str, int]:
    """Valid, poisoned, valid, poisoned, valid, poisoned, valid: keys v1…v4, p-zero, p-loop, p-address."""
    save_template(engine, template_from_dict({"name": "zero", "channel": "email", "subject": "x",
                                              "text": "{{ 1/0 }}"}))  # fmt: skip
    endless = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    save_template(engine, template_from_dict({"name": "endless", "channel": "email", "subject": "x",
                                              "text": endless}))  # fmt: skip
    ids = {n: person(engine, n) for n in ("ann", "bob", "cat", "dan")}
    ids["zoe"] = person(engine, "zoe", "zoë@example.com")  # smtplib cannot write it: it raises
    order = [("v1", "ann", "welcome"), ("p-zero", "bob", "zero"), ("v2", "bob", "welcome"),
             ("p-loop", "cat", "endless"), ("v3", "cat", "welcome"), ("p-address", "zoe", "welcome"),
             ("v4", "dan", "welcome")]  # fmt: skip
    for key, who, template in order:
        queue_message(engine, ids[who], template, key=key, not_before=NOW)
    return ids


def test_poisoned_messages_fail_alone_after_their_attempts_and_the_valid_ones_are_delivered(
    engine, smtp, db_url, capsys
):
    ids = poison(engine)
    first = dispatch(engine, NOW)
    assert (first.claimed, first.sent, first.retried, first.failed) == (7, 4, 3, 0)
    assert sorted(m["To"] for m in smtp.messages) == [
        f"{n}@example.com" for n in ("ann", "bob", "cat", "dan")
    ]
    state = rows(engine)
    assert state["p-zero"] == (
        "queued", "attempt 1 of 3 failed: zero: cannot render: ZeroDivisionError: division by zero", 1
    )  # fmt: skip
    assert state["p-loop"][1].endswith("cannot render: loops ran more than 100,000 times in one message")
    assert state["p-address"][1].startswith(
        "attempt 1 of 3 failed: the email transport failed: UnicodeEncodeError"
    )

    # retried after 2, then 4 minutes; the third attempt is the last
    assert dispatch(engine, NOW + timedelta(minutes=1)).claimed == 0
    assert dispatch(engine, NOW + timedelta(minutes=2)).retried == 3
    last = dispatch(engine, NOW + timedelta(minutes=6))
    assert (last.claimed, last.failed, last.sent) == (3, 3, 0)
    assert dispatch(engine, NOW + timedelta(days=1)).claimed == 0
    state = rows(engine)
    assert state["p-zero"] == (
        "failed", "gave up after 3 attempts: zero: cannot render: ZeroDivisionError: division by zero", 3
    )  # fmt: skip
    assert [state[k][0] for k in ("v1", "v2", "v3", "v4", "p-loop", "p-address")] == ["sent"] * 4 + [
        "failed"
    ] * 2
    assert len(smtp.messages) == 4  # each valid message once, nothing for the poisoned ones

    # seen as a person sees it: the trace and the outbox listing give the reason
    messages = trace(engine, ids["bob"]).messages
    assert [(m.template, m.status) for m in messages] == [("zero", "failed"), ("welcome", "sent")]
    assert main(["--db", db_url, "journeys", "trace", "bob"]) == 0
    assert "division by zero" in capsys.readouterr().out
    assert main(["--db", db_url, "outbox", "list", "--status", "failed", "--json"]) == 0
    listed = {m["key"]: m["reason"] for m in json.loads(capsys.readouterr().out)}
    assert sorted(listed) == ["p-address", "p-loop", "p-zero"]
    assert "UnicodeEncodeError" in listed["p-address"]


def test_the_worker_goes_on_and_a_person_retries_a_dead_letter(
    engine, smtp, db_url, client, personas, capsys
):
    poison(engine)
    # `clm worker --once` runs the jobs and the journeys' tick at the real time: everything queued is due
    assert main(["--db", db_url, "worker", "--once"]) == 0
    assert "4 sent" in capsys.readouterr().out
    with engine.begin() as conn:  # as if its attempts had been used up
        conn.execute(update(outbox).where(outbox.c.key == "p-zero").values(status="failed", attempts=3))
        zero, sent = (
            conn.execute(select(outbox.c.id).where(outbox.c.key == k)).scalar_one() for k in ("p-zero", "v1")
        )

    h = personas.headers("mark")
    assert client.post(f"/api/v1/outbox/{sent}/retry", headers=h).status_code == 409  # sent: not again
    assert client.post("/api/v1/outbox/99999/retry", headers=h).status_code == 404
    assert client.post(f"/api/v1/outbox/{zero}/retry", headers=personas.headers("vic")).status_code == 403
    save_template(engine, template_from_dict({"name": "zero", "channel": "email", "subject": "Fixed",
                                              "text": "{{ 1 + 1 }}"}))  # fmt: skip
    done = client.post(f"/api/v1/outbox/{zero}/retry", headers=h)
    assert done.status_code == 200 and done.json()["status"] == "queued"
    assert rows(engine)["p-zero"][0::2] == ("queued", 0)
    assert dispatch(engine, datetime.now(UTC) + timedelta(seconds=1)).sent == 1
    assert smtp.to("bob@example.com")[-1].get_content().strip() == "2"
    with engine.connect() as conn:
        audited = conn.execute(select(audit_log.c.action, audit_log.c.entity_id)).all()
    assert ("outbox.retry", str(zero)) in audited

    # the CLI does the same
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == zero).values(status="unknown"))
    assert main(["--db", db_url, "outbox", "retry", str(zero)]) == 0
    assert f"message {zero}: queued" in capsys.readouterr().out


def test_a_message_whose_dispatcher_died_each_time_is_failed_not_claimed_again(engine, smtp):
    cid = person(engine, "ann")
    for key in ("dies", "fresh"):
        queue_message(engine, cid, "welcome", key=key, not_before=NOW)
    # a dispatcher claimed both and died: for `dies` this was its third time
    lapsed = NOW - timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(update(outbox).values(status="claimed", lease_until=lapsed, attempts=1))
        conn.execute(update(outbox).where(outbox.c.key == "dies").values(attempts=3))
    assert recover(engine, NOW) == (1, 0)
    state = rows(engine)
    assert state["dies"][:2] == (
        "failed",
        "gave up after 3 attempts: the dispatcher stopped each time while it had it",
    )
    assert state["fresh"][0] == "queued"


def test_after_a_database_restart_what_was_claimed_before_it_is_not_resent(engine, smtp):
    """PostgreSQL: the hand-overs are written without waiting for the disk, so a restart may lose
    the record of some; a message claimed before the server's start is `unknown`, not queued."""
    cid = person(engine, "ann")
    queue_message(engine, cid, "welcome", key="before", not_before=NOW)
    queue_message(engine, cid, "welcome", key="after", not_before=NOW)
    lapsed = NOW - timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(update(outbox).values(status="claimed", lease_until=lapsed, attempts=1))
        if engine.dialect.name == "postgresql":
            conn.execute(
                update(outbox)
                .where(outbox.c.key == "before")
                .values(claimed_at=datetime(2000, 1, 1, tzinfo=UTC))
            )
            conn.execute(update(outbox).where(outbox.c.key == "after").values(claimed_at=datetime.now(UTC)))
    recover(engine, NOW)
    state = rows(engine)
    assert state["after"][0] == "queued"
    assert state["before"][0] == ("unknown" if engine.dialect.name == "postgresql" else "queued")
