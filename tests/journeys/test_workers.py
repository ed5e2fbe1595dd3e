"""Several workers at once: every step runs once and every message is queued once (on
PostgreSQL the batches are claimed with FOR UPDATE SKIP LOCKED; SQLite lets one writer in)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.events.schemas import validate_event
from clm.events.service import ingest
from clm.journeys.service import save_definition, scan_triggers, set_status
from clm.journeys.steps import run_steps
from clm.journeys.tables import enrolments, journey_log, outbox

T0 = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)


def test_concurrent_workers_run_each_step_once(engine):
    save_definition(
        engine,
        {
            "name": "race",
            "trigger": {"event": "signup"},
            "steps": [
                {"update": {"attribute": "greeted", "value": True}},
                {"send": {"template": "holiday"}},
                {"exit": {}},
            ],
        },
    )
    set_status(engine, "race", "live")
    batch = []
    for i in range(300):
        upsert_customer(engine, CustomerIn(external_id=f"c{i}"), actor="t")
        batch.append(
            validate_event({"event_id": f"e{i}", "type": "signup", "external_id": f"c{i}", "timestamp": T0})
        )
    ingest(engine, batch, actor="t")
    assert scan_triggers(engine, T0) == {"race": 300}

    start = threading.Barrier(4)
    done: list[int] = []

    def work() -> None:
        start.wait()
        done.append(run_steps(engine, T0 + timedelta(seconds=1), batch=40))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(done) == 900  # 300 customers x 3 steps, shared between the workers
    with engine.connect() as conn:
        per_step = Counter(conn.execute(select(journey_log.c.enrolment_id, journey_log.c.step)).all())
        queued = conn.execute(select(outbox.c.enrolment_id)).scalars().all()
        states = set(conn.execute(select(enrolments.c.state)).scalars())
    assert len(per_step) == 900 and max(per_step.values()) == 1
    assert len(queued) == 300 and len(set(queued)) == 300
    assert states == {"done"}
