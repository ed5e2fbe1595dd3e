"""Campaign ROI credits each order once, to the journey of the last message sent or clicked within
that journey's window before it; against a holdout, the incremental revenue and ROI. All figures
hand-computed (the same case as the worked example in docs/journeys.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from clm.cli import main
from clm.commerce.schemas import OrderIn, SpendIn
from clm.commerce.service import ingest_order_batch, record_spend
from clm.journeys.attribution import campaign_roi
from clm.journeys.service import save_definition, set_status, tick
from clm.journeys.steps import arm_of
from clm.journeys.tables import outbox
from tests.journeys.test_cart_journey import event, shopper

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def cart(name: str, window_days: float, wait_minutes: int) -> dict:
    return {
        "name": name,
        "trigger": {"event": "add_to_cart"},
        "goal": {"event": "purchase", "within_days": window_days},
        "steps": [{"wait": {"minutes": wait_minutes}}, {"send": {"template": "cart-reminder"}}],
    }


def order(engine, who: str, at: datetime, total: float, key: str) -> None:
    ingest_order_batch(
        engine, [OrderIn(order_id=key, external_id=who, ordered_at=at, total=total)], actor="t"
    )


def spend(engine, campaign: str, amount: float) -> None:
    with engine.begin() as conn:
        record_spend(
            conn,
            [SpendIn(channel="email", campaign=campaign, period_start="2026-11-01",
                     period_end="2026-11-30", amount=amount)],
        )  # fmt: skip


def test_an_order_is_credited_once_to_the_last_touch_in_its_journeys_window(engine, smtp, db_url, capsys):
    # cart-a writes 1 minute after the cart (window 14 days); its copy cart-b 1 hour after (3 days)
    for journey in (cart("cart-a", 14, 1), cart("cart-b", 3, 60)):
        save_definition(engine, journey)
        set_status(engine, journey["name"], "live")
    for who in ("ann", "bob", "cat"):
        shopper(engine, who)
        event(engine, who, "add_to_cart", T0)
    tick(engine, T0 + timedelta(seconds=1))  # both enrol everyone
    tick(engine, T0 + timedelta(minutes=2))  # cart-a sends at T0 + 2 min
    tick(engine, T0 + timedelta(minutes=61))  # cart-b sends at T0 + 61 min
    assert len(smtp.messages) == 6
    with engine.connect() as conn:
        a_to_bob = conn.execute(
            select(outbox.c.key).where(outbox.c.to_address == "bob@example.com", outbox.c.step == "step-2")
            .order_by(outbox.c.id).limit(1)
        ).scalar_one()  # fmt: skip
    # bob clicks cart-a's message two hours in, after cart-b wrote to him (the tracked link records
    # this event, as tests/journeys/test_channels.py shows)
    event(engine, "bob", "email_click", T0 + timedelta(hours=2), message=a_to_bob, url="https://shop/x")
    order(engine, "ann", T0 + timedelta(days=1), 100, "A1")  # last touch: cart-b's mail (61 min)
    order(engine, "bob", T0 + timedelta(days=1), 60, "B1")  # last touch: his click on cart-a's mail
    order(engine, "cat", T0 + timedelta(days=5), 80, "C1")  # cart-b's mail is past its 3 days: cart-a
    order(engine, "cat", T0 + timedelta(days=20), 999, "C2")  # past both windows: no campaign
    order(engine, "ann", T0 - timedelta(days=1), 500, "A0")  # before any message: no campaign
    spend(engine, "cart-a", 40)
    spend(engine, "cart-b", 50)
    roi = {r.campaign: r for r in campaign_roi(engine)}
    a, b = roi["cart-a"], roi["cart-b"]
    assert (a.attributed_orders, a.revenue, a.cost) == (2, 140.0, 40.0)  # bob 60 + cat 80
    assert (b.attributed_orders, b.revenue, b.cost) == (1, 100.0, 50.0)  # ann 100
    assert a.roi == pytest.approx((140 - 40) / 40) and b.roi == pytest.approx((100 - 50) / 50)
    assert a.revenue + b.revenue == 240.0  # each of the three orders once (it was 2 x 240 before)
    assert (a.window_days, b.window_days) == (14.0, 3.0)
    assert a.incremental_revenue is None and a.holdout == 0  # no holdout: nothing to compare with
    assert main(["--db", db_url, "campaigns", "roi", "--json"]) == 0
    shown = {r["campaign"]: r for r in json.loads(capsys.readouterr().out)}
    assert (shown["cart-a"]["attributed_orders"], shown["cart-a"]["revenue"]) == (2, 140.0)
    assert (shown["cart-b"]["attributed_orders"], shown["cart-b"]["revenue"]) == (1, 100.0)


def test_incremental_revenue_and_roi_against_the_holdout(engine, smtp):
    journey = {
        "name": "promo",
        "trigger": {"event": "signup"},
        "goal": {"event": "purchase", "within_days": 7},
        "steps": [{"split": {"name": "promo-test", "arms": {"mail": 50}, "holdout": 50}},
                  {"send": {"template": "holiday"}}],
    }  # fmt: skip
    save_definition(engine, journey)
    set_status(engine, "promo", "live")
    # exactly four customers in the mailed arm and two in the holdout (arms are a hash of the id)
    treated, held, i = [], [], 0
    while len(treated) < 4 or len(held) < 2:
        who = f"p{i}"
        i += 1
        arm = arm_of("promo-test", shopper(engine, who), {"mail": 50}, 50)
        group = treated if arm == "mail" else held
        if len(group) < (4 if arm == "mail" else 2):
            group.append(who)
            event(engine, who, "signup", T0)
    tick(engine, T0 + timedelta(minutes=1))
    assert len(smtp.messages) == 4
    order(engine, treated[0], T0 + timedelta(days=1), 120, "t0")
    order(engine, treated[1], T0 + timedelta(days=2), 80, "t1")
    order(engine, treated[2], T0 + timedelta(days=10), 25, "t2")  # after the 7-day window
    order(engine, held[0], T0 + timedelta(days=1), 40, "h0")
    spend(engine, "promo", 30)
    r = {r.campaign: r for r in campaign_roi(engine)}["promo"]
    # treated: (120 + 80) / 4 = 50.00 a customer; holdout: 40 / 2 = 20.00 a customer
    # incremental revenue = (50 - 20) x 4 = 120.00; incremental ROI = (120 - 30) / 30 = 3.0
    # attributed: the two orders after a mail within 7 days = 200; ROI = (200 - 30) / 30 = 5.667
    assert (r.customers, r.holdout) == (4, 2)
    assert (r.treated_revenue_per_customer, r.holdout_revenue_per_customer) == (50.0, 20.0)
    assert r.incremental_revenue == 120.0 and r.incremental_roi == pytest.approx(3.0)
    assert (r.attributed_orders, r.revenue) == (2, 200.0) and r.roi == pytest.approx(170 / 30)
