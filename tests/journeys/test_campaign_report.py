"""One campaign's report: message figures, conversions, ROI as `campaign_roi` gives it, and the
incremental lift and ROI against the holdout with intervals, hand-computed (the holdout case of
test_attribution.py, whose ROI figures are checked there)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from clm.core.timeutil import store_day
from clm.customers.service import set_consent
from clm.journeys.attribution import campaign_roi
from clm.journeys.campaigns import UNSUBSCRIBE_SOURCE, campaign_report, incremental, list_campaigns
from clm.journeys.experiments import experiment_report
from clm.journeys.service import save_definition, set_status, tick
from clm.journeys.steps import arm_of
from clm.journeys.tables import outbox, suppressions
from tests.journeys.test_attribution import T0, order, spend
from tests.journeys.test_cart_journey import event, shopper

PROMO = {
    "name": "promo",
    "title": "Promo",
    "trigger": {"event": "signup"},
    "goal": {"event": "purchase", "within_days": 7},
    "steps": [{"split": {"name": "promo-test", "arms": {"mail": 50}, "holdout": 50}},
              {"send": {"template": "holiday"}}],
}  # fmt: skip


@pytest.fixture
def promo(engine, smtp):  # type: ignore[no-untyped-def]
    """Four mailed customers and two held out; orders 120 and 80 (and 25 after the window) from
    the mailed, 40 from one held out; cost 30."""
    save_definition(engine, PROMO)
    set_status(engine, "promo", "live")
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
    order(engine, treated[0], T0 + timedelta(days=1), 120, "t0")
    order(engine, treated[1], T0 + timedelta(days=2), 80, "t1")
    order(engine, treated[2], T0 + timedelta(days=10), 25, "t2")
    order(engine, held[0], T0 + timedelta(days=1), 40, "h0")
    spend(engine, "promo", 30)
    return treated, held


def test_the_report_against_the_holdout_is_hand_computed(engine, promo):
    r = campaign_report(engine, "promo")
    assert (r.entered, r.converted) == (6, 3)  # t0, t1 and h0 bought within 7 days; t2 too late
    assert r.roi == {x.campaign: x for x in campaign_roi(engine)}["promo"]  # the API's figures
    i = r.incremental
    assert i is not None
    assert (i.treated, i.holdout, i.treated_conversions, i.holdout_conversions) == (4, 2, 2, 1)
    assert i.lift == pytest.approx(0.0) and i.p_value == pytest.approx(1.0) and not i.significant
    # revenue a customer: treated 120, 80, 0, 0 (mean 50, s² = 10800 / 3 = 3600);
    # held out 40, 0 (mean 20, s² = 800); SE = sqrt(3600/4 + 800/2) = sqrt(1300)
    half = 1.959963984540054 * math.sqrt(1300)
    assert (i.revenue_per_treated, i.revenue_per_holdout) == (pytest.approx(50), pytest.approx(20))
    assert i.incremental_revenue == pytest.approx(120) == r.roi.incremental_revenue
    assert i.incremental_revenue_low == pytest.approx((30 - half) * 4)  # -162.67
    assert i.incremental_revenue_high == pytest.approx((30 + half) * 4)  # 402.67
    assert i.incremental_roi == pytest.approx(3.0) == r.roi.incremental_roi
    assert i.incremental_roi_low == pytest.approx(((30 - half) * 4 - 30) / 30)
    assert i.incremental_roi_high == pytest.approx(((30 + half) * 4 - 30) / 30)
    assert i.warning and "holdout has 1 conversions" in i.warning  # far too few to judge
    assert r.experiments == [experiment_report(engine, "promo-test")]
    assert (r.delivery.sent, r.delivery.delivered, r.delivery.bounced) == (4, 4, 0)
    # the chart: six entered and four sent on the first day (in the store's zone)
    first = next(d for d in r.days if d.entered)
    assert (first.day, first.entered, first.sent, first.converted) == (store_day(T0), 6, 4, 3)
    assert sum(d.entered for d in r.days) == 6
    row = {c.campaign: c for c in list_campaigns(engine)}["promo"]
    assert (row.sent, row.roi, row.trigger, row.title) == (4, r.roi, "event", "Promo")


def test_opens_clicks_unsubscribes_and_bounces_count_per_message(engine, promo):
    with engine.connect() as conn:
        sent = conn.execute(
            select(outbox.c.id, outbox.c.key, outbox.c.customer_id, outbox.c.to_address)
        ).all()
    first, second, third, fourth = sorted(sent)
    at = T0 + timedelta(hours=1)
    for n in range(2):  # two opens of the first message count once
        event(
            engine, first.to_address.split("@")[0], "email_open", at + timedelta(minutes=n), message=first.key
        )
    event(engine, second.to_address.split("@")[0], "email_click", at, message=second.key, url="https://x/")
    set_consent(engine, third.customer_id, "email", False, source=f"{UNSUBSCRIBE_SOURCE}{third.key})")
    with engine.begin() as conn:  # the fourth bounced: refused for good, its address suppressed
        conn.execute(
            update(outbox).where(outbox.c.id == fourth.id).values(status="failed", reason="550 no user")
        )
        conn.execute(
            insert(suppressions).values(channel="email", address=fourth.to_address, reason="550", at=T0)
        )
    d = campaign_report(engine, "promo").delivery
    assert (d.sent, d.delivered, d.bounced, d.failed) == (4, 3, 1, 0)
    assert (d.opened, d.clicked, d.unsubscribed) == (1, 1, 1)


def test_incremental_is_none_without_a_holdout_and_the_groups_add_up():
    assert (
        incremental({"treated": (5, 1, 10.0, 100.0), "holdout": (0, 0, 0.0, 0.0), "other": (0,) * 4}, 10)
        is None
    )
    shown = incremental(
        {"treated": (100, 30, 0.0, 0.0), "holdout": (100, 20, 0.0, 0.0), "other": (0,) * 4}, 0
    )
    assert shown is not None
    # two-proportion z (unpooled): 0.3 vs 0.2, SE = sqrt(.21/100 + .16/100) = 0.060828
    assert shown.lift == pytest.approx(0.1)
    assert shown.lift_low == pytest.approx(0.1 - 1.959963984540054 * math.sqrt(0.0037))
    assert shown.p_value == pytest.approx(0.10018, abs=1e-5)  # z = 0.1 / 0.060828 = 1.6440
    assert shown.incremental_roi is None and shown.warning is None  # no cost: no ROI


def test_an_unknown_campaign_is_not_found(engine):
    from clm.core.errors import NotFound

    with pytest.raises(NotFound):
        campaign_report(engine, "nope")
