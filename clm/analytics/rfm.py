"""RFM: recency, frequency and monetary value per customer, quintile scores and named segments.

`rfm_summary` works on any transactions DataFrame (one row per purchase); `store_summary`
computes the same columns from the store in one SQL pass. The summary also carries what the
CLV models need (`frequency`, `recency`, `T` in the chosen unit, `monetary_value`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from clm.commerce.tables import orders
from clm.core.errors import InvalidInput
from clm.core.timeutil import as_utc, utcnow
from clm.customers.tables import customers

UNITS = {"day": 1.0, "week": 7.0}

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
            "when": pd.to_datetime(transactions[date_col], utc=True, errors="coerce", format="mixed"),
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
    df["period"] = df["when"].dt.floor("D")
    periods = df.groupby(["customer", "period"], sort=False).agg(
        when=("when", "min"), amount=("amount", "sum")
    )
    periods = periods.reset_index().sort_values(["customer", "when"])
    grouped = periods.groupby("customer", sort=True)
    first = grouped["when"].min()
    last = grouped["when"].max()
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


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def store_summary(
    engine: Engine, *, observation_end: datetime | None = None, unit: str = "day"
) -> pd.DataFrame:
    """The same summary from the store's orders counted at `observation_end` (not cancelled, not
    refunded by then). The orders are read in one query; the summary is vectorised pandas."""
    if unit not in UNITS:
        raise InvalidInput(f"unit must be one of {', '.join(UNITS)}", "unit")
    end = as_utc(observation_end) if observation_end else utcnow()
    counted = (orders.c.status == "completed") | (
        (orders.c.status == "refunded") & (orders.c.refunded_at > end)
    )
    query = (
        select(orders.c.customer_id, orders.c.ordered_at, orders.c.total)
        .join(customers, customers.c.id == orders.c.customer_id)
        .where(counted, orders.c.ordered_at <= end, customers.c.merged_into.is_(None))
    )
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=["customer_id", "date", "amount"])
    if frame.empty:
        frame = pd.DataFrame({"customer_id": [], "date": pd.to_datetime([], utc=True), "amount": []})
    return rfm_summary(frame, observation_end=end, unit=unit)


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
