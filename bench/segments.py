"""Segments benchmark (prints figures; not a test).

On a store holding the demo business (`clm demo --customers 1000000 --no-history`, ~20-30M
events), times for a three-condition segment with a behavioural condition over events:

1. preview: count + sample of 10 (target <= 2 s);
2. full evaluation: the matching customers counted in SQL, then a full rebuild of the saved
   segment when little changed (targets <= 5 s on PostgreSQL, <= 10 s on SQLite); the first
   build, which writes every entry and its event, is shown too;
3. incremental: one new product_view for a customer, then the re-check that ingestion runs
   (stages for that customer, then every segment that reads product views), median of 20
   (target <= 50 ms).

    python bench/segments.py --db sqlite:///bench/data/demo1m.db
    python bench/segments.py --db postgresql+psycopg://me@127.0.0.1/clm_bench_demo
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from sqlalchemy import func, select

CONDITION = 'stage = "retention" and events(product_view, last 14d) >= 3 and not purchased(last 60d)'
NAME = "bench_browsing_not_buying"


def seconds(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of a store holding the demo business")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each full evaluation")
    args = parser.parse_args()

    from clm.customers.tables import customers
    from clm.events.schemas import EventIn
    from clm.events.service import ingest
    from clm.events.tables import events
    from clm.lifecycle.service import assign_stages
    from clm.lifecycle.tables import customer_stages
    from clm.segments.evaluate import matching
    from clm.segments.service import (
        create_segment,
        delete_segment,
        list_segments,
        parse_definition,
        preview,
        rebuild_segments,
        refresh_customers,
    )
    from clm.store.engine import make_engine

    engine = make_engine(args.db)
    with engine.connect() as conn:
        n_customers = conn.execute(select(func.count()).select_from(customers)).scalar_one()
        n_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
        staged = conn.execute(select(func.count()).select_from(customer_stages)).scalar_one()
    print(f"store: {engine.dialect.name}, {n_customers:,} customers, {n_events:,} events", flush=True)
    if not staged:
        _, took = seconds(assign_stages, engine)
        print(f"stages run first (needed by `stage = ...`): {took:.1f} s", flush=True)
    print(f"segment: {CONDITION}", flush=True)

    result, took = seconds(preview, engine, CONDITION, sample=10)
    print(
        f"preview (count + sample of 10): {took:.2f} s, {result.count:,} customers  [target 2 s]", flush=True
    )

    from clm.segments.evaluate import compile_segment

    compiled = compile_segment(parse_definition(CONDITION), lambda name: None)
    counts = []
    query = select(func.count()).select_from(matching(compiled).subquery())
    for _ in range(args.repeat):
        with engine.connect() as conn:
            _, took = seconds(conn.execute, query, compiled.params(datetime.now(UTC)))
        counts.append(took)
    print(
        f"full evaluation (matching customers in SQL): median {statistics.median(counts):.2f} s", flush=True
    )

    if NAME in {s.name for s in list_segments(engine)}:
        delete_segment(engine, NAME)
    (_, build), took = seconds(create_segment, engine, NAME, where=CONDITION)
    print(f"first build (writes {build.entered:,} entries and their events): {took:.2f} s", flush=True)
    rebuilds = []
    for _ in range(args.repeat):
        builds, took = seconds(rebuild_segments, engine, [NAME])
        rebuilds.append(took)
    target = 5 if engine.dialect.name == "postgresql" else 10
    print(
        f"full rebuild (evaluate + write the difference, {builds[0].entered + builds[0].exited} changed): "
        f"median {statistics.median(rebuilds):.2f} s  [target {target} s]",
        flush=True,
    )

    dynamic = [s for s in list_segments(engine) if s.kind == "dynamic"]
    readers = [
        s.name for s in dynamic if {"event:product_view", "event:*", "features", "stage"} & set(s.depends)
    ]
    with engine.connect() as conn:
        people = conn.execute(
            select(customers.c.id, customers.c.external_id)
            .where(customers.c.merged_into.is_(None), customers.c.external_id.is_not(None))
            .order_by(customers.c.id)
            .limit(20)
        ).all()
    refreshes, ingests = [], []
    for cid, ext in people:
        now = datetime.now(UTC)
        event = EventIn(
            type="product_view",
            timestamp=now,
            channel="web",
            external_id=ext,
            event_id=f"bench-seg-{cid}-{now.timestamp()}",
            properties={"sku": "PH-100", "category": "phones"},
        )
        _, took = seconds(ingest, engine, [event.to_valid(now)], actor="bench")
        ingests.append(took)
        _, took = seconds(refresh_customers, engine, [cid], {"event:product_view"})
        refreshes.append(took)
    refreshes.sort()
    p95 = refreshes[int(0.95 * (len(refreshes) - 1))]
    print(
        f"incremental after one event: stages + {len(readers)} of {len(dynamic)} segments re-checked, "
        f"median {statistics.median(refreshes) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms "
        f"(ingesting the event: median {statistics.median(ingests) * 1000:.1f} ms)  [target 50 ms]",
        flush=True,
    )
    delete_segment(engine, NAME)


if __name__ == "__main__":
    main()
