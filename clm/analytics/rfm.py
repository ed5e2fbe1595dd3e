"""RFM: recency, frequency and monetary value per customer, quintile scores and named segments.

`rfm_summary` works on any transactions DataFrame (one row per purchase); `store_summary`
computes the same columns from the store in one SQL pass. The summary also carries what the
CLV models need (`frequency`, `recency`, `T` in the chosen unit, `monetary_value`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Engine,
    Float,
    bindparam,
    cast,
    func,
    select,
    text,
)

from clm.analytics.frames import read_frame
from clm.commerce.order_days import counted_at, day_of, start_of_day
from clm.commerce.tables import order_days, orders
from clm.core.errors import InvalidInput
from clm.core.timeutil import as_utc, store_zone, utcnow
from clm.features import counted_order
from clm.store.schema import UTCDateTime

UNITS = {"day": 1.0, "week": 7.0}
_PACK = 2**43
_SUMMARY_COLUMNS = ("customer_id", "days", "first_day", "last_day", "total", "first_cents", "orders")

# The named segments by R and F score (a customer's M score refines the offers, not the segment).
# First match wins; patterns are "<R><F>" with character classes, as commonly used in RFM practice.
SEGMENTS: tuple[tuple[str, str], ...] = (
    ("champions", r"5[4-5]"),
    ("loyal", r"[3-4][4-5]"),
    ("potential loyalists", r"[4-5][2-3]"),
    ("new", r"51"),
    ("promising", r"41"),
    ("need attention", r"33"),
    ("about to sleep", r"3[1-2]"),
    ("can't lose them", r"[1-2]5"),
    ("at risk", r"[1-2][3-4]"),
    ("lost", r"11"),
    ("hibernating", r"[1-2][1-2]"),
)


def rfm_summary(
    transactions: pd.DataFrame,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str | None = "amount",
    *,
    observation_end: Any = None,
    unit: str = "day",
) -> pd.DataFrame:
    """One row per customer: `frequency` (repeat purchase periods), `recency` and `T` (in
    `unit`s since the first purchase), `monetary_value` (mean of the repeat periods' totals),
    plus `orders`, `revenue` and `days_since_last` for RFM scoring.

    Purchases on the same day count as one (as in Fader, Hardie & Lee 2005); `unit` only sets
    the scale of recency and T (days or weeks)."""
    if unit not in UNITS:
        raise InvalidInput(f"unit must be one of {', '.join(UNITS)}", "unit")
    for col in (customer_col, date_col, *([amount_col] if amount_col else [])):
        if col not in transactions.columns:
            raise InvalidInput(
                f"no column {col!r} (columns: {', '.join(map(str, transactions.columns))})", col
            )
    df = pd.DataFrame(
        {
            "customer": transactions[customer_col].astype(str),
            "when": _moments(transactions[date_col]),
            "amount": pd.to_numeric(transactions[amount_col], errors="coerce") if amount_col else 0.0,
        }
    )
    if df["when"].isna().any():
        bad = int(df["when"].isna().sum())
        raise InvalidInput(f"{bad} transaction(s) have a date that cannot be read", date_col)
    end = _utc(observation_end) if observation_end is not None else df["when"].max()
    if (df["when"] > end).any():
        raise InvalidInput("transactions after the observation end; cut them off first", date_col)
    step = pd.Timedelta(days=UNITS[unit])
    # a purchase day is a calendar day of the store's time zone, as in the store's order summary
    df["period"] = (
        df["when"].dt.tz_convert(store_zone().key).dt.floor("D", ambiguous=True, nonexistent="shift_backward")
    )
    periods = df.groupby(["customer", "period"], sort=False).agg(
        when=("when", "min"), amount=("amount", "sum")
    )
    periods = periods.reset_index().sort_values(["customer", "when"])
    grouped = periods.groupby("customer", sort=True)
    first = grouped["period"].min()  # whole days, as the store's summary
    last = grouped["period"].max()
    count = grouped.size()
    total = grouped["amount"].sum()
    first_amount = grouped["amount"].first()
    repeat = (count - 1).astype(int)
    monetary = ((total - first_amount) / repeat.replace(0, np.nan)).fillna(0.0)
    raw = df.groupby("customer", sort=True).agg(orders=("when", "size"), revenue=("amount", "sum"))
    out = pd.DataFrame(
        {
            "frequency": repeat,
            "recency": (last - first) / step,
            "T": (end - first) / step,
            "monetary_value": monetary,
            "orders": raw["orders"],
            "revenue": raw["revenue"],
            "days_since_last": (end - last) / pd.Timedelta(days=1),
        }
    )
    out.index.name = "customer_id"
    return out


def _moments(column: pd.Series) -> pd.Series:
    """Transaction times as UTC; one without a zone is a wall-clock time in the store's time zone
    (`CLM_DEFAULT_TIMEZONE`), as in imported files and the API."""
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(parsed.dtype):
        local = parsed.dt.tz_localize(store_zone().key, ambiguous="NaT", nonexistent="shift_forward")
        return local.dt.tz_convert("UTC")
    # zones that differ from row to row: each keeps its own, rows without one are taken as UTC
    return pd.to_datetime(column, utc=True, errors="coerce", format="mixed")


def _utc(value: Any) -> pd.Timestamp:
    """The observation end as UTC; without a zone, in the store's time zone."""
    ts = pd.Timestamp(value)
    return ts.tz_localize(store_zone().key).tz_convert("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def store_summary(
    engine: Engine, *, observation_end: datetime | None = None, unit: str = "day"
) -> pd.DataFrame:
    """The same summary from the store's orders counted at `observation_end` (not cancelled, not
    refunded by then), aggregated in the database in one pass: only one row per customer comes
    back, so a million customers with ten million orders stay a million-row read.
    The index is the integer customer id."""
    if unit not in UNITS:
        raise InvalidInput(f"unit must be one of {', '.join(UNITS)}", "unit")
    end = as_utc(observation_end) if observation_end else utcnow()
    at = bindparam("end", end, type_=UTCDateTime)
    # Purchases are counted per day (day numbers since 1970, UTC); recency and T in whole days
    # from the first purchase day, as in FHL 2005 (and identical customers then compress well).
    # Days before the end's come from the order summary, which has at most one row per customer
    # and day at any moment, so one grouping by customer does (in parallel on PostgreSQL); the
    # end's own day, cut at the end's moment, from the orders themselves (a few rows, found by
    # the order-time index), added on afterwards.
    # Money as float: exact decimals are not needed for a model's input, and both the
    # aggregation and the transfer of a million rows are several times faster.
    # No join with customers: a merge moves every order and summary row to the survivor.
    od = order_days
    end_day = day_of(end)
    amount = cast(od.c.revenue, Float)
    # the first day's amount without sorting: the smallest (day, amount in cents) pair packed
    # into one integer (day * 2^43 + cents; days below 2^20 and a day's cents below 2^43)
    first_pair = func.min(cast(od.c.day, BigInteger) * _PACK + cast(func.round(amount * 100), BigInteger))
    earlier = (
        select(
            od.c.customer_id,
            func.count().label("days"),
            func.min(od.c.day).label("first_day"),
            func.max(od.c.day).label("last_day"),
            func.sum(amount).label("total"),
            (first_pair % _PACK).label("first_cents"),
            func.sum(od.c.orders).label("orders"),
        )
        .where(od.c.day < end_day, counted_at(at))
        .group_by(od.c.customer_id)
    )
    last_day = (
        select(
            orders.c.customer_id,
            func.sum(cast(orders.c.total, Float)).label("total"),
            func.count().label("orders"),
        )
        .where(counted_order(at), orders.c.ordered_at >= start_of_day(end_day), orders.c.ordered_at <= at)
        .group_by(orders.c.customer_id)
    )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # the grouping by customer fits in memory instead of spilling to disk
            conn.execute(text("SET LOCAL work_mem = '256MB'"))
        days = read_frame(conn, earlier, numeric=_SUMMARY_COLUMNS).set_index("customer_id")
        today = read_frame(conn, last_day, numeric=("customer_id", "total", "orders")).set_index(
            "customer_id"
        )
    if len(today):
        days = days.reindex(days.index.union(today.index))
        first_buy = days["days"].isna()
        days.loc[first_buy, ["days", "total", "orders"]] = 0.0
        days.loc[first_buy, "first_day"] = end_day
        days.loc[first_buy, "first_cents"] = (today["total"] * 100).round().reindex(days.index)[first_buy]
        days.loc[today.index, "days"] += 1
        days.loc[today.index, "last_day"] = end_day
        days.loc[today.index, "total"] += today["total"]
        days.loc[today.index, "orders"] += today["orders"]
    step = UNITS[unit]
    end_day_at = (end - start_of_day(0)) / timedelta(days=1)  # the end as a fractional day number
    frequency = (days["days"] - 1).astype(np.int64)
    total = days["total"].astype(float)
    monetary = (total - days["first_cents"] / 100) / frequency.replace(0, np.nan)
    out = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (days["last_day"] - days["first_day"]) / step,
            "T": (end_day_at - days["first_day"]) / step,
            "monetary_value": monetary.fillna(0.0),
            "orders": days["orders"].astype(np.int64),
            "revenue": total,
            "days_since_last": end_day_at - days["last_day"],
        }
    )
    out.index = pd.Index(days.index.astype(np.int64), name="customer_id")
    return out.sort_index()


def _quintile(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Scores 1..5 by quintile of rank (ties share the rank's quintile)."""
    ranks = values.rank(method="first", ascending=higher_is_better)
    return np.ceil(ranks / len(values) * 5).clip(1, 5).astype(int)


def rfm_scores(summary: pd.DataFrame) -> pd.DataFrame:
    """R, F and M quintile scores (5 best) and the named segment of each customer."""
    if summary.empty:
        return summary.assign(r=[], f=[], m=[], rfm=[], segment=[])
    out = summary.copy()
    out["r"] = _quintile(out["days_since_last"], higher_is_better=False)
    out["f"] = _quintile(out["orders"])
    out["m"] = _quintile(out["revenue"])
    out["rfm"] = out["r"].astype(str) + out["f"].astype(str) + out["m"].astype(str)
    key = out["r"].astype(str) + out["f"].astype(str)
    out["segment"] = key.map(segment_of)
    return out


def segment_of(rf: str) -> str:
    """The named segment of an "<R><F>" score pair, e.g. "55" → champions."""
    for name, pattern in SEGMENTS:
        if re.fullmatch(pattern, rf):
            return name
    return "other"
