"""The analytics domain's public door: RFM summaries, CLV fits and scores, churn early warning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clm.analytics.churn import BANDS, card_markdown
from clm.analytics.churn_store import (
    LOST,
    ChurnRisk,
    TrainedModel,
    already_lost,
    at_risk,
    customer_risk,
    load_model,
    risk_summary,
    score_store,
    train_store_model,
)
from clm.analytics.churn_table import read_table, score_table, train_table_model
from clm.analytics.clv import BetaGeoNBD, GammaGamma, ModifiedBetaGeoNBD, ParetoNBD, p_alive_defined
from clm.analytics.rfm import rfm_scores, rfm_summary, store_summary
from clm.core.errors import InvalidInput, NotFound, UnusableInput

MODELS: dict[str, type[BetaGeoNBD] | type[ModifiedBetaGeoNBD] | type[ParetoNBD]] = {
    "bgnbd": BetaGeoNBD,
    "mbgnbd": ModifiedBetaGeoNBD,
    "pareto": ParetoNBD,
}


def read_transactions(path: Path) -> pd.DataFrame:
    """A transactions file: CSV, TSV, or whitespace-separated text such as the CDNOW files
    (without a header line, its columns are named by position: "0", "1", …)."""
    try:
        if path.suffix.lower() in (".tsv", ".tab"):
            return pd.read_csv(path, sep="\t")
        if path.suffix.lower() == ".txt":
            frame = pd.read_csv(path, sep=r"\s+", dtype=str, header=None)
            first = frame.iloc[0] if len(frame) else pd.Series(dtype=str)
            if len(frame) and not any(str(v).replace(".", "").isdigit() for v in first):
                frame = frame.iloc[1:].set_axis(list(first), axis=1)  # the first line is a header
            else:
                frame.columns = [str(i) for i in range(frame.shape[1])]  # columns by position
            return frame.reset_index(drop=True)
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UnusableInput(f"cannot read {path}: {exc}")


def fit_clv(
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str | None = "amount",
    calibration_end: Any = None,
    unit: str = "week",
    model: str = "bgnbd",
) -> dict[str, Any]:
    """Fit the transaction model (and Gamma-Gamma when amounts are given) on the calibration
    period; the answer is what `clm clv fit --json` prints."""
    if model not in MODELS:
        raise InvalidInput(f"supported models: {', '.join(MODELS)}", "model")
    warnings: list[str] = []
    data = transactions
    if calibration_end is not None:
        end = pd.Timestamp(calibration_end, tz="UTC")
        when = pd.to_datetime(data[date_col].astype(str), utc=True, errors="coerce", format="mixed")
        later = int((when > end).sum())
        if later:
            warnings.append(f"{later:,} transactions after the calibration end {end:%Y-%m-%d} were left out")
            data = data[~(when > end)]
    if amount_col and amount_col in data.columns:
        negative = int((pd.to_numeric(data[amount_col], errors="coerce") < 0).sum())
        if negative:
            warnings.append(f"{negative:,} transactions with negative amounts (returns?) count towards spend")
    summary = rfm_summary(
        data,
        customer_col,
        date_col,
        amount_col if amount_col in data.columns else None,
        observation_end=calibration_end,
        unit=unit,
    )
    fitted = MODELS[model]().fit(summary["frequency"], summary["recency"], summary["T"])
    out: dict[str, Any] = {**fitted.summary(), "unit": unit, "customers": len(summary)}
    out["warnings"] = warnings + out["warnings"]
    if amount_col and amount_col in data.columns:
        spend = GammaGamma().fit(summary["frequency"], summary["monetary_value"])
        out["spend"] = {**spend.params_, "loglik": spend.loglik_, "standard_errors": spend.standard_errors_}
        out["warnings"] += spend.warnings_
    return out


def score_customers(
    engine: Any,
    *,
    horizon_days: int = 365,
    annual_discount_rate: float = 0.10,
    margin: float | None = None,
    model: str = "bgnbd",
    observation_end: Any = None,
) -> dict[str, Any]:
    """Fit the models on the store's orders and write each customer's P(alive), expected
    purchases and spend over the horizon and discounted CLV into `clv_scores` (replacing the
    previous scores). `margin` defaults to the shop's own margin ratio (1 - cost / revenue).
    P(alive) is NULL where the model says nothing (BG/NBD: no repeat purchase yet)."""
    from sqlalchemy import delete

    from clm.analytics.clv import discounted_clv
    from clm.analytics.tables import clv_scores
    from clm.core.timeutil import utcnow
    from clm.store.bulk import insert_ignore_many
    from clm.store.schema import to_db_timestamp

    if model not in MODELS:
        raise InvalidInput(f"supported models: {', '.join(MODELS)}", "model")
    summary = store_summary(engine, observation_end=observation_end, unit="day")
    if summary.empty:
        raise InvalidInput("no orders in the store to score", "orders")
    fitted = MODELS[model]().fit(summary["frequency"], summary["recency"], summary["T"])
    spend_model = GammaGamma().fit(summary["frequency"], summary["monetary_value"])
    x, tx, t_obs = summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["T"].to_numpy()
    spend = spend_model.expected_average_spend(x, summary["monetary_value"].to_numpy())
    ratio = margin if margin is not None else shop_margin(engine)
    months = max(1, round(horizon_days / 30.4375))
    clv = discounted_clv(
        fitted,
        spend,
        x,
        tx,
        t_obs,
        horizon=float(horizon_days),
        steps=months,
        discount_rate=(1 + annual_discount_rate) ** (1 / 12) - 1,
        margin=ratio,
    )
    defined = p_alive_defined(fitted, x)
    alive = np.where(defined, fitted.probability_alive(x, tx, t_obs), np.nan)
    rfm = rfm_scores(summary)
    purchases = fitted.expected_purchases(float(horizon_days), x, tx, t_obs)
    now = utcnow()
    columns = (
        "customer_id",
        "scored_at",
        "model",
        "horizon_days",
        "p_alive",
        "expected_purchases",
        "expected_spend",
        "clv",
        "rfm_r",
        "rfm_f",
        "rfm_m",
        "rfm_segment",
    )
    with engine.begin() as conn:
        stamp = to_db_timestamp(now, conn.dialect.name)
        rows = list(
            zip(
                summary.index.astype(int).tolist(),
                [stamp] * len(summary),
                [model] * len(summary),
                [float(horizon_days)] * len(summary),
                [None if np.isnan(a) else a for a in alive.tolist()],
                purchases.tolist(),
                spend.tolist(),
                clv.tolist(),
                rfm["r"].tolist(),
                rfm["f"].tolist(),
                rfm["m"].tolist(),
                rfm["segment"].tolist(),
                strict=True,
            )
        )
        conn.execute(delete(clv_scores))
        for start in range(0, len(rows), 100_000):
            insert_ignore_many(conn, clv_scores, columns, rows[start : start + 100_000], ("customer_id",))
    return {
        "model": fitted.summary(),
        "spend": spend_model.summary(),
        "customers": len(rows),
        "margin": ratio,
        "horizon_days": horizon_days,
        "total_clv": float(np.sum(clv)),
        "p_alive_customers": int(defined.sum()),
        "p_alive_median": float(np.median(alive[defined])) if defined.any() else None,
    }


@dataclass(frozen=True)
class ValueScore:
    """A customer's latest predictive value score (`clm clv score`)."""

    customer_id: int
    scored_at: datetime
    model: str
    horizon_days: float
    # None where the model says nothing: under BG/NBD a customer without a repeat purchase
    p_alive: float | None
    expected_purchases: float
    expected_spend: float
    clv: float
    rfm_r: int | None = None
    rfm_f: int | None = None
    rfm_m: int | None = None
    rfm_segment: str | None = None


def customer_value(engine: Any, customer_id: int) -> ValueScore:
    """One customer's P(alive), expected purchases and spend over the horizon, and CLV."""
    from sqlalchemy import select

    from clm.analytics.tables import clv_scores
    from clm.customers.service import get_customer

    customer_id = get_customer(engine, customer_id).id
    with engine.connect() as conn:
        row = conn.execute(select(clv_scores).where(clv_scores.c.customer_id == customer_id)).first()
    if row is None:
        raise NotFound(f"customer {customer_id} has no value score (no counted order, or not scored yet)")
    return ValueScore(**row._mapping)


def shop_margin(engine: Any) -> float:
    """1 - cost / revenue over the kept orders' items (products without a cost count as 0)."""
    from sqlalchemy import func, select

    from clm.commerce.tables import order_items, orders, products

    query = (
        select(
            func.sum(order_items.c.quantity * order_items.c.unit_price),
            func.sum(order_items.c.quantity * func.coalesce(products.c.cost, 0.0)),
        )
        .select_from(
            order_items.join(orders, orders.c.id == order_items.c.order_pk).outerjoin(
                products, products.c.sku == order_items.c.sku
            )
        )
        .where(orders.c.status == "completed")
    )
    with engine.connect() as conn:
        revenue, cost = conn.execute(query).one()
    return 1.0 - float(cost or 0) / float(revenue) if revenue else 1.0


__all__ = [
    "BANDS",
    "LOST",
    "BetaGeoNBD",
    "ChurnRisk",
    "GammaGamma",
    "ModifiedBetaGeoNBD",
    "TrainedModel",
    "ValueScore",
    "already_lost",
    "at_risk",
    "card_markdown",
    "customer_risk",
    "customer_value",
    "fit_clv",
    "load_model",
    "read_table",
    "read_transactions",
    "rfm_scores",
    "rfm_summary",
    "risk_summary",
    "score_store",
    "score_table",
    "store_summary",
    "train_store_model",
    "train_table_model",
]
