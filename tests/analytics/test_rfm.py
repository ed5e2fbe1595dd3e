"""RFM summary, scores and named segments, by hand."""

import pandas as pd
import pytest

from clm.analytics.rfm import SEGMENTS, rfm_scores, rfm_summary, segment_of, store_summary
from clm.core.errors import InvalidInput
from tests.lifecycle.conftest import day

TX = pd.DataFrame(
    {
        "customer_id": ["a", "a", "a", "b", "c", "c"],
        "date": ["2026-01-01", "2026-01-01 18:00", "2026-01-11", "2026-01-05", "2026-01-02", "2026-01-30"],
        "amount": [10, 5, 30, 100, 20, 40],
    }
)


def test_summary_by_hand():
    s = rfm_summary(TX, observation_end="2026-01-31")
    a, b, c = s.loc["a"], s.loc["b"], s.loc["c"]
    # a: two purchases on Jan 1 are one period (15), then Jan 11 (30): one repeat, 10 days later
    assert (a.frequency, a.recency, a["T"], a.monetary_value) == (1, 10.0, 30.0, 30.0)
    assert (a.orders, a.revenue, a.days_since_last) == (3, 45.0, 20.0)
    assert (b.frequency, b.recency, b["T"], b.monetary_value) == (0, 0.0, 26.0, 0.0)
    assert (c.frequency, c.recency, c.monetary_value) == (1, 28.0, 40.0)
    weekly = rfm_summary(TX, observation_end="2026-01-31", unit="week")
    assert weekly.loc["a", "frequency"] == 1 and weekly.loc["a", "recency"] == pytest.approx(10 / 7)
    assert weekly.loc["c", "frequency"] == 1  # days, not weeks, are the purchase periods


def test_bad_transactions_are_refused_with_the_column_named():
    with pytest.raises(InvalidInput, match="no column 'when'"):
        rfm_summary(TX, date_col="when")
    with pytest.raises(InvalidInput, match="after the observation end"):
        rfm_summary(TX, observation_end="2026-01-10")
    bad = TX.assign(date=["2026-01-01", "soon", "2026-01-11", "2026-01-05", "2026-01-02", "2026-01-30"])
    with pytest.raises(InvalidInput, match="1 transaction"):
        rfm_summary(bad)


def test_quintile_scores_and_segments():
    n = 25
    tx = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n) for _ in range(i % 5 + 1)],
            "date": [f"2026-01-{(i % 25) + 1:02d}" for i in range(n) for _ in range(i % 5 + 1)],
            "amount": [10.0 * (i + 1) for i in range(n) for _ in range(i % 5 + 1)],
        }
    )
    scores = rfm_scores(rfm_summary(tx, observation_end="2026-01-31"))
    assert scores[["r", "f", "m"]].stack().between(1, 5).all()
    assert scores["r"].value_counts().tolist() == [5] * 5  # quintiles of 25 customers
    best = scores.loc["c24"]  # latest purchases, 5 orders, most money
    assert (best.r, best.f, best.m, best.segment) == (5, 5, 5, "champions")


@pytest.mark.parametrize(
    ("rf", "name"),
    [
        ("55", "champions"),
        ("44", "loyal"),
        ("52", "potential loyalists"),
        ("51", "new"),
        ("41", "promising"),
        ("33", "need attention"),
        ("31", "about to sleep"),
        ("15", "can't lose them"),
        ("24", "at risk"),
        ("11", "lost"),
        ("21", "hibernating"),
    ],
)
def test_every_named_segment_is_reachable(rf, name):
    assert segment_of(rf) == name


def test_the_segment_map_covers_every_score_pair():
    names = {segment_of(f"{r}{f}") for r in range(1, 6) for f in range(1, 6)}
    assert "other" not in names and names == {n for n, _ in SEGMENTS}


def test_store_summary_counts_only_kept_orders(engine):
    from tests.lifecycle.conftest import Shop

    shop = Shop(engine)
    shop.customer("a", "2026-01-01")
    shop.order("a", "2026-01-01", 10)
    shop.order("a", "2026-01-11", 30)
    shop.order("a", "2026-01-12", 99, status="cancelled")
    shop.order("a", "2026-01-13", 50, status="refunded", refunded_at="2026-01-20")
    s = store_summary(engine, observation_end=day("2026-01-31"))
    row = s.loc[shop.ids["a"]]
    assert (row.frequency, row.recency, row.orders, row.revenue) == (1, 10.0, 2, 40.0)
    before_refund = store_summary(engine, observation_end=day("2026-01-15"))
    assert before_refund.loc[shop.ids["a"], "orders"] == 3


def same_summaries(engine, shop, rows, end, unit="day"):
    """The store's summary of `rows` (customer, date, amount) equals pandas' on them; returned."""
    from_store = store_summary(engine, observation_end=end, unit=unit)
    frame = pd.DataFrame(
        [(shop.ids[w], day(d), t) for w, d, t in rows], columns=["customer_id", "date", "amount"]
    )
    from_frame = rfm_summary(frame, observation_end=end, unit=unit)
    from_frame.index = from_frame.index.astype(int)
    columns = ["frequency", "recency", "T", "monetary_value", "orders", "revenue", "days_since_last"]
    pd.testing.assert_frame_equal(
        from_store[columns].sort_index(),
        from_frame[columns].sort_index(),
        check_dtype=False,
        check_names=False,
    )
    return from_store


def test_store_summary_agrees_with_the_dataframe_summary(engine):
    """Same-day orders are one period in both; the SQL pass and pandas give the same numbers."""
    from tests.lifecycle.conftest import Shop

    shop = Shop(engine)
    shop.customer("a", "2026-01-01")
    shop.customer("b", "2026-01-01")
    rows = [
        ("a", "2026-01-02", 10.0),
        ("a", "2026-01-02", 5.0),  # same day: one period of 15
        ("a", "2026-01-09", 30.0),
        ("a", "2026-02-01", 45.0),
        ("b", "2026-01-20", 70.0),
    ]
    for who, when, total in rows:
        shop.order(who, when, total)
    end = day("2026-03-01")
    from_store = same_summaries(engine, shop, rows, end, unit="week")
    a = from_store.loc[shop.ids["a"]]
    assert (a.frequency, a.orders, a.monetary_value) == (2, 4, 37.5)  # (30 + 45) / 2 repeat periods


def test_store_summary_cut_inside_a_day_counts_that_day_up_to_the_moment(engine):
    """The end's own day comes from the orders, the days before from the order summary: a repeat
    buyer, a first-time buyer and an order after the cut on that day, against pandas."""
    from tests.lifecycle.conftest import Shop

    shop = Shop(engine)
    for who in ("a", "b", "c"):
        shop.customer(who, "2026-01-01")
    rows = [
        ("a", "2026-01-02T09:00", 10.0),
        ("a", "2026-03-01T08:00", 20.0),  # the end's day, before the cut: a repeat period
        ("a", "2026-03-01T11:00", 5.0),  # same day, still before the cut: the same period
        ("b", "2026-03-01T10:00", 40.0),  # a first purchase on the end's day
        ("c", "2026-02-10T10:00", 7.0),
    ]
    for who, when, total in rows:
        shop.order(who, when, total)
    shop.order("a", "2026-03-01T15:00", 99.0)  # after the cut: not yet
    shop.order("c", "2026-03-01T09:00", 60.0, status="refunded", refunded_at="2026-03-01T11:30")
    end = day("2026-03-01T12:00")
    from_store = same_summaries(engine, shop, rows, end)
    a, b = from_store.loc[shop.ids["a"]], from_store.loc[shop.ids["b"]]
    assert (a.frequency, a.orders, a.monetary_value, a.revenue) == (1, 3, 25.0, 35.0)
    # days are Shanghai's: b bought at 18:00 there, the cut is at 20:00, 20 h into b's day
    assert (b.frequency, b.orders, b.revenue) == (0, 1, 40.0)
    assert b.days_since_last == pytest.approx(20 / 24)
