"""How fast the campaign pages are on a large PostgreSQL store.

    python bench/campaign_page.py --db postgresql://postgres@127.0.0.1:5432/clm_bench_journeys

The store is the one `bench/journey_canvas.py` fills (the same database may serve both; it is
filled on first use): `--customers` profiles (1,000,000 by default), the ready-made
cart-abandonment journey with every `--every`-th customer entered over 30 days, its A/B split with
a holdout, a message per send step, 15% of the entrants buying. Then it times `campaign_report`
(everything the campaign page shows), `list_campaigns` and the two pages as the console serves
them, and prints the median and the slowest of `--runs` runs.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from journey_canvas import fill, timed

from clm.journeys.campaigns import campaign_report, list_campaigns
from clm.migrations import upgrade
from clm.store.engine import make_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a PostgreSQL URL (a new database is filled)")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=3, help="every k-th customer entered the journey")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engine = make_engine(args.db)
    upgrade(engine)
    fill(engine, args.customers, args.every)
    with engine.connect() as conn:
        sizes = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("customers", "events", "enrolments", "outbox", "orders")
        }
    print(", ".join(f"{t} {n:,}" for t, n in sizes.items()))
    timed("campaign report", args.runs, lambda: campaign_report(engine, "cart-abandonment"))
    timed("campaign list", args.runs, lambda: list_campaigns(engine))

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
        shown = client.get("/campaigns/cart-abandonment")
        assert shown.status_code == 200, shown.text[:300]
        timed("campaign page (GET)", args.runs, lambda: client.get("/campaigns/cart-abandonment"))
        timed("campaigns list page (GET)", args.runs, lambda: client.get("/campaigns"))


if __name__ == "__main__":
    main()
