"""The demo business: deterministic for a seed, realistic in shape, truth kept."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from clm.core.errors import Conflict
from clm.customers.merge import suspected_duplicates
from clm.demo.service import build_demo
from clm.demo.simulate import BGNBD_A, BGNBD_ALPHA, BGNBD_B, BGNBD_R, DemoConfig, simulate_chunk
from clm.demo.tables import demo_truth

END = datetime(2026, 6, 30, tzinfo=UTC)


def test_same_seed_same_business_other_seed_other_business():
    a = simulate_chunk(DemoConfig(customers=300, seed=7, end=END), 0, 0, 300)
    b = simulate_chunk(DemoConfig(customers=300, seed=7, end=END), 0, 0, 300)
    c = simulate_chunk(DemoConfig(customers=300, seed=8, end=END), 0, 0, 300)
    assert a.events == b.events and a.orders == b.orders and a.customers == b.customers
    assert a.events != c.events


def test_customer_parameters_follow_the_stated_population():
    chunk = simulate_chunk(DemoConfig(customers=20_000, seed=1, end=END), 0, 0, 20_000)
    truth = [t for t in chunk.truth if t["segment"] != "duplicate"]
    lam = np.array([t["purchase_rate"] for t in truth])
    p = np.array([t["dropout_prob"] for t in truth])
    # Gamma(r, α) mean r/α and variance r/α²; Beta(a, b) mean a/(a+b) before channel multipliers.
    assert lam.mean() == pytest.approx(BGNBD_R / BGNBD_ALPHA, rel=0.05)
    assert lam.var() == pytest.approx(BGNBD_R / BGNBD_ALPHA**2, rel=0.1)
    assert 0.8 < p.mean() / (BGNBD_A / (BGNBD_A + BGNBD_B)) < 1.25
    # Buyers who dropped out bought nothing after their dropout time.
    orders_by = {}
    for o in chunk.orders:
        orders_by.setdefault(o["customer_index"], []).append(o["ordered_at"])
    start = DemoConfig(customers=1, end=END).start
    for t in truth[:2000]:
        if t["segment"] == "buyer" and t["dropped_out_at"] is not None:
            dropped = (t["dropped_out_at"] - start).total_seconds() / 86400
            assert max(orders_by[t["customer_index"]]) <= dropped + 1e-6


def test_demo_buying_is_the_modified_bgnbd_its_fit_recovers_the_true_parameters():
    """The demo says its buyers follow the modified BG/NBD (dropout possible after every purchase,
    the first included): fitted on simulated purchases of the `search` channel (dropout factor 1),
    that model finds the simulation's r, α, a, b within three standard errors; plain BG/NBD,
    which forbids dropping out at the first purchase, does not describe the same data."""
    from clm.analytics.clv import BetaGeoNBD, ModifiedBetaGeoNBD
    from clm.demo.catalog import CHANNELS

    assert CHANNELS["search"][3] == 1.0
    config = DemoConfig(customers=20_000, seed=11, end=END)
    chunk = simulate_chunk(config, 0, 0, 20_000)
    search = {i for i, c in enumerate(chunk.customers[:20_000]) if c["acquisition_channel"] == "search"}
    times: dict[int, list[float]] = {}
    for o in chunk.orders:  # every order, whatever became of it, is a purchase of the process
        if o["customer_index"] in search:
            times.setdefault(o["customer_index"], []).append(o["ordered_at"])
    first = np.array([min(t) for t in times.values()])
    x = np.array([len(t) - 1 for t in times.values()], dtype=float)
    tx = np.array([max(t) for t in times.values()]) - first
    T = config.days - first
    assert len(times) > 2_500
    truth = {"r": BGNBD_R, "alpha": BGNBD_ALPHA, "a": BGNBD_A, "b": BGNBD_B}
    modified = ModifiedBetaGeoNBD().fit(x, tx, T)
    assert modified.converged_
    for name, value in truth.items():
        assert abs(modified.params_[name] - value) < 3 * modified.standard_errors_[name], name
    plain = BetaGeoNBD().fit(x, tx, T)
    assert abs(plain.params_["r"] - BGNBD_R) > 5 * plain.standard_errors_["r"]


def test_demo_builds_a_store_with_truth_and_refuses_to_build_twice(engine):
    summary = build_demo(engine, DemoConfig(customers=400, seed=3, end=END))
    assert summary.customers >= 400 and summary.orders > 200 and summary.events > 5_000
    assert {row.channel for row in summary.by_channel} == {
        "ads",
        "social",
        "search",
        "referral",
        "offline",
    }
    cac = {row.channel: row.cac for row in summary.by_channel}
    assert cac["ads"] > cac["search"]  # paid ads cost more per customer than search
    kinds = dict(summary.events_by_type)
    for kind in (
        "page_view",
        "add_to_cart",
        "purchase",
        "refund",
        "email_open",
        "survey_response",
        "ticket_opened",
    ):
        assert kinds.get(kind, 0) > 0, kind
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(demo_truth)).scalar_one() == summary.customers
    assert summary.last_event is not None and summary.last_event <= END
    with pytest.raises(Conflict, match="already holds"):
        build_demo(engine, DemoConfig(customers=10, seed=3, end=END))


def test_planted_duplicates_are_found(engine):
    build_demo(engine, DemoConfig(customers=2_000, seed=5, end=END))
    with engine.connect() as conn:
        planted = {
            (min(a, b), max(a, b))
            for a, b in conn.execute(
                select(demo_truth.c.customer_id, demo_truth.c.duplicate_of).where(
                    demo_truth.c.duplicate_of.is_not(None)
                )
            )
        }
    found = {
        (p.customer_id, p.other_id)
        for p in suspected_duplicates(engine, limit=1000)
        if p.reason == "same name and birthday"
    }
    assert planted and planted <= found


def test_summary_figures_match_a_hand_built_store(engine):
    from datetime import date

    from clm.commerce.schemas import OrderIn, SpendIn
    from clm.commerce.service import ingest_order_batch, record_spend
    from clm.customers.schemas import CustomerIn
    from clm.customers.service import upsert_customer
    from clm.demo.service import summarize

    for i, channel in enumerate(["ads", "ads", "search"]):
        upsert_customer(engine, CustomerIn(external_id=f"u{i}", acquisition_channel=channel), actor="t")
    t = datetime(2025, 3, 1, tzinfo=UTC)
    ingest_order_batch(
        engine,
        [
            OrderIn(order_id="a", external_id="u0", ordered_at=t, total=100),
            OrderIn(
                order_id="b",
                external_id="u0",
                ordered_at=t,
                total=40,
                status="refunded",
                refunded_at=t + timedelta(days=1),
            ),
            OrderIn(order_id="c", external_id="u2", ordered_at=t, total=30),
        ],
        actor="t",
    )
    with engine.begin() as conn:
        record_spend(
            conn,
            [SpendIn(channel="ads", amount=50, period_start=date(2025, 3, 1), period_end=date(2025, 3, 31))],
        )
    s = summarize(engine)
    assert (s.customers, s.orders, s.revenue) == (3, 3, 130.0)  # refunded orders earn nothing
    ads, search = s.by_channel
    # ads: 2 customers, 1 buyer, revenue 100, spend 50 → CAC 50 / 2 = 25
    assert (ads.channel, ads.customers, ads.buyers, ads.revenue, ads.spend, ads.cac) == (
        "ads",
        2,
        1,
        100.0,
        50.0,
        25.0,
    )
    assert (search.customers, search.buyers, search.revenue, search.cac) == (1, 1, 30.0, 0.0)
    assert (s.first_event, s.last_event) == (t, t + timedelta(days=1))
    # u0 and u2 were first seen at their orders; u1 has done nothing since being created now
    assert s.new_per_month == [("2025-03", 2), (datetime.now(UTC).strftime("%Y-%m"), 1)]


def test_init_then_demo_leaves_the_builtin_segments_built_on_the_demo_data(engine, db_url, capsys):
    """`clm init` creates the built-in segments on the empty store; `clm demo` must rebuild them
    on the data it brings, so each one's size equals a direct count of its condition."""
    from clm.cli import main
    from clm.segments.builtin import BUILTINS
    from clm.segments.service import list_segments, preview

    assert main(["--db", db_url, "init"]) == 0
    assert {s.name: s.members for s in list_segments(engine)} == {b.name: 0 for b in BUILTINS}
    assert main(["--db", db_url, "demo", "--customers", "800", "--seed", "3", "--no-history"]) == 0
    capsys.readouterr()
    sizes = {s.name: s.members for s in list_segments(engine)}
    assert sizes == {b.name: preview(engine, b.where).count for b in BUILTINS}
    for name in ("age_18_24", "age_25_34", "age_35_49", "age_50_plus", "tier1_cities", "active_users"):
        assert sizes[name] > 0, name
    assert sizes["rfm_champions"] > 0 and sizes["rfm_hibernating"] > 0  # after the demo's CLV scores
