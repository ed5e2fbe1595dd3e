"""Writes that compete. SQLite has one write lock: while another process holds it past the busy
timeout (a bulk import writing chunk after chunk), a write through the API answers 503 with a
JSON error and a Retry-After header, stores nothing, and goes through when sent again; checking
the API key needs no write lock at all. Concurrent requests share their follow-up refreshes."""

import sqlite3
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from clm.api import create_app
from clm.events.tables import events
from clm.store.engine import make_engine

BODY = {"event_id": "busy-1", "type": "page_view", "timestamp": "2025-06-01T10:00:00Z", "external_id": "u1"}


def test_a_write_while_another_process_holds_the_lock_is_told_to_come_again(
    engine: Any, db_url: str, personas: Any
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL has row locks: writers of different customers do not wait")
    impatient = make_engine(db_url)

    @event.listens_for(impatient, "connect")
    def short_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout = 200")

    importer = sqlite3.connect(str(impatient.url.database), isolation_level=None, timeout=0)
    importer.execute("BEGIN IMMEDIATE")  # the other process, mid-chunk
    try:
        with TestClient(create_app(impatient)) as client:
            busy = client.post("/api/v1/events", json=BODY, headers=personas.headers("mark"))
            assert busy.status_code == 503, busy.text
            assert busy.headers["Retry-After"] == "5"
            assert busy.json()["error"]["code"] == "busy"
            assert "try again" in busy.json()["error"]["message"]
            importer.execute("COMMIT")
            again = client.post("/api/v1/events", json=BODY, headers=personas.headers("mark"))
            assert again.status_code == 200 and again.json()["accepted"] == 1
    finally:
        importer.close()
        impatient.dispose()
    with engine.connect() as conn:
        stored = select(func.count()).where(events.c.event_id == "busy-1")
        assert conn.execute(stored).scalar_one() == 1


def test_concurrent_posts_each_see_their_customers_assessed_when_answered(
    engine: Any, client: Any, personas: Any
) -> None:
    """Follow-up refreshes of concurrent requests are shared (`CoalescingRefresher`), yet a
    request is answered only once its own customers have their stage."""
    from concurrent.futures import ThreadPoolExecutor

    from clm.lifecycle.tables import customer_stages

    def post(k: int) -> list[int]:
        batch = [
            {
                "event_id": f"c{k}-{j}",
                "type": "signup",
                "timestamp": "2025-06-01T10:00:00Z",
                "external_id": f"k{k}-{j}",
            }
            for j in range(20)
        ]
        response = client.post("/api/v1/events", json={"events": batch}, headers=personas.headers("mark"))
        assert response.status_code == 200, response.text
        ids = response.json()["customer_ids"]
        with engine.connect() as conn:
            staged = select(func.count()).where(customer_stages.c.customer_id.in_(ids))
            assert conn.execute(staged).scalar_one() == len(ids) == 20
        return ids

    with ThreadPoolExecutor(6) as pool:
        assert len({i for ids in pool.map(post, range(12)) for i in ids}) == 240


READS = [
    "/api/v1/customers/{id}",
    "/api/v1/customers?email=reader@example.com",
    "/api/v1/customers",
    "/api/v1/customers/{id}/events",
    "/api/v1/customers/{id}/orders",
    "/api/v1/lifecycle/stages",
    "/api/v1/lifecycle/kpi?from=2025-01-01&to=2025-12-31",
    "/api/v1/lifecycle/funnel",
    "/api/v1/lifecycle/cohorts",
    "/api/v1/segments",
    "/api/v1/loyalty/customers/{id}",
    "/api/v1/loyalty/customers/{id}/postings",
    "/api/v1/loyalty/tiers",
    "/api/v1/analytics/churn/at-risk",
    "/api/v1/journeys",
    "/api/v1/journeys/trace/{id}",
    "/api/v1/campaigns/roi",
    "/api/v1/templates",
    "/api/v1/outbox",
    "/api/v1/surveys",
    "/api/v1/tickets",
    "/api/v1/tickets/stats",
    "/api/v1/tasks",
    "/api/v1/products",
    "/api/v1/spend",
]


def test_reads_are_answered_while_a_long_write_holds_the_lock(engine: Any, personas: Any) -> None:
    """A customer look-up (and every other read) never waits for a writer: on SQLite, whose one
    write lock a long transaction holds here for up to 10 s, reads begin deferred transactions
    that see the last committed snapshot; only transactions that write take the lock."""
    import threading
    import time

    from sqlalchemy import update

    from clm.customers.tables import customers

    with TestClient(create_app(engine)) as client:
        BODY_READER = {
            "event_id": "r-1",
            "type": "signup",
            "timestamp": "2025-06-01T10:00:00Z",
            "email": "reader@example.com",
        }
        posted = client.post("/api/v1/events", json=BODY_READER, headers=personas.headers("mark"))
        assert posted.status_code == 200, posted.text
        [customer_id] = posted.json()["customer_ids"]
        holding, finished = threading.Event(), threading.Event()

        def long_write() -> None:
            with engine.begin() as conn:
                conn.execute(
                    update(customers).where(customers.c.id == customer_id).values(attributes={"x": 1})
                )
                holding.set()
                finished.wait(timeout=10)  # (until every read is answered, if they do not wait)

        writer = threading.Thread(target=long_write)
        writer.start()
        try:
            assert holding.wait(timeout=10)
            for path in READS:
                started = time.perf_counter()
                # vic's key was never used: checking it must not wait to note its use either
                response = client.get(path.format(id=customer_id), headers=personas.headers("vic"))
                took = time.perf_counter() - started
                assert response.status_code == 200, (path, response.text)
                assert took < 2, f"{path} waited {took:.1f} s for the writer"
            for path in ("/api/v1/analytics/clv/customers/{id}", "/api/v1/analytics/churn/customers/{id}"):
                started = time.perf_counter()
                response = client.get(path.format(id=customer_id), headers=personas.headers("vic"))
                took = time.perf_counter() - started
                assert response.status_code == 404 and "score" in response.text  # read, nothing scored yet
                assert took < 2, f"{path} waited {took:.1f} s for the writer"
            assert writer.is_alive()  # every read was answered while the write went on
            customer = client.get(f"/api/v1/customers/{customer_id}", headers=personas.headers("vic")).json()
            assert customer["profile"]["attributes"] == {}  # the last committed state, not the open write's
        finally:
            finished.set()
            writer.join()
