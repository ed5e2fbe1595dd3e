"""Console fixtures: users of each role (passwords known to the tests), a signed-in test client,
the app served by uvicorn, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from clm.auth.users import create_user
from clm.commerce.schemas import OrderIn
from clm.commerce.service import ingest_order_batch
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.lifecycle.service import assign_stages

CHROMIUM = Path("/usr/bin/chromium")
ROLES = {"alice": "admin", "mark": "marketer", "ana": "analyst", "vic": "viewer"}
NAMES = {"alice": "王丽", "mark": "Mark Lee", "ana": "李娜", "vic": "Vic Chen"}


def email(who: str) -> str:
    return f"{who}@example.com"


def password(who: str) -> str:
    return f"{who}-secret-pw"


@pytest.fixture(autouse=True)
def quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real Argon2id, with the lowest costs: the server's ~1 s per hash on a busy machine would make
    these tests take minutes. tests/auth checks the production costs."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "clm.auth.users._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@dataclass(frozen=True)
class Team:
    """alice (admin), mark (marketer), ana (analyst), vic (viewer): console users."""

    ids: dict[str, int]


@pytest.fixture
def team(engine: Engine) -> Team:
    ids = {
        who: create_user(engine, email(who), role, password(who), NAMES[who], actor="test").id
        for who, role in ROLES.items()
    }
    return Team(ids)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client, who: str) -> str:  # type: ignore[no-untyped-def]
    """Sign `who` in through the form; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"email": email(who), "password": password(who), "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/account/password").text)


@pytest.fixture
def tiny_shop(engine):  # type: ignore[no-untyped-def]
    """a: new, two orders in the last 30 days; b: an order 40 days ago and one 3 days ago;
    c: new, one order 20 days ago."""
    today = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0)
    orders = {"a": [(10, 100.0), (5, 50.0)], "b": [(40, 200.0), (3, 80.0)], "c": [(20, 120.0)]}
    for ext, placed in orders.items():
        upsert_customer(engine, CustomerIn(external_id=ext, acquisition_channel="web"), actor="test")
        ingest_order_batch(
            engine,
            [
                OrderIn(
                    order_id=f"{ext}{n}",
                    external_id=ext,
                    ordered_at=today - timedelta(days=ago),
                    status="completed",
                    total=total,
                    items=[{"sku": "A", "unit_price": total}],
                )
                for n, (ago, total) in enumerate(placed)
            ],
            actor="test",
        )
    assign_stages(engine)


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    """A fresh Chromium per test (one Playwright at a time: the survey page's test starts its own)."""
    if not CHROMIUM.exists():
        if os.environ.get("CLM_REQUIRE_BROWSER") == "1":
            raise RuntimeError(
                "CLM_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install chromium)"
            )
        pytest.skip("Debian's chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()
