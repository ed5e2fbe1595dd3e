"""Re-entry rules (once, every N days, always), triggers on dates and conditions, and a
dispatcher killed in the middle of a batch: after a restart nothing is sent twice, every message
not handed over is sent, and the group it had in hand is marked `unknown`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from clm.customers.schemas import CustomerIn
from clm.customers.service import set_consent, upsert_customer
from clm.journeys.outbox import HANDOVER_GROUP, dispatch, queue_message, recover
from clm.journeys.service import save_definition, set_status, tick
from clm.journeys.tables import enrolments, outbox
from tests.journeys.test_cart_journey import event, shopper

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def journey(engine, name: str, reentry, trigger=None) -> None:
    steps = [{"update": {"attribute": f"seen_{name}", "value": True}}]
    save_definition(engine, {"name": name, "trigger": trigger or {"event": "page_view"}, "reentry": reentry,
                             "steps": steps})  # fmt: skip
    set_status(engine, name, "live")


def entries(engine, name: str) -> int:
    from clm.journeys.tables import journeys

    with engine.connect() as conn:
        joined = enrolments.join(journeys, journeys.c.id == enrolments.c.journey_id)
        return conn.execute(
            select(func.count()).select_from(joined).where(journeys.c.name == name)
        ).scalar_one()


def test_reentry_rules(engine, smtp):
    shopper(engine, "ann")
    journey(engine, "once", "once")
    journey(engine, "weekly", {"every_days": 7})
    journey(engine, "always", "always")
    for day in (0, 1, 8):
        event(engine, "ann", "page_view", T0 + timedelta(days=day))
        tick(engine, T0 + timedelta(days=day, minutes=1))
    assert entries(engine, "once") == 1
    assert entries(engine, "weekly") == 2  # day 0 and day 8, not day 1
    assert entries(engine, "always") == 3  # each time, once the previous run had finished


def test_birthday_and_condition_triggers(engine, smtp):
    today = T0.date()
    born = date(1990, today.month, today.day)
    upsert_customer(engine, CustomerIn(external_id="bday", birthday=born), actor="t")
    upsert_customer(engine, CustomerIn(external_id="other", birthday=born + timedelta(days=3)), actor="t")
    journey(engine, "birthday-test", {"every_days": 300}, {"date": "birthday"})
    journey(
        engine, "no-orders", "once", {"condition": 'orders = 0 and external_id = "other"', "every_days": 1}
    )
    from clm.lifecycle.service import assign_stages

    assign_stages(engine)
    tick(engine, T0)
    tick(engine, T0 + timedelta(hours=1))  # same day: nobody enters twice
    assert entries(engine, "birthday-test") == 1 and entries(engine, "no-orders") == 1


CRASHING_WORKER = """
import sys
from datetime import datetime
from clm.journeys.outbox import dispatch
from clm.store.engine import make_engine
engine = make_engine(sys.argv[1])
dispatch(engine, datetime.fromisoformat(sys.argv[2]), batch=500, stop_after=int(sys.argv[3]))
"""


def test_a_killed_dispatcher_sends_nothing_twice_and_flags_what_it_had_in_hand(engine, smtp, db_url):
    people = []
    for i in range(60):
        cid = upsert_customer(engine, CustomerIn(external_id=f"c{i}", email=f"c{i}@example.com"), actor="t")[
            0
        ].id
        set_consent(engine, cid, "email", True, source="t")
        people.append(cid)
    for i, cid in enumerate(people):
        queue_message(engine, cid, "holiday", key=f"batch:{i}", kind="marketing", not_before=T0)
    env = {**os.environ}
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_WORKER, db_url, T0.isoformat(), "25"], env=env, capture_output=True
    )
    # SIGKILL in the middle of the batch, at the worst moment: the SMTP server has just accepted
    # the 25th message and the outbox has not recorded it yet. Messages are handed over in groups
    # (HANDOVER_GROUP = 10): the 21st-30th are `sending`, the 1st-20th recorded as sent.
    assert HANDOVER_GROUP == 10
    assert crashed.returncode == -9, crashed.stderr.decode()[-2000:]
    assert len(smtp.messages) == 25
    with engine.connect() as conn:
        left = Counter(conn.execute(select(outbox.c.status)).scalars())
    assert left == {"sent": 20, "sending": 10, "claimed": 30}
    # a new worker, once the dead one's lease has run out: the 30 never handed over are sent;
    # the group in flight is not sent again but marked for a person to check (5 of them reached
    # the server, 5 did not: the server's log tells which by Message-ID, the outbox key)
    later = T0 + timedelta(minutes=11)
    assert recover(engine, later) == (30, 10)
    dispatch(engine, later)
    ids = Counter(m["Message-ID"] for m in smtp.messages)
    assert len(ids) == 55 and max(ids.values()) == 1  # nothing twice
    got = sorted(m["To"] for m in smtp.messages)
    assert got == sorted(f"c{i}@example.com" for i in [*range(25), *range(30, 60)])
    with engine.connect() as conn:
        final = conn.execute(select(outbox.c.key, outbox.c.status)).all()
    assert Counter(status for _, status in final) == {"sent": 50, "unknown": 10}
    assert sorted(int(k.split(":")[1]) for k, status in final if status == "unknown") == list(range(20, 30))
