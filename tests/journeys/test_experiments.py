"""Experiments: the two-proportion test finds a real 5-point uplift and, with no uplift, is
wrong about as often as alpha says; arms are sticky; a journey's experiment report and ROI."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clm.cli import main
from clm.commerce.schemas import OrderIn, SpendIn
from clm.commerce.service import ingest_order_batch, record_spend
from clm.journeys.attribution import campaign_roi
from clm.journeys.experiments import experiment_report, small_sample, two_proportion_test
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
    # 120/1000 against 100/1000, unpooled: se = sqrt(.12*.88/1000 + .10*.90/1000) = 0.0139857,
    # z = 0.02 / 0.0139857 = 1.43004, p = 2 * (1 - Phi(1.43004)) = 0.15270
    diff, z, p, half = two_proportion_test(1000, 120, 1000, 100)
    assert diff == pytest.approx(0.02)
    assert z == pytest.approx(1.43004, abs=1e-5)
    assert p == pytest.approx(0.15270, abs=1e-4)
    assert half == pytest.approx(1.959964 * 0.0139857, abs=1e-6)


def test_the_published_aspirin_example():
    # Agresti, An Introduction to Categorical Data Analysis (2nd ed., 2007), section 2.2.3, the
    # Physicians' Health Study: myocardial infarction in 189 of 11,034 on placebo and 104 of 11,037
    # on aspirin; difference 0.0171 - 0.0094 = 0.0077, SE 0.0015, 95% CI (0.005, 0.011).
    diff, z, p, half = two_proportion_test(11_034, 189, 11_037, 104)
    assert round(diff, 4) == 0.0077 and round(half / 1.959964, 4) == 0.0015
    assert (round(diff - half, 3), round(diff + half, 3)) == (0.005, 0.011)
    assert z == pytest.approx(diff / (half / 1.959964)) and round(z, 2) == 5.00 and p < 1e-6


def test_the_contradiction_from_the_issue_cannot_happen():
    # 3/10 against 0/10 gave "+30% (95% CI +1.6% ... +58.4%), p = 0.0603: not significant" when the
    # p-value used a pooled SE and the interval an unpooled one; now both use se = sqrt(.3*.7/10)
    diff, z, p, half = two_proportion_test(10, 3, 10, 0)
    assert z == pytest.approx(0.3 / math.sqrt(0.021))
    assert diff - half > 0 and p < 0.05


@settings(max_examples=3_000, deadline=None)
@given(
    st.integers(1, 5_000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
    st.integers(1, 5_000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
    st.sampled_from([0.01, 0.05, 0.10]),
)
def test_the_interval_excludes_zero_exactly_when_p_is_below_alpha(arm, control, alpha):
    diff, _, p, half = two_proportion_test(*arm, *control, alpha=alpha)
    assert (diff - half > 0 or diff + half < 0) == (p < alpha)


def test_random_tables_agree_too():
    rng = np.random.default_rng(25)
    n1, n0 = rng.integers(1, 300, 20_000), rng.integers(1, 300, 20_000)
    x1, x0 = rng.binomial(n1, rng.random(20_000)), rng.binomial(n0, rng.random(20_000))
    agree = 0
    for a, b, c, d in zip(n1, x1, n0, x0, strict=True):
        diff, _, p, half = two_proportion_test(int(a), int(b), int(c), int(d))
        agree += (diff - half > 0 or diff + half < 0) == (p < 0.05)
    assert agree == 20_000


def test_the_small_sample_rule():
    assert small_sample(100, 9) and small_sample(100, 91) and small_sample(15, 10)
    assert not small_sample(20, 10) and not small_sample(1_000, 500)


def test_arms_are_sticky_and_shared_as_asked():
    arms = [arm_of("exp", c, {"a": 45, "b": 45}, 10) for c in range(20_000)]
    assert arms == [arm_of("exp", c, {"a": 45, "b": 45}, 10) for c in range(20_000)]
    share = {k: arms.count(k) / len(arms) for k in ("a", "b", "holdout")}
    assert share["holdout"] == pytest.approx(0.10, abs=0.01) and share["a"] == pytest.approx(0.45, abs=0.015)


def test_report_and_roi_of_a_journey(engine, smtp, db_url, capsys, client, personas):
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
    # 4 conversions against 0: far too few for the z-test, and the report says so
    assert report.comparisons[0].small_sample
    assert "mail has 4 conversions" in report.comparisons[0].warning
    assert "holdout has 0 conversions" in report.comparisons[0].warning
    assert main(["--db", db_url, "experiments", "report", "promo-test"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "warning: too few to judge: mail has 4 conversions" in printed
    answer = client.get("/api/v1/experiments/promo-test", headers=personas.headers("vic")).json()
    assert answer["comparisons"][0]["small_sample"] is True
    assert answer["comparisons"][0]["warning"] == report.comparisons[0].warning
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
