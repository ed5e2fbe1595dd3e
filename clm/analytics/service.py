"""The analytics domain's public door: RFM summaries and CLV model fits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from clm.analytics.clv import BetaGeoNBD, GammaGamma, ParetoNBD
from clm.analytics.rfm import rfm_scores, rfm_summary, store_summary
from clm.core.errors import InvalidInput, UnusableInput

MODELS: dict[str, type[BetaGeoNBD] | type[ParetoNBD]] = {"bgnbd": BetaGeoNBD, "pareto": ParetoNBD}


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


__all__ = [
    "BetaGeoNBD",
    "GammaGamma",
    "fit_clv",
    "read_transactions",
    "rfm_scores",
    "rfm_summary",
    "store_summary",
]
