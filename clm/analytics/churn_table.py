"""Churn on a customer table a user brings: one row per customer, attributes and a churn label
(a telecom subscription export, a CRM extract). No time axis, so the held-out set is a
stratified random quarter of the rows; the model is then refit on every usable row.

Rows whose label cannot be read are rejected and reported by line number; the rest are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sqlalchemy import Engine

from clm.analytics.churn import ChurnModel, bands, evaluate, labels_from, prepare_columns
from clm.analytics.churn_store import TrainedModel, load_model, save_model
from clm.core.errors import InvalidInput, UnusableInput


@dataclass(frozen=True)
class Rejection:
    line: int  # line in the file, the header being line 1
    reason: str


@dataclass
class TableTraining:
    trained: TrainedModel
    rejections: list[Rejection] = field(default_factory=list)


def read_table(path: Path) -> pd.DataFrame:
    """A customer table: CSV, TSV or JSON Lines; every value read as text first so that
    column typing is ours (`prepare_columns`), not a guess per file."""
    if not path.is_file():
        raise UnusableInput(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, dtype=False).astype("string")
        if suffix not in (".csv", ".tsv", ".tab", ".txt"):
            raise UnusableInput(f"{path.name}: unknown table format {suffix!r} (use .csv, .tsv or .jsonl)")
        return pd.read_csv(
            path, sep="\t" if suffix in (".tsv", ".tab") else ",", dtype="string", keep_default_na=False
        )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UnusableInput(f"cannot read {path}: {exc}")


def _columns(frame: pd.DataFrame, label: str | None, id_col: str | None) -> None:
    for name, what in ((label, "label"), (id_col, "id")):
        if name is not None and name not in frame.columns:
            raise InvalidInput(
                f"no {what} column {name!r} (columns: {', '.join(map(str, frame.columns))})", what
            )


def _best_single_column(x: pd.DataFrame, y: np.ndarray) -> dict[str, Any] | None:
    """The baseline without a time axis: the one numeric column that ranks churners best."""
    best: tuple[float, str] | None = None
    for name in x.columns:
        if isinstance(x[name].dtype, pd.CategoricalDtype):
            continue
        values = x[name].fillna(x[name].median())
        if values.nunique() < 2:
            continue
        auc = float(roc_auc_score(y, values))
        candidate = (max(auc, 1 - auc), name)
        best = candidate if best is None or candidate > best else best
    return {"column": best[1], "auc": best[0]} if best else None


def train_table_model(
    engine: Engine,
    table: pd.DataFrame,
    *,
    label: str,
    id_col: str | None = None,
    name: str = "table",
    random_state: int = 0,
) -> TableTraining:
    """Train on an imported customer table; evaluate on a held-out quarter; save model + card."""
    _columns(table, label, id_col)
    y_all, bad = labels_from(table[label])
    rejections = [
        Rejection(int(i) + 2, f"label {label!r} is {str(v)!r}, not a churn flag (1/0, yes/no, true/false)")
        for i, v in table.loc[bad, label].items()
    ]
    usable = table.loc[~bad]
    features, warnings = prepare_columns(usable.drop(columns=[c for c in (label, id_col) if c]))
    if features.shape[1] == 0:
        raise InvalidInput("the table has no usable feature columns besides the label and the id")
    y = y_all[~bad].to_numpy()
    if min(int(y.sum()), int(len(y) - y.sum())) < 20:
        raise InvalidInput("need at least 20 churned and 20 retained rows to train and hold some out", label)
    x_train, x_test, y_train, y_test = train_test_split(
        features, y, test_size=0.25, stratify=y, random_state=random_state
    )
    words = {c: c for c in features.columns}
    model = ChurnModel(random_state=random_state, labels=words).fit(x_train, y_train)
    metrics: dict[str, Any] = {"model": evaluate(y_test, model.predict_proba(x_test))}
    baseline = _best_single_column(x_test, y_test)
    if baseline:
        metrics["best_single_column"] = baseline
    final = ChurnModel(random_state=random_state, labels=words).fit(features, y)
    card = {
        "source": "table",
        "table": name,
        "label": f"column {label!r} (1 = churned)",
        "id_column": id_col,
        "rows": len(table),
        "rejected_rows": len(rejections),
        "windows": {
            "train": {"rows": len(y_train)},
            "test": {"rows": len(y_test), "split": "stratified random 25%"},
            "final": {"rows": len(y)},
        },
        "warnings": warnings,
        "metrics": metrics,
        **final.summary(),
    }
    return TableTraining(
        save_model(engine, final, card, source="table", name=name, horizon_days=None), rejections
    )


def score_table(
    engine: Engine, table: pd.DataFrame, *, id_col: str | None = None, top: int = 3
) -> pd.DataFrame:
    """Probability, band and reasons for every row of a customer table, with the newest model
    trained on a table; keyed by the id column (or the file line)."""
    _, model, card = load_model(engine, "table")
    id_col = id_col or card.get("id_column")
    _columns(table, None, id_col)
    missing = [c for c in model.features_ if c not in table.columns]
    if missing:
        raise InvalidInput(f"the table lacks the model's columns: {', '.join(missing)}")
    features = table[model.features_]
    probability = model.predict_proba(features)
    reasons = model.reasons(features, top=top)
    key = table[id_col].to_numpy() if id_col else np.arange(len(table)) + 2
    return pd.DataFrame(
        {
            (id_col or "line"): key,
            "probability": probability,
            "band": bands(probability),
            "reasons": ["; ".join(r.text for r in why) for why in reasons],
        }
    ).sort_values("probability", ascending=False, kind="stable")
