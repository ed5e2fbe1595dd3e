"""Churn risk: a calibrated gradient-boosting classifier with per-customer reasons in words.

The model knows nothing about where its rows come from (the store's behavioural features or a
table a user imported): it takes a DataFrame of features, one row per customer, and a 0/1
label "churned". Numeric columns stay numeric (missing values allowed); text columns are
categories. Probabilities are calibrated (isotonic, or Platt's sigmoid for small data) on
cross-validated predictions, so "0.7" means about 70 of 100 such customers leave.

A reason is a feature that pushes this customer's risk up: set it to what customers who stay
typically have (median, or most common category), all else equal, and see how far the
predicted log-odds fall. Explaining one feature at a time this way costs one prediction pass
per feature over all customers, which stays vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import brier_score_loss, roc_auc_score

from clm.core.errors import InvalidInput

# Probability bands shown to users; documented in docs/value.md.
BANDS: tuple[tuple[str, float], ...] = (("high", 0.6), ("medium", 0.3), ("low", 0.0))
MIN_ROWS = 50
MAX_CATEGORIES = 50
_ISOTONIC_FROM = 5_000  # below this many rows isotonic calibration overfits; use a sigmoid


@dataclass(frozen=True)
class Reason:
    """One feature that raises a customer's churn risk."""

    feature: str
    value: Any
    typical: Any  # what customers who stay typically have
    weight: float  # log-odds the feature adds compared with the typical value
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "value": self.value,
            "typical": self.typical,
            "weight": round(self.weight, 4),
            "text": self.text,
        }


def band_of(probability: float) -> str:
    """The risk band of a calibrated churn probability (see BANDS)."""
    for name, floor in BANDS:
        if probability >= floor:
            return name
    return BANDS[-1][0]


def bands(probabilities: NDArray[np.float64]) -> NDArray[np.object_]:
    """`band_of` for many customers at once."""
    out = np.full(probabilities.shape, BANDS[-1][0], dtype=object)
    for name, floor in reversed(BANDS[:-1]):
        out[probabilities >= floor] = name
    return out


def labels_from(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A label column as 0/1 (accepting 1/0, true/false, yes/no, churned/…) and a mask of the
    rows whose label could not be read."""
    truthy = {"1", "1.0", "true", "yes", "y", "t", "churn", "churned", "lost", "left"}
    falsy = {"0", "0.0", "false", "no", "n", "f", "stay", "stayed", "retained", "active"}
    text = values.astype(str).str.strip().str.lower()
    label = pd.Series(np.where(text.isin(truthy), 1, 0), index=values.index)
    bad = ~(text.isin(truthy) | text.isin(falsy))
    return label, bad


def prepare_columns(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Turn raw columns into model input: numbers where every non-blank value is a number,
    categories for text with at most MAX_CATEGORIES values; other columns are dropped with a
    warning (free text and identifiers carry no pattern to learn)."""
    out: dict[str, pd.Series] = {}
    warnings: list[str] = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column):
            out[name] = column.astype(float)
            continue
        if pd.api.types.is_numeric_dtype(column):
            out[name] = column.astype(float)
            continue
        text = column.astype("string").str.strip().replace("", pd.NA)
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.notna().sum() == text.notna().sum() and text.notna().any():
            out[name] = numbers.astype(float)
            continue
        distinct = text.nunique(dropna=True)
        if distinct > MAX_CATEGORIES:
            warnings.append(
                f"column {name!r} left out: {distinct:,} distinct text values (an id or free text?)"
            )
            continue
        out[name] = text.astype("category")
    return pd.DataFrame(out, index=frame.index), warnings


class ChurnModel:
    """Calibrated churn probability with reasons.

    `fit(features, churned) -> self`; fitted attributes end in `_`; `predict_proba(features)`
    gives P(churn); `reasons(features)` the top features behind each customer's risk."""

    def __init__(self, *, random_state: int = 0, labels: dict[str, str] | None = None) -> None:
        self.random_state = random_state
        self.labels = labels or {}  # feature -> words used in reasons

    def fit(self, features: pd.DataFrame, churned: ArrayLike) -> ChurnModel:
        y = np.asarray(churned, dtype=int)
        if len(features) != len(y):
            raise InvalidInput("features and labels differ in length")
        if len(y) < MIN_ROWS:
            raise InvalidInput(f"need at least {MIN_ROWS} customers to train, got {len(y)}")
        positives = int(y.sum())
        if positives < 10 or len(y) - positives < 10:
            raise InvalidInput(
                "need at least 10 customers who churned and 10 who stayed, "
                f"got {positives} and {len(y) - positives}"
            )
        x = self._frame(features, fitting=True)
        base = HistGradientBoostingClassifier(
            max_iter=200,
            learning_rate=0.06,
            max_leaf_nodes=31,
            min_samples_leaf=40,
            l2_regularization=1.0,
            categorical_features="from_dtype",
            random_state=self.random_state,
        )
        method = "isotonic" if len(y) >= _ISOTONIC_FROM else "sigmoid"
        self.classifier_ = CalibratedClassifierCV(base, method=method, cv=3, ensemble=False).fit(x, y)
        self.calibration_ = method
        self.base_rate_ = float(y.mean())
        self.n_train_ = len(y)
        stayers = x[y == 0]
        self.typical_ = {
            name: (
                _safest_category(x[name], y)
                if name in self.categorical_
                else float(stayers[name].median())
                if stayers[name].notna().any()
                else np.nan
            )
            for name in self.features_
        }
        return self

    def _frame(self, features: pd.DataFrame, *, fitting: bool = False) -> pd.DataFrame:
        if fitting:
            # a column without a single value (no NPS answers anywhere, say) carries nothing
            self.features_ = [str(c) for c in features.columns if features[c].notna().any()]
            self.empty_features_ = [str(c) for c in features.columns if not features[c].notna().any()]
            self.categorical_ = [
                c for c in self.features_ if isinstance(features[c].dtype, pd.CategoricalDtype)
            ]
            self.categories_ = {c: list(features[c].cat.categories) for c in self.categorical_}
        missing = [c for c in self.features_ if c not in features.columns]
        if missing:
            raise InvalidInput(f"missing feature columns: {', '.join(missing)}")
        x = features[self.features_].copy()
        x.columns = pd.Index(self.features_)
        for c in self.features_:
            if c in self.categorical_:
                x[c] = pd.Categorical(x[c].astype("string"), categories=self.categories_[c])
            else:
                # single precision: a million customers' examples take half the memory, and the
                # trees split on bins of the values, not on their last digits
                x[c] = pd.to_numeric(x[c], errors="coerce").astype(np.float32)
        return x

    def _require_fit(self) -> None:
        if not hasattr(self, "classifier_"):
            raise InvalidInput("the churn model is not trained yet")

    def _base(self) -> HistGradientBoostingClassifier:
        return self.classifier_.calibrated_classifiers_[0].estimator

    def predict_proba(self, features: pd.DataFrame) -> NDArray[np.float64]:
        """Calibrated probability that each customer churns within the horizon."""
        self._require_fit()
        p = np.asarray(self.classifier_.predict_proba(self._frame(features))[:, 1], dtype=float)
        # isotonic steps can reach exactly 0 or 1; nobody is certain to stay or to leave
        return np.clip(p, 0.005, 0.995)

    def reasons(self, features: pd.DataFrame, top: int = 3) -> list[list[Reason]]:
        """Up to `top` features per customer that raise the risk, strongest first."""
        self._require_fit()
        x = self._frame(features)
        base = self._base()
        logit = base.decision_function(x)
        weights = np.zeros((len(x), len(self.features_)))
        for j, name in enumerate(self.features_):
            typical = self.typical_[name]
            if not isinstance(typical, str) and pd.isna(typical):
                continue
            changed = x.copy()
            if name in self.categorical_:
                changed[name] = pd.Categorical([typical] * len(x), categories=self.categories_[name])
            else:
                changed[name] = float(typical)
            weights[:, j] = logit - base.decision_function(changed)
        order = np.argsort(-weights, axis=1)[:, :top]
        strongest = np.take_along_axis(weights, order, axis=1)
        values = x.to_numpy(dtype=object)  # one conversion, not a pandas lookup per cell
        typical = [_plain(self.typical_[name]) for name in self.features_]
        out: list[list[Reason]] = []
        for i in range(len(x)):
            row: list[Reason] = []
            for j, weight in zip(order[i], strongest[i], strict=True):
                if weight <= 0.01:
                    break
                name = self.features_[j]
                value = _plain(values[i, j])
                row.append(
                    Reason(name, value, typical[j], float(weight), self._words(name, value, typical[j]))
                )
            out.append(row)
        return out

    def _words(self, name: str, value: Any, typical: Any) -> str:
        label = self.labels.get(name, name.replace("_", " "))
        shown = "none" if value is None else _fmt(value)
        return f"{label}: {shown} (customers who stay: {_fmt(typical)})"

    def summary(self) -> dict[str, Any]:
        self._require_fit()
        return {
            "features": self.features_,
            "left_out_without_values": self.empty_features_,
            "categorical": self.categorical_,
            "calibration": self.calibration_,
            "training_rows": self.n_train_,
            "base_rate": self.base_rate_,
            "typical_for_stayers": {k: _plain(v) for k, v in self.typical_.items()},
            "bands": {name: floor for name, floor in BANDS},
        }


def _safest_category(values: pd.Series, churned: NDArray[np.int_]) -> Any:
    """The category of a column typical of customers who stay: the lowest churn rate among
    categories that hold at least 5% of the rows (the most common one among stayers would
    often be the risky one too)."""
    frame = pd.DataFrame({"v": values.astype("string"), "y": churned}).dropna()
    if frame.empty:
        return np.nan
    stats = frame.groupby("v")["y"].agg(["mean", "size"])
    common = stats[stats["size"] >= 0.05 * len(frame)]
    return (common if not common.empty else stats)["mean"].idxmin()


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def evaluate(churned: ArrayLike, score: ArrayLike, *, bins: int = 10) -> dict[str, Any]:
    """How well a score ranks and (for probabilities) how well it is calibrated.

    AUC; precision in the top decile (share of the 10% highest scores who churned) and its
    lift over the base rate; for probabilities also the Brier score and a calibration table
    (mean prediction against the observed rate in equal-width bins) with its expected
    calibration error."""
    y = np.asarray(churned, dtype=int)
    s = np.asarray(score, dtype=float)
    if len(y) == 0 or y.min() == y.max():
        raise InvalidInput("the held-out period needs customers who churned and customers who stayed")
    top = max(1, int(np.ceil(len(y) / 10)))
    ranked = np.argsort(-s, kind="stable")[:top]
    precision = float(y[ranked].mean())
    out: dict[str, Any] = {
        "customers": len(y),
        "churn_rate": float(y.mean()),
        "auc": float(roc_auc_score(y, s)),
        "precision_top_decile": precision,
        "lift_top_decile": precision / float(y.mean()),
    }
    if s.min() >= 0 and s.max() <= 1:
        edges = np.linspace(0, 1, bins + 1)
        which = np.clip(np.digitize(s, edges[1:-1]), 0, bins - 1)
        table = []
        ece = 0.0
        for b in range(bins):
            mask = which == b
            if not mask.any():
                continue
            predicted, observed = float(s[mask].mean()), float(y[mask].mean())
            ece += mask.mean() * abs(predicted - observed)
            table.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "customers": int(mask.sum()),
                    "predicted": predicted,
                    "observed": observed,
                }
            )
        out["brier"] = float(brier_score_loss(y, s))
        out["calibration"] = table
        out["calibration_error"] = float(ece)
    return out


def card_markdown(card: dict[str, Any]) -> str:
    """A model card for people: data window, label, features and held-out metrics."""
    lines = [f"# Churn model card ({card.get('source', '?')})", ""]
    lines.append(f"- trained at: {card.get('trained_at', '?')}")
    lines.append(f"- label: {card.get('label', '?')}")
    for key in ("horizon_days", "active_within_days", "data_end", "table", "rows", "rejected_rows"):
        if card.get(key) is not None:
            lines.append(f"- {key.replace('_', ' ')}: {card[key]}")
    lines += ["", "## Data windows", ""]
    for name, window in card.get("windows", {}).items():
        lines.append(f"- {name}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in window.items()))
    lines += ["", "## Features", ""]
    typical = card.get("typical_for_stayers", {})
    for name in card.get("features", []):
        kind = "category" if name in card.get("categorical", []) else "number"
        lines.append(f"- {name} ({kind}; typical for customers who stay: {_fmt(typical.get(name))})")
    lines += ["", f"Calibration: {card.get('calibration')}; bands: {card.get('bands')}", ""]
    lines += [
        "## Held-out metrics",
        "",
        "| score | AUC | precision top 10% | lift | Brier | calibration error |",
    ]
    lines.append("| --- | --- | --- | --- | --- | --- |")

    def row(name: str, m: dict[str, Any]) -> str:
        cells = [
            m.get(k) for k in ("auc", "precision_top_decile", "lift_top_decile", "brier", "calibration_error")
        ]
        return f"| {name} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells) + " |"

    metrics = card.get("metrics", {})
    for name, m in metrics.items():
        if name == "buyers_only":
            continue
        if name == "best_single_column":
            lines.append(f"| best single column ({m['column']}) | {m['auc']:.3f} | - | - | - | - |")
        else:
            lines.append(row(name, m))
    for name, m in metrics.get("buyers_only", {}).items():
        lines.append(row(f"{name}, buyers only", m))
    calibration = metrics.get("model", {}).get("calibration", [])
    if calibration:
        lines += [
            "",
            "## Calibration on the held-out period",
            "",
            "| predicted | customers | mean predicted | observed |",
        ]
        lines.append("| --- | --- | --- | --- |")
        for b in calibration:
            lines.append(f"| {b['bin']} | {b['customers']} | {b['predicted']:.3f} | {b['observed']:.3f} |")
    for warning in card.get("warnings", []):
        lines.append(f"\nwarning: {warning}")
    return "\n".join(lines) + "\n"
