"""How fast the journey canvas's numbers and the journeys list are on a large PostgreSQL store.

    python bench/journey_canvas.py --db postgresql://postgres@127.0.0.1:5432/clm_bench_journeys

On first use the store is filled with set-based SQL (no Python loop per row): `--customers`
profiles (1,000,000 by default) with `--views` other events each on average (5), the ready-made
cart-abandonment journey live for 30 days with `--share` of the customers entered (its split,
waits and sends logged as the worker logs them, a message per send step), 15% of the entrants
buying within the goal window (a purchase event and a completed order). Then it times
`canvas_numbers` (every node and edge over the last 30 days, the split's report, revenue and ROI
per arm), `journey_summaries` (the list) and the canvas page as the console serves it, and
prints the median and the slowest of `--runs` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from sqlalchemy import text

from clm.core.timeutil import utcnow
from clm.journeys.canvas import canvas_numbers, journey_summaries
from clm.journeys.service import import_journey, set_status
from clm.migrations import upgrade
from clm.store.engine import make_engine

FILL = [
    # customers, and --views other events each on average, so the events index has some depth
    """INSERT INTO customers (external_id, email, country, first_seen_at, created_at, updated_at)
       SELECT 'b' || g, 'b' || g || '@example.com', 'CN', now() - interval '400 days', now(), now()
       FROM generate_series(1, :n) g""",
    """INSERT INTO events (event_id, customer_id, type, channel, occurred_at, received_at, properties)
       SELECT 'v' || g, (SELECT min(id) FROM customers) + (g::bigint * 7919) % :n, 'product_view', 'web',
              now() - (g % 400) * interval '1 day' - (g % 1440) * interval '1 minute', now(), '{}'
       FROM generate_series(1, :n * :views) g""",
    # the entrants: every k-th customer, entered over the last 30 days; arm by customer
    """INSERT INTO enrolments (journey_id, version_id, customer_id, entry_key, state, step, due_at,
                               since, visits, variant, entered_at, finished_at, exit_reason)
       SELECT :jid, :vid, c.id, 'e' || c.id,
              CASE WHEN c.id % 20 = 5 THEN 'waiting' ELSE 'done' END,
              CASE WHEN c.id % 20 = 5 THEN 'c-wait-buy' END,
              CASE WHEN c.id % 20 = 5 THEN now() + interval '1 day' END,
              now() - (c.id % 30) * interval '1 day', 4,
              CASE WHEN c.id % 10 = 0 THEN 'holdout' WHEN c.id % 10 < 5 THEN 'reminder' ELSE 'coupon' END,
              now() - (c.id % 30) * interval '1 day' - (c.id % 600) * interval '1 minute',
              CASE WHEN c.id % 20 <> 5 THEN now() - (c.id % 30) * interval '1 day' END,
              CASE WHEN c.id % 20 <> 5 THEN 'completed' END
       FROM customers c WHERE c.id % :k = 0""",
    # what the worker logs: the split's arm, then per arm its waits and sends
    """INSERT INTO journey_log (enrolment_id, journey_id, customer_id, step, action, outcome, detail, at)
       SELECT e.id, e.journey_id, e.customer_id, s.step, s.action, coalesce(s.outcome, e.variant), '',
              e.entered_at + s.after
       FROM enrolments e JOIN (VALUES
         ('all', 'step-1', 'split', NULL::text, interval '0'),
         ('reminder', 'r-wait', 'wait', 'scheduled', interval '1 minute'),
         ('reminder', 'r-send', 'send', 'queued', interval '4 hours'),
         ('reminder', 'done', 'exit', 'done', interval '4 hours'),
         ('coupon', 'c-wait', 'wait', 'scheduled', interval '1 minute'),
         ('coupon', 'c-send', 'send', 'queued', interval '4 hours'),
         ('coupon', 'c-wait-buy', 'wait', 'waiting', interval '4 hours'),
         ('coupon-timeout', 'c-wait-buy', 'wait', 'timeout', interval '28 hours'),
         ('coupon-timeout', 'coupon', 'send', 'queued', interval '28 hours')
       ) AS s(arm, step, action, outcome, after)
         ON s.arm = 'all' OR s.arm = e.variant
            OR (s.arm = 'coupon-timeout' AND e.variant = 'coupon' AND e.state = 'done')
       WHERE e.journey_id = :jid""",
    """INSERT INTO outbox (key, customer_id, journey_id, enrolment_id, step, channel, class, template,
                           status, reason, to_address, not_before, attempts, created_at, sent_at)
       SELECT 'b' || l.id, l.customer_id, l.journey_id, l.enrolment_id, l.step, 'email', 'marketing',
              'cart-reminder',
              CASE WHEN l.id % 50 = 0 THEN 'failed' WHEN l.id % 12 = 0 THEN 'skipped' ELSE 'sent' END,
              NULL, NULL, l.at, 1, l.at, CASE WHEN l.id % 12 <> 0 THEN l.at END
       FROM journey_log l WHERE l.journey_id = :jid AND l.action = 'send'""",
    # 15% of the entrants buy a day after entering: a purchase event and a completed order
    """INSERT INTO events (event_id, customer_id, type, channel, occurred_at, received_at, properties)
       SELECT 'p' || e.id, e.customer_id, 'purchase', 'web', e.entered_at + interval '1 day', now(), '{}'
       FROM enrolments e WHERE e.journey_id = :jid AND e.customer_id % 7 = 0""",
    """INSERT INTO orders (order_id, customer_id, status, ordered_at, currency, total, created_at, updated_at)
       SELECT 'o' || e.id, e.customer_id, 'completed', e.entered_at + interval '1 day', 'CNY',
              100 + e.customer_id % 400, now(), now()
       FROM enrolments e WHERE e.journey_id = :jid AND e.customer_id % 7 = 0""",
]


def fill(engine, customers: int, every: int, views: int) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM customers")).scalar_one()
    if have >= customers:
        return
    started = time.perf_counter()
    import_journey(engine, "cart-abandonment")
    set_status(engine, "cart-abandonment", "live")
    with engine.begin() as conn:
        jid, vid = conn.execute(
            text(
                "SELECT j.id, v.id FROM journeys j JOIN journey_versions v ON v.journey_id = j.id"
                " AND v.version = j.version WHERE j.name = 'cart-abandonment'"
            )
        ).one()
        for statement in FILL:
            conn.execute(
                text(statement), {"n": customers, "k": every, "jid": jid, "vid": vid, "views": views}
            )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    print(f"filled in {time.perf_counter() - started:.0f} s")


def timed(label: str, runs: int, work) -> None:  # type: ignore[no-untyped-def]
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    print(f"{label:<34} median {statistics.median(seconds):6.3f} s   slowest {max(seconds):6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a PostgreSQL URL (a new database is filled)")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=3, help="every k-th customer entered the journey")
    parser.add_argument("--views", type=int, default=5, help="other events per customer, on average")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engine = make_engine(args.db)
    upgrade(engine)
    fill(engine, args.customers, args.every, args.views)
    with engine.connect() as conn:
        sizes = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("customers", "events", "enrolments", "journey_log", "outbox", "orders")
        }
    print(", ".join(f"{t} {n:,}" for t, n in sizes.items()))
    now = utcnow()
    start = now - timedelta(days=30)
    timed(
        "canvas numbers (30 days)",
        args.runs,
        lambda: canvas_numbers(engine, "cart-abandonment", start, now, now),
    )
    timed("journeys list (30 days)", args.runs, lambda: journey_summaries(engine, start, now))

    import secrets

    from fastapi.testclient import TestClient

    from clm.api import create_app
    from clm.auth.users import create_user

    password = secrets.token_urlsafe(12)
    email = f"bench-{secrets.token_hex(3)}@clm.invalid"
    create_user(engine, email, "viewer", password, "bench", actor="bench")
    with TestClient(create_app(engine)) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/login", data={"email": email, "password": password, "csrf_token": token})
        timed(
            "canvas page (GET, 30 days)", args.runs, lambda: client.get("/journeys/cart-abandonment?days=30")
        )
        timed("journeys page (GET, 30 days)", args.runs, lambda: client.get("/journeys?days=30"))


if __name__ == "__main__":
    main()
