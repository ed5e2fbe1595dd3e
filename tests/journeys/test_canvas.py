"""The canvas's numbers against hand-counted journeys: entered, here now, each way out, messages
by status and conversions per node; a split's arms with revenue and incremental ROI; the list's
entered / converted / revenue; a paused journey's messages wait."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from clm.commerce.schemas import OrderIn, SpendIn
from clm.commerce.service import ingest_order_batch, record_spend
from clm.customers.schemas import CustomerIn
from clm.customers.service import set_consent, upsert_customer
from clm.journeys.canvas import END, TRIGGER, canvas_numbers, journey_graph, journey_summaries
from clm.journeys.experiments import experiment_report
from clm.journeys.service import get_journey, save_definition, set_status, tick
from clm.journeys.steps import arm_of
from clm.journeys.tables import outbox
from tests.journeys.test_cart_journey import T0, event

BRANCHED = {
    "name": "canvas-test",
    "trigger": {"event": "add_to_cart"},
    "reentry": "once",
    "goal": {"event": "purchase", "within_days": 7},
    "steps": [
        {"id": "w", "wait": {"hours": 1}},
        {"id": "b", "branch": {"if": 'city = "Shanghai"', "else": "done"}},
        {"id": "s", "send": {"channel": "email", "template": "cart-reminder"}, "next": None},
        {"id": "done", "exit": {"reason": "not in Shanghai"}},
    ],
}


def person(engine, name: str, city: str, consent: bool = True) -> int:
    cid = upsert_customer(
        engine,
        CustomerIn(external_id=name, email=f"{name}@example.com", city=city, country="CN"),
        actor="test",
    )[0].id
    if consent:
        set_consent(engine, cid, "email", True, source="test")
    return cid


def test_the_graph_has_every_way_out():
    d = get_definition(BRANCHED)
    graph = journey_graph(d)
    assert [n.id for n in graph.nodes] == [TRIGGER, "w", "b", "s", "done"]
    ways = {(e.source, e.target, e.outcome) for e in graph.edges}
    assert ways == {
        (TRIGGER, "w", ""),
        ("w", "b", "scheduled"),
        ("b", "s", "then"),
        ("b", "done", "else"),
        ("s", END, "queued"),
    }


def get_definition(raw):  # type: ignore[no-untyped-def]
    from clm.journeys.definition import definition_from_dict

    return definition_from_dict(raw)


def test_hand_counted_numbers_on_every_node_and_edge(engine, smtp):
    save_definition(engine, BRANCHED)
    set_status(engine, "canvas-test", "live")
    person(engine, "ann", "Shanghai")
    person(engine, "bob", "Beijing")
    person(engine, "cat", "Shanghai", consent=False)  # her message is skipped
    person(engine, "dan", "Shanghai")  # enters later: still in the hour's wait
    for who in ("ann", "bob", "cat"):
        event(engine, who, "add_to_cart", T0)
    tick(engine, T0 + timedelta(minutes=1))
    event(engine, "dan", "add_to_cart", T0 + timedelta(minutes=30))
    tick(engine, T0 + timedelta(minutes=31))
    tick(engine, T0 + timedelta(hours=1, minutes=2))  # ann, bob, cat pass the branch
    event(engine, "ann", "purchase", T0 + timedelta(hours=2))  # ann converts (goal: 7 days)
    event(engine, "bob", "purchase", T0 + timedelta(days=9))  # too late to count

    now = T0 + timedelta(hours=1, minutes=10)
    n = canvas_numbers(engine, "canvas-test", T0 - timedelta(days=1), T0 + timedelta(days=1), now)
    assert n.entered == 4
    trig, w, b, s, done = (n.nodes[k] for k in (TRIGGER, "w", "b", "s", "done"))
    assert (trig.entered, trig.converted) == (4, 1)
    assert (w.entered, w.here_now, w.converted) == (4, 1, 1)  # dan waits in the hour
    assert (b.entered, b.here_now, b.converted) == (3, 0, 1)
    assert (s.entered, s.sent, s.skipped, s.held, s.failed, s.converted) == (2, 1, 1, 0, 0, 1)
    assert (done.entered, done.converted) == (1, 0)
    assert n.edges[(TRIGGER, "")] == 4
    assert n.edges[("w", "scheduled")] == 4
    assert (n.edges[("b", "then")], n.edges[("b", "else")]) == (2, 1)
    assert n.edges[("s", "queued")] == 2
    assert len(smtp.to("ann@example.com")) == 1 and smtp.to("cat@example.com") == []

    # a period before anything happened counts nothing, but "here now" is now
    empty = canvas_numbers(engine, "canvas-test", T0 - timedelta(days=3), T0 - timedelta(days=2), now)
    assert empty.entered == 0 and empty.nodes["w"].entered == 0 and empty.nodes["w"].here_now == 1

    [row] = journey_summaries(engine, T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert (row.name, row.status, row.version, row.active, row.entered, row.converted) == (
        "canvas-test", "live", 1, 1, 4, 1,
    )  # fmt: skip


def test_pausing_stops_the_journeys_sends_at_once(engine, smtp):
    save_definition(engine, {**BRANCHED, "name": "pause-test"})
    set_status(engine, "pause-test", "live")
    person(engine, "ann", "Shanghai")
    event(engine, "ann", "add_to_cart", T0)
    tick(engine, T0 + timedelta(minutes=1))
    tick(engine, T0 + timedelta(hours=1, minutes=1), send=False)  # the message is queued
    set_status(engine, "pause-test", "paused")
    tick(engine, T0 + timedelta(hours=1, minutes=2))
    assert smtp.messages == []
    with engine.connect() as conn:
        assert conn.execute(outbox.select()).one().status == "queued"
    n = canvas_numbers(engine, "pause-test", T0 - timedelta(days=1), T0 + timedelta(days=1), T0)
    assert n.nodes["s"].held == 1
    set_status(engine, "pause-test", "live")
    tick(engine, T0 + timedelta(hours=1, minutes=3))
    assert len(smtp.to("ann@example.com")) == 1


SPLIT = {
    "name": "split-test",
    "trigger": {"event": "add_to_cart"},
    "goal": {"event": "purchase", "within_days": 7},
    "steps": [
        {"id": "ab", "split": {"name": "canvas-ab", "arms": {"a": 40, "b": 40}, "holdout": 20}},
        {"id": "s", "send": {"channel": "email", "template": "cart-reminder"}},
    ],
}


def test_split_arms_carry_the_experiment_report_revenue_and_incremental_roi(engine, smtp):
    save_definition(engine, SPLIT)
    set_status(engine, "split-test", "live")
    ids = {f"p{i}": person(engine, f"p{i}", "Shanghai") for i in range(40)}
    arm = {name: arm_of("canvas-ab", cid, {"a": 40, "b": 40}, 20) for name, cid in ids.items()}
    for name in ids:
        event(engine, name, "add_to_cart", T0)
    tick(engine, T0 + timedelta(minutes=1))
    # every third customer buys for 100 two days later; one buys 50 after the window
    buyers = [name for i, name in enumerate(ids) if i % 3 == 0]
    orders = [
        OrderIn(order_id=f"o-{name}", external_id=name, ordered_at=T0 + timedelta(days=2), status="completed",
                total=100.0, items=[{"sku": "A", "unit_price": 100.0}])
        for name in buyers
    ] + [OrderIn(order_id="late", external_id="p1", ordered_at=T0 + timedelta(days=8), status="completed",
                 total=50.0, items=[{"sku": "A", "unit_price": 50.0}])]  # fmt: skip
    ingest_order_batch(engine, orders, actor="test")  # each records its purchase event too
    with engine.begin() as conn:
        record_spend(
            conn,
            [SpendIn(channel="email", campaign="split-test", period_start=date(2026, 11, 1),
                     period_end=date(2026, 11, 30), amount=120.0)],
        )  # fmt: skip

    n = canvas_numbers(
        engine, "split-test", T0 - timedelta(days=1), T0 + timedelta(days=30), T0 + timedelta(days=3)
    )
    result = n.splits["ab"]
    report = experiment_report(engine, "canvas-ab")
    assert [(a.arm, a.customers, a.conversions) for a in result.arms] == [
        (a.name, a.customers, a.conversions) for a in report.arms
    ]
    count = {k: sum(1 for v in arm.values() if v == k) for k in ("a", "b", "holdout")}
    revenue = {k: 100.0 * sum(1 for name in buyers if arm[name] == k) for k in count}
    assert all(count.values()), count  # 40 customers land in every arm
    by = {a.arm: a for a in result.arms}
    treated = count["a"] + count["b"]
    for k in ("a", "b"):
        assert by[k].customers == count[k] and by[k].revenue == pytest.approx(revenue[k])
        incremental = (revenue[k] / count[k] - revenue["holdout"] / count["holdout"]) * count[k]
        cost = 120.0 * count[k] / treated
        assert by[k].incremental_revenue == pytest.approx(incremental, abs=0.01)
        assert by[k].cost == pytest.approx(cost, abs=0.01)
        assert by[k].incremental_roi == pytest.approx((round(incremental, 2) - cost) / cost)
        comparison = next(c for c in report.comparisons if c.arm == k)
        assert (by[k].lift, by[k].ci_low, by[k].ci_high, by[k].p_value) == (
            comparison.lift, comparison.ci_low, comparison.ci_high, comparison.p_value,
        )  # fmt: skip
    assert by["holdout"].lift is None and by["holdout"].incremental_roi is None
    assert n.edges[("ab", "holdout")] == count["holdout"]
    assert n.edges[("ab", "a")] == count["a"] and n.edges[("ab", "b")] == count["b"]
    [row] = journey_summaries(engine, T0 - timedelta(days=1), T0 + timedelta(days=30))
    assert row.entered == 40 and row.converted == len(buyers)
    assert row.revenue == pytest.approx(100.0 * len(buyers))  # the late order is outside the window
    assert get_journey(engine, "split-test")[0].active == 0
