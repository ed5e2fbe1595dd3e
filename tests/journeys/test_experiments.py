"""Experiments: the two-proportion test finds a real 5-point uplift and, with no uplift, is
wrong about as often as alpha says; arms are sticky; a journey's experiment report and ROI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from clm.commerce.schemas import OrderIn, SpendIn
from clm.commerce.service import ingest_order_batch, record_spend
from clm.journeys.experiments import campaign_roi, experiment_report, two_proportion_test
from clm.journeys.service import save_definition, set_status, tick
from clm.journeys.steps import arm_of
from tests.journeys.test_cart_journey import event, shopper

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def test_a_real_five_point_uplift_is_detected():
    rng = np.random.default_rng(7)
    n = 4_000
    control = rng.binomial(n, 0.20)
    treated = rng.binomial(n, 0.25)
    diff, z, p, half = two_proportion_test(n, int(treated), n, int(control))
    assert p < 0.05 and z > 0
    assert diff - half < 0.05 < diff + half  # the interval covers the true uplift


def test_without_uplift_false_positives_stay_near_alpha():
    rng = np.random.default_rng(11)
    n, runs = 2_000, 2_000
    a = rng.binomial(n, 0.10, size=runs)
    b = rng.binomial(n, 0.10, size=runs)
    rejected = sum(two_proportion_test(n, int(x), n, int(y))[2] < 0.05 for x, y in zip(a, b, strict=True))
    assert 0.035 <= rejected / runs <= 0.065


def test_hand_computed_z_test():
    # 120/1000 against 100/1000: pooled p = 0.11, se = sqrt(.11*.89*.002) = 0.0139929, z = 1.42930
    diff, z, p, _ = two_proportion_test(1000, 120, 1000, 100)
    assert diff == pytest.approx(0.02)
    assert z == pytest.approx(1.42930, abs=1e-5)
    assert p == pytest.approx(0.15291, abs=1e-4)


def test_arms_are_sticky_and_shared_as_asked():
    arms = [arm_of("exp", c, {"a": 45, "b": 45}, 10) for c in range(20_000)]
    assert arms == [arm_of("exp", c, {"a": 45, "b": 45}, 10) for c in range(20_000)]
    share = {k: arms.count(k) / len(arms) for k in ("a", "b", "holdout")}
    assert share["holdout"] == pytest.approx(0.10, abs=0.01) and share["a"] == pytest.approx(0.45, abs=0.015)


def test_report_and_roi_of_a_journey(engine, smtp):
    save_definition(
        engine,
        {
            "name": "promo",
            "trigger": {"event": "signup"},
            "goal": {"event": "purchase", "within_days": 7},
            "steps": [{"split": {"name": "promo-test", "arms": {"mail": 50}, "holdout": 50}},
                      {"send": {"template": "holiday", "class": "transactional"}}],
        },
    )  # fmt: skip
    set_status(engine, "promo", "live")
    names = [f"p{i}" for i in range(40)]
    for who in names:
        shopper(engine, who)
        event(engine, who, "signup", T0)
    tick(engine, T0 + timedelta(minutes=1))
    report = experiment_report(engine, "promo-test")
    arms = {a.name: a for a in report.arms}
    assert arms["mail"].customers + arms["holdout"].customers == 40
    mailed = [w for w in names if arm_of("promo-test", _id(engine, w), {"mail": 50}, 50) == "mail"]
    buyers = mailed[:4]
    for i, who in enumerate(buyers):
        order = OrderIn(order_id=f"o{i}", external_id=who, ordered_at=T0 + timedelta(days=1), total=50)
        ingest_order_batch(engine, [order], actor="t")
        event(engine, who, "purchase", T0 + timedelta(days=1))
    report = experiment_report(engine, "promo-test")
    arms = {a.name: a for a in report.arms}
    assert arms["mail"].conversions == 4 and arms["holdout"].conversions == 0
    assert report.control == "holdout" and report.comparisons[0].lift == pytest.approx(
        4 / arms["mail"].customers
    )
    with engine.begin() as conn:
        record_spend(
            conn,
            [
                SpendIn(
                    channel="email",
                    campaign="promo",
                    period_start="2026-11-01",
                    period_end="2026-11-30",
                    amount=50,
                )
            ],
        )
    roi = {r.campaign: r for r in campaign_roi(engine)}["promo"]
    assert (roi.revenue, roi.cost, roi.roi) == (200.0, 50.0, 3.0)  # (200 - 50) / 50
    assert roi.incremental_revenue == 200.0 and roi.holdout_revenue_per_customer == 0.0


def _id(engine, who: str) -> int:
    from clm.customers.service import find_customers

    return find_customers(engine, {"external_id": who})[0].id
