"""A journey's `update` step and a profile upsert change different attributes of one customer at
the same moment: both keep theirs. The step goes through customers.service.set_attributes, which
locks the profile as upserts do (PostgreSQL); before, it read the attributes unlocked and wrote
them back stale, losing the upsert's key."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select

from clm.auth.tables import audit_log
from clm.customers.schemas import CustomerIn
from clm.customers.service import get_customer, upsert_customer, upsert_customers
from clm.journeys.service import save_definition, scan_triggers, set_status
from clm.journeys.steps import run_steps
from tests.journeys.test_cart_journey import event as record_event

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def test_a_journey_update_and_a_profile_upsert_at_once_both_keep_their_key(engine):
    cid = upsert_customer(engine, CustomerIn(external_id="ann", attributes={"tier": "gold"}), actor="t")[0].id
    steps = [{"update": {"attribute": "welcomed", "value": True}}]
    save_definition(engine, {"name": "mark-welcomed", "trigger": {"event": "signup"}, "steps": steps})
    set_status(engine, "mark-welcomed", "live")
    record_event(engine, "ann", "signup", T0)
    assert scan_triggers(engine, T0 + timedelta(minutes=1)) == {"mark-welcomed": 1}

    step_is_writing, upsert_done = threading.Event(), threading.Event()

    def hold(conn, cursor, statement, parameters, context, executemany):
        # the step has read the attributes and is about to write them back: let the upsert run
        # now (it commits at once when nothing stops it; it waits for the step's lock when it does)
        if threading.current_thread().name == "step" and statement.startswith(
            "UPDATE customers SET attributes"
        ):
            step_is_writing.set()
            upsert_done.wait(timeout=2)

    def step() -> None:
        run_steps(engine, T0 + timedelta(minutes=2))

    def upsert() -> None:
        step_is_writing.wait(timeout=30)
        with engine.begin() as conn:
            upsert_customers(conn, [CustomerIn(external_id="ann", attributes={"city_tier": 1})], actor="t")
        upsert_done.set()

    event.listen(engine, "before_cursor_execute", hold)
    try:
        threads = [threading.Thread(target=step, name="step"), threading.Thread(target=upsert, name="upsert")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        event.remove(engine, "before_cursor_execute", hold)
    assert step_is_writing.is_set() and upsert_done.is_set()
    assert get_customer(engine, cid).attributes == {"tier": "gold", "welcomed": True, "city_tier": 1}
    with engine.connect() as conn:
        audited = conn.execute(
            select(audit_log.c.actor, audit_log.c.details).where(audit_log.c.action == "customer.attributes")
        ).all()
    assert [tuple(a) for a in audited] == [("journeys:mark-welcomed", {"set": {"welcomed": True}})]
