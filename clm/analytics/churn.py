"""Churn risk: a calibrated gradient-boosting classifier with per-customer reasons in words.

The model knows nothing about where its rows come from (the store's behavioural features or a
table a user imported): it takes a DataFrame of features, one row per customer, and a 0/1
label "churned". Numeric columns stay numeric (missing values allowed); text columns are
categories.

One fit: a stratified fifth of the rows is held out; the trees stop growing when the loss on
that fifth has not improved for 10 iterations, and the same fifth calibrates the raw scores
(isotonic regression, or Platt's sigmoid when it holds fewer than 5,000 rows), so "0.7" means
about 70 of 100 such customers leave. OpenMP threads are capped at the cores this process may
use, and sleep rather than spin while they wait (`clm/__init__.py`), so a busy machine slows
training down in proportion instead of many times over (bench/README.md).

A reason is a feature whose value raises this customer's risk compared with what customers who
stay typically have (their median; for a category the most common one among them):
- the feature carries signal at all (shuffling it on the held-out rows worsens their log-loss
  by more than twice its standard error), so gender on Telco-style data is not a reason;
- set to the typical value, all else equal, the customer's predicted log-odds fall by at least
  `MIN_EFFECT`;
- across all customers (partial dependence over a reference sample) the customer's value
  carries more risk than the typical one by as much, and a number lies on the side of the
  typical value where the risk rises across the feature's range (a feature whose effect rises
  and falls again is not given as a reason), so an interaction in a few trees never turns
  "high revenue" or "bought recently" into a reason to leave.
Each check is one prediction pass per feature over all customers, vectorised.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from clm.core.errors import InvalidInput

# Calibrated probability bands shown to users (documented in docs/value.md): "high" means at
# least half of such customers leave within the horizon, "medium" at least one in five.
BANDS: tuple[tuple[str, float], ...] = (("high", 0.5), ("medium", 0.2), ("low", 0.0))
MIN_ROWS = 50
MAX_CATEGORIES = 50
VALIDATION_FRACTION = 0.2  # held out for early stopping and calibration
_ISOTONIC_FROM = 5_000  # held-out rows; fewer, and isotonic calibration overfits: use a sigmoid
MIN_EFFECT = 0.05  # log-odds a feature must add over the typical value to be named a reason
_REFERENCE_ROWS = 400  # customers the partial dependence averages over
_GRID = 24  # values of a numeric feature the partial dependence is computed at
_SIGNAL_ROWS = 20_000  # held-out customers the permutation test of signal uses at most
_MONOTONE = 0.5  # share of the partial dependence's variation one direction must lead by


@contextmanager
def _quiet_threads() -> Iterator[None]:
    """OpenMP threads for tree fitting and prediction: at most the cores this process may use
    (the runtime's default may count hyper-threads or the whole host)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with threadpool_limits(limits=max(1, cores), user_api="openmp"):
        yield


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
        learn, held = train_test_split(
            np.arange(len(y)), test_size=VALIDATION_FRACTION, stratify=y, random_state=self.random_state
        )
        self.classifier_ = HistGradientBoostingClassifier(
            max_iter=500,
            learning_rate=0.1,
            max_leaf_nodes=31,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=True,
            n_iter_no_change=10,
            categorical_features="from_dtype",
            random_state=self.random_state,
        )
        with _quiet_threads():
            self.classifier_.fit(x.iloc[learn], y[learn], X_val=x.iloc[held], y_val=y[held])
            raw = self.classifier_.decision_function(x.iloc[held])
        if len(held) >= _ISOTONIC_FROM:
            self.calibration_ = "isotonic"
            self.calibrator_: Any = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                raw, y[held]
            )
        else:
            self.calibration_ = "sigmoid"
            self.calibrator_ = LogisticRegression(C=1e4).fit(raw.reshape(-1, 1), y[held])
        self.iterations_ = int(self.classifier_.n_iter_)
        self.base_rate_ = float(y.mean())
        self.n_train_ = len(y)
        stayers = x[y == 0]
        self.typical_ = {name: _typical(stayers[name]) for name in self.features_}
        rng = np.random.default_rng(self.random_state)
        reference = x.iloc[rng.choice(len(x), size=min(_REFERENCE_ROWS, len(x)), replace=False)]
        with _quiet_threads():
            # a sample of the held-out rows is plenty to tell signal from noise
            sample = rng.choice(len(held), size=min(_SIGNAL_ROWS, len(held)), replace=False)
            self.signal_ = self._signal(x.iloc[held[sample]], y[held[sample]], raw[sample], rng)
            self.dependence_ = {name: self._dependence(reference, x[name]) for name in self.features_}
        return self

    def _signal(
        self, x: pd.DataFrame, y: NDArray[np.int_], logit: NDArray[np.float64], rng: np.random.Generator
    ) -> dict[str, bool]:
        """Whether each feature carries signal: shuffling it over the held-out rows must raise
        their log-loss by more than twice its standard error (permutation importance). A
        feature the trees split on by chance (gender, a region) fails and is never a reason."""

        def loss(z: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.logaddexp(0.0, z) - y * z  # per-row log-loss of log-odds z

        before = loss(logit)
        out = {}
        for name in self.features_:
            shuffled = x.copy()
            shuffled[name] = x[name].to_numpy()[rng.permutation(len(x))]
            if name in self.categorical_:
                shuffled[name] = pd.Categorical(shuffled[name], categories=self.categories_[name])
            rise = loss(self.classifier_.decision_function(shuffled)) - before
            out[name] = bool(rise.mean() > 2 * rise.std(ddof=1) / np.sqrt(len(rise)))
        return out

    def _dependence(
        self, reference: pd.DataFrame, column: pd.Series
    ) -> tuple[list[Any], NDArray[np.float64]]:
        """Partial dependence of the log-odds on one feature: its mean over the reference
        customers with the feature set to each point of a grid (every category, or quantiles of
        a number, plus "missing" when the feature can be missing)."""
        name = str(column.name)
        points: list[Any]
        if name in self.categorical_:
            points = list(self.categories_[name])
        else:
            values = column.dropna().to_numpy(dtype=float)
            points = (
                sorted(set(np.quantile(values, np.linspace(0, 1, _GRID)).tolist())) if values.size else []
            )
        if column.isna().any():
            points.append(None)
        if not points:
            return [], np.zeros(0)
        n = len(reference)
        grid = pd.concat([reference] * len(points), ignore_index=True)
        if name in self.categorical_:
            grid[name] = pd.Categorical(
                np.repeat(np.array(points, dtype=object), n), categories=self.categories_[name]
            )
        else:
            grid[name] = np.repeat(
                np.array([np.nan if p is None else p for p in points], dtype=float), n
            ).astype(np.float32)
        logit = self.classifier_.decision_function(grid).reshape(len(points), n).mean(axis=1)
        return points, logit

    def _direction(self, name: str) -> float:
        """+1 when the risk rises with the feature, -1 when it falls, 0 when neither holds.

        Over the partial dependence's grid (quantiles, so each step holds as many customers;
        the smallest and largest points left out, where few customers are), the rises and the
        falls are summed; the feature has a direction when one exceeds the other by at least
        `_MONOTONE` of their total. A hump-shaped effect (risk highest 25 days after a purchase,
        lower before and after) has no direction a person can read from "value (customers who
        stay: typically …)", so it is not given as a reason."""
        points, logit = self.dependence_[name]
        curve = logit[[k for k, p in enumerate(points) if p is not None]]
        if len(curve) > 3:
            curve = curve[1:-1]
        steps = np.diff(curve)
        rises, falls = float(steps[steps > 0].sum()), float(-steps[steps < 0].sum())
        if rises + falls == 0 or abs(rises - falls) < _MONOTONE * (rises + falls):
            return 0.0
        return 1.0 if rises > falls else -1.0

    def _dependence_at(self, name: str, values: pd.Series) -> NDArray[np.float64]:
        """The partial dependence at each of `values` (numbers interpolated on the grid)."""
        points, logit = self.dependence_[name]
        out = np.full(len(values), np.nan)
        if not points:
            return out
        missing = values.isna().to_numpy()
        if points[-1] is None:
            out[missing] = logit[-1]
            points, logit = points[:-1], logit[:-1]
        if not points:
            return out
        if name in self.categorical_:
            where = {p: k for k, p in enumerate(points)}
            codes = values.astype("string").map(where)
            known = codes.notna().to_numpy() & ~missing
            out[known] = logit[codes[known].astype(int).to_numpy()]
        else:
            out[~missing] = np.interp(
                values.to_numpy(dtype=float)[~missing], np.asarray(points, float), logit
            )
        return out

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
        if not hasattr(self, "calibrator_"):
            raise InvalidInput(
                "the churn model is not trained yet, or was trained by an older CLM: run `clm churn train`"
            )

    def _calibrated(self, logit: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.calibration_ == "isotonic":
            p = self.calibrator_.predict(logit)
        else:
            p = self.calibrator_.predict_proba(logit.reshape(-1, 1))[:, 1]
        # isotonic steps can reach exactly 0 or 1; nobody is certain to stay or to leave
        return np.clip(np.asarray(p, dtype=float), 0.005, 0.995)

    def predict_proba(self, features: pd.DataFrame) -> NDArray[np.float64]:
        """Calibrated probability that each customer churns within the horizon."""
        self._require_fit()
        with _quiet_threads():
            logit = self.classifier_.decision_function(self._frame(features))
        return self._calibrated(np.asarray(logit, dtype=float))

    def reasons(self, features: pd.DataFrame, top: int = 3) -> list[list[Reason]]:
        """Up to `top` features per customer that raise the risk, strongest first (see the
        module's docstring for when a feature counts as a reason)."""
        self._require_fit()
        x = self._frame(features)
        weights = np.zeros((len(x), len(self.features_)))
        with _quiet_threads():
            logit = self.classifier_.decision_function(x)
            for j, name in enumerate(self.features_):
                typical = self.typical_[name]
                if typical is None or not self.signal_[name]:
                    continue
                column = x[name]
                changed = x.copy()
                if name in self.categorical_:
                    changed[name] = pd.Categorical([typical] * len(x), categories=self.categories_[name])
                    differs = (column.astype("string") != typical).fillna(True).to_numpy()
                else:
                    changed[name] = np.float32(typical)
                    # on the side of the typical value where the risk rises overall: fewer
                    # days since the last purchase than stayers never reads as a reason to leave
                    side = np.sign(column.to_numpy(dtype=float) - np.float32(typical))
                    differs = np.isnan(side) | (side == self._direction(name))
                own = logit - self.classifier_.decision_function(changed)
                typical_dependence = self._dependence_at(name, pd.Series([typical]))[0]
                overall = self._dependence_at(name, column) - typical_dependence
                raises = differs & (own >= MIN_EFFECT) & (np.nan_to_num(overall, nan=0.0) >= MIN_EFFECT)
                weights[:, j] = np.where(raises, own, 0.0)
        order = np.argsort(-weights, axis=1, kind="stable")[:, :top]
        strongest = np.take_along_axis(weights, order, axis=1)
        values = x.to_numpy(dtype=object)  # one conversion, not a pandas lookup per cell
        typical = [_plain(self.typical_[name]) for name in self.features_]
        out: list[list[Reason]] = []
        for i in range(len(x)):
            row: list[Reason] = []
            for j, weight in zip(order[i], strongest[i], strict=True):
                if weight <= 0:
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
        usual = "mostly" if name in self.categorical_ else "typically"
        return f"{label}: {shown} (customers who stay: {usual} {_fmt(typical)})"

    def summary(self) -> dict[str, Any]:
        self._require_fit()
        return {
            "features": self.features_,
            "left_out_without_values": self.empty_features_,
            "categorical": self.categorical_,
            "without_signal": [name for name in self.features_ if not self.signal_[name]],
            "calibration": self.calibration_,
            "boosting_iterations": self.iterations_,
            "training_rows": self.n_train_,
            "base_rate": self.base_rate_,
            "typical_for_stayers": {k: _plain(v) for k, v in self.typical_.items()},
            "bands": {name: floor for name, floor in BANDS},
        }


def _typical(values: pd.Series) -> Any:
    """What customers who stay typically have: the median of a number, the most common
    category (ties to the first in order); None when no stayer has a value."""
    known = values.dropna()
    if known.empty:
        return None
    if isinstance(values.dtype, pd.CategoricalDtype):
        counts = known.astype("string").value_counts(sort=False)
        return str(counts.idxmax())
    return float(np.median(known.to_numpy(dtype=float)))


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
    quiet = set(card.get("without_signal", []))
    for name in card.get("features", []):
        kind = "category" if name in card.get("categorical", []) else "number"
        note = "; adds no signal of its own, never a reason" if name in quiet else ""
        lines.append(f"- {name} ({kind}; typical for customers who stay: {_fmt(typical.get(name))}{note})")
    trees = card.get("boosting_iterations")
    iterations = f"; {trees} boosting iterations" if trees else ""
    lines += ["", f"Calibration: {card.get('calibration')}{iterations}; bands: {card.get('bands')}", ""]
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
        if name in ("buyers_only", "repeat_buyers"):
            continue
        if name == "best_single_column":
            lines.append(f"| best single column ({m['column']}) | {m['auc']:.3f} | - | - | - | - |")
        else:
            lines.append(row(name, m))
    for name, m in metrics.get("buyers_only", {}).items():
        lines.append(row(f"{name}, buyers only", m))
    for name, m in metrics.get("repeat_buyers", {}).items():  # where P(alive) is defined
        lines.append(row(f"{name}, repeat buyers only", m))
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
