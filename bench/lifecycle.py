"""Lifecycle benchmark (prints figures; not a test).

On a store holding the demo business (build it with `clm demo --customers 1000000`, or pass
`--customers N` to build it here if the store is empty), times:

1. a full stage run (`clm stages run`): features for every customer, stage, transitions, events;
2. a KPI query for the last 365 days, overall and by acquisition channel;
3. incremental re-evaluation of one customer after an event (what ingestion does).

Targets on the 2-core reference machine, 1,000,000 customers: stages <= 60 s on SQLite and
<= 30 s on PostgreSQL, a KPI query <= 2 s, one re-evaluation <= 20 ms.

    python bench/lifecycle.py --db sqlite:///bench/data/demo1m.db
    python bench/lifecycle.py --db postgresql+psycopg://me@127.0.0.1/clm_bench
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of the store")
    parser.add_argument(
        "--customers", type=int, default=0, help="build a demo of this size if the store is empty"
    )
    parser.add_argument("--samples", type=int, default=50, help="customers to re-evaluate one by one")
    parser.add_argument("--kpi-only", action="store_true", help="time only the KPI queries")
    args = parser.parse_args()

    from clm.customers.tables import customers
    from clm.demo.service import build_demo
    from clm.demo.simulate import DemoConfig
    from clm.events.schemas import ValidEvent
    from clm.events.service import ingest
    from clm.lifecycle.service import assign_stages, kpis, reassess_customers, stage_distribution
    from clm.migrations import upgrade
    from clm.store.engine import make_engine

    engine = make_engine(args.db)
    t = time.perf_counter()
    upgrade(engine)  # a store built by an older version gets its order summary filled here
    print(f"schema up to date in {time.perf_counter() - t:.1f} s", flush=True)
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count()).select_from(customers).where(customers.c.merged_into.is_(None))
        ).scalar_one()
    if n == 0 and args.customers:
        print(f"building a demo of {args.customers:,} customers …", flush=True)
        build_demo(engine, DemoConfig(customers=args.customers))
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(customers)).scalar_one()
    print(f"store: {engine.dialect.name}, {n:,} customers")

    results: list[tuple[str, float, str]] = []
    for label in () if args.kpi_only else ("stages run (first after load)", "stages run (again)"):
        t = time.perf_counter()
        run = assign_stages(engine)
        took = time.perf_counter() - t
        results.append((label, took, f"{run.evaluated:,} evaluated, {run.changed:,} changed"))
        print(f"{label}: {took:.1f} s ({run.evaluated:,} customers, {run.changed:,} changed)", flush=True)
    if not args.kpi_only:
        print("stages:", ", ".join(f"{k} {v:,}" for k, v in stage_distribution(engine)))

    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=364)
    for by in (None, "channel"):
        t = time.perf_counter()
        report = kpis(engine, start, end, group_by=by)
        took = time.perf_counter() - t
        label = f"KPI query, 365 days{' by channel' if by else ''}"
        results.append(
            (label, took, f"churn {report.overall.churn_rate:.1%}" if report.overall.churn_rate else "")
        )
        print(f"{label}: {took:.2f} s", flush=True)

    if args.kpi_only:
        ids = []
    else:
        with engine.connect() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    select(customers.c.id)
                    .where(customers.c.merged_into.is_(None))
                    .order_by(func.random())
                    .limit(args.samples)
                )
            ]
    times = []
    now = datetime.now(UTC) - timedelta(minutes=1)
    for i, cid in enumerate(ids):
        ext = conn_external_id(engine, cid)
        event = ValidEvent(
            f"bench:{cid}:{i}:{now.timestamp()}", "page_view", "web", now, {"external_id": ext}, {}
        )
        ingest(engine, [event], actor="bench")
        t = time.perf_counter()
        reassess_customers(engine, [cid])
        times.append(time.perf_counter() - t)
    if times:
        median = statistics.median(times)
        p95 = sorted(times)[int(0.95 * (len(times) - 1))]
        results.append(("re-evaluate one customer after an event", median, f"p95 {p95 * 1000:.1f} ms"))
        print(f"re-evaluate one customer: median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")

    print("\n| what | time | note |\n| --- | --- | --- |")
    for label, took, note in results:
        shown = f"{took * 1000:.1f} ms" if took < 1 else f"{took:.1f} s"
        print(f"| {label} | {shown} | {note} |")


def conn_external_id(engine, customer_id: int) -> str:  # type: ignore[no-untyped-def]
    from clm.customers.tables import customers

    with engine.connect() as conn:
        value = conn.execute(
            select(customers.c.external_id).where(customers.c.id == customer_id)
        ).scalar_one()
    return value or f"bench-{customer_id}"


if __name__ == "__main__":
    main()
