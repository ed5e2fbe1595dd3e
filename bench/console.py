"""How fast the console's pages are (prints figures; not a test).

    python bench/console.py --db sqlite:///bench/data/demo10k.db
    python bench/console.py --db postgresql://postgres@127.0.0.1:5432/clm_bench_console --large

On a store holding the demo business (`clm demo`), a signed-in admin asks for each page in
process (FastAPI's TestClient: the whole request, from routing to the rendered HTML) `--runs`
times in turn, so a page's runs are spread over the whole measurement, and the script prints the
server time p50 / p95 / max of each page and the CPU time this process spent per request (on
PostgreSQL the database server's own CPU is not in it).

Pages: the overview at each period (7, 30, 90, 365 days), filtered to a channel and to a
segment; the customers list plain, filtered (stage, channel) and searched; a 360° page; the
global search. `--large` (the 1,000,000-customer demo) times only the overview and a customer
page. Targets (issue 26): on 10,000 customers each page p95 < 300 ms; on 1,000,000 customers on
PostgreSQL the overview < 2 s and a customer page < 300 ms.

The overview keeps figures that were slow to compute (clm.web.figures_cache): `first` is the
first view of a period and filter (computed in the request), the runs after it are what every
later view costs. `--no-cache` computes every view (the figures kept for no time at all).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of a store holding the demo")
    parser.add_argument("--runs", type=int, default=20, help="requests per page")
    parser.add_argument("--large", action="store_true", help="only the overview and a customer page")
    parser.add_argument("--no-cache", action="store_true", help="compute the overview on every view")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from clm.api import create_app
    from clm.auth.users import create_user
    from clm.customers.tables import customers
    from clm.lifecycle.tables import customer_stages
    from clm.migrations import upgrade
    from clm.segments.tables import segment_members, segments
    from clm.store.engine import make_engine
    from clm.web import overview

    if args.no_cache:
        overview.FIGURES = {"slow_seconds": float("inf"), "fresh_seconds": 0.0}
    engine = make_engine(args.db)
    upgrade(engine)  # a demo built by an older version gets the columns this one reads
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(customers)).scalar_one()
        channel = conn.execute(
            select(customers.c.acquisition_channel, func.count())
            .where(customers.c.acquisition_channel.is_not(None))
            .group_by(customers.c.acquisition_channel)
            .order_by(func.count().desc())
            .limit(1)
        ).first()
        segment = conn.execute(
            select(segments.c.name)
            .join(segment_members, segment_members.c.segment_id == segments.c.id)
            .group_by(segments.c.name)
            .order_by(func.count().desc())
            .limit(1)
        ).scalar()
        stage = conn.execute(
            select(customer_stages.c.stage).group_by(customer_stages.c.stage).order_by(func.count()).limit(1)
        ).scalar()
        # a customer with a long history: the 360° page's heaviest kind
        someone = conn.execute(
            select(customers.c.id, customers.c.last_name).where(customers.c.id == n // 2)
        ).first()
    print(
        f"{engine.url.get_backend_name()}: {n:,} customers; channel {channel[0] if channel else None}, "
        f"segment {segment}, stage {stage}, customer {someone[0] if someone else None}",
        flush=True,
    )

    pages: list[tuple[str, str, dict[str, Any]]] = [
        (f"overview, {days} days", "/", {"period": days}) for days in (7, 30, 90, 365)
    ]
    if channel:
        pages.append(("overview, 30 days, one channel", "/", {"period": 30, "channel": channel[0]}))
    if segment:
        pages.append(("overview, 30 days, one segment", "/", {"period": 30, "segment": segment}))
    if someone:
        pages.append(("customer 360° page", f"/customers/{someone[0]}", {}))
    if not args.large:
        pages += [
            ("customers list", "/customers", {}),
            (
                "customers list, stage + channel",
                "/customers",
                {"stage": stage or "", "channel": channel[0] if channel else ""},
            ),
            ("customers list, searched", "/customers", {"q": (someone[1] if someone else "") or "王"}),
            ("search", "/search", {"q": (someone[1] if someone else "") or "王"}),
        ]

    password = secrets.token_urlsafe(12)
    email = f"bench-{secrets.token_hex(3)}@clm.invalid"
    create_user(engine, email, "admin", password, "bench", actor="bench")
    times: dict[str, list[float]] = {name: [] for name, _, _ in pages}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in pages}
    first: dict[str, float] = {}
    with TestClient(create_app(engine)) as client:
        login = client.get("/login")
        token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/login", data={"email": email, "password": password, "csrf_token": token})

        def one(path: str, params: dict[str, Any]) -> tuple[float, float]:
            wall, clock = time.perf_counter(), time.process_time()
            response = client.get(path, params=params)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            return time.perf_counter() - wall, time.process_time() - clock

        for name, path, params in pages:  # the first view of each page
            first[name] = one(path, params)[0]
            print(f"  first view of {name}: {first[name] * 1000:.0f} ms", flush=True)
        for _ in range(args.runs):  # then the pages in turn
            for name, path, params in pages:
                wall, used = one(path, params)
                times[name].append(wall)
                cpu[name].append(used)
    print(
        f"{'page':<36} {'first':>8} {'p50':>8} {'p95':>8} {'max':>8} {'CPU p50':>8}  (ms, {args.runs} runs)"
    )
    for name, _, _ in pages:
        ms: Callable[[float], str] = lambda s: f"{s * 1000:8.0f}"  # noqa: E731
        print(
            f"{name:<36} {ms(first[name])} {ms(statistics.median(times[name]))} "
            f"{ms(percentile(times[name], 0.95))} {ms(max(times[name]))} {ms(statistics.median(cpu[name]))}"
        )


if __name__ == "__main__":
    main()
