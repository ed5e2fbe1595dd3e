"""Raw write speed of the events table (prints figures; not a test).

Separates what the database costs from what our Python costs: rows already in stored form go
straight into the migrated schema through `clm.store.bulk.insert_ignore_many`, chunk by chunk,
one transaction each, with the same indexes as production.

    python bench/store_write.py --rows 2000000 [--db sqlite:///bench/data/write.db] [--sorted]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text

from clm.events.tables import events
from clm.migrations import reset_schema
from clm.store.bulk import insert_ignore_many
from clm.store.engine import make_engine
from clm.store.schema import to_db_timestamp

HERE = Path(__file__).resolve().parent
COLUMNS = ("event_id", "customer_id", "type", "channel", "occurred_at", "received_at", "properties")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--db", default=f"sqlite:///{HERE / 'data' / 'write.db'}")
    parser.add_argument("--sorted", action="store_true", help="sort each chunk by customer and time")
    args = parser.parse_args()
    (HERE / "data").mkdir(exist_ok=True)

    engine = make_engine(args.db)
    reset_schema(engine)
    if engine.dialect.name == "postgresql":
        fill = (
            "INSERT INTO customers (id, attributes, created_at, updated_at) "
            "SELECT g, '{}', now(), now() FROM generate_series(1, :n) g"
        )
    else:
        fill = (
            "INSERT INTO customers (id, attributes, created_at, updated_at) "
            "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n) "
            "SELECT x, '{}', '2025-01-01 00:00:00.000000', '2025-01-01 00:00:00.000000' FROM g"
        )
    with engine.begin() as conn:  # the customers the events point at
        conn.execute(text(fill), {"n": args.customers})
    rng = np.random.default_rng(1)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    dialect = engine.dialect.name
    received = to_db_timestamp(start, dialect)
    types = ["page_view", "product_view", "add_to_cart", "email_open"]
    total = 0.0
    for first in range(0, args.rows, args.chunk):
        n = min(args.chunk, args.rows - first)
        who = rng.integers(1, args.customers + 1, size=n)
        secs = rng.integers(0, 365 * 86400, size=n)
        rows = [
            (
                f"ev{first + i}",
                int(who[i]),
                types[i % 4],
                "web",
                to_db_timestamp(start + timedelta(seconds=int(secs[i])), dialect),
                received,
                '{"sku": "A"}',
            )
            for i in range(n)
        ]
        if args.sorted:
            rows.sort(key=lambda r: (r[1], r[4]))
        t0 = time.perf_counter()
        with engine.begin() as conn:
            insert_ignore_many(conn, events, COLUMNS, rows, ("event_id",))
        total += time.perf_counter() - t0
    print(
        f"{dialect}: {args.rows:,} rows in {total:.1f} s of database time = {args.rows / total:,.0f} rows/s"
        f"{' (chunks sorted)' if args.sorted else ''}"
    )


if __name__ == "__main__":
    main()
