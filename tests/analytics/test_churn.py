"""Churn early warning: metrics by hand, labels and the time split by hand, recovery of a known
churn process, imported tables, and the model on the demo business against the simulator's truth."""

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy import select

from clm.analytics.churn import ChurnModel, band_of, evaluate, labels_from, prepare_columns
from clm.analytics.churn_store import labelled, store_features
from clm.analytics.service import at_risk, score_store, train_store_model
from clm.cli import main
from clm.core.errors import InvalidInput
from clm.demo.service import build_demo
from clm.demo.simulate import DemoConfig
from clm.demo.tables import demo_truth
from tests.lifecycle.conftest import day


def test_evaluate_by_hand():
    y = [1, 1, 0, 0, 1, 0, 0, 0, 0, 0]
    s = [0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1]
    m = evaluate(y, s)
    # 3 churners x 7 stayers = 21 pairs. 0.9 and 0.8 beat all 7 (14); 0.2 beats the five at 0.1
    # (5) and loses to 0.7 and 0.3: AUC = 19/21.
    assert m["auc"] == pytest.approx(19 / 21)
    assert m["precision_top_decile"] == 1.0  # the top 10% is one customer, 0.9, who churned
    assert m["lift_top_decile"] == pytest.approx(1 / 0.3)
    assert m["brier"] == pytest.approx(np.mean((np.array(s) - np.array(y)) ** 2))
    bins = {b["bin"]: b for b in m["calibration"]}
    assert bins["0.1-0.2"]["customers"] == 5 and bins["0.1-0.2"]["observed"] == 0.0
    assert bins["0.8-0.9"]["customers"] == 1 and bins["0.9-1.0"]["observed"] == 1.0
    with pytest.raises(InvalidInput):
        evaluate([0, 0], [0.1, 0.2])


def test_labels_columns_and_bands():
    label, bad = labels_from(pd.Series(["Yes", "no", "1", "0", "TRUE", "maybe", ""]))
    assert label[~bad].tolist() == [1, 0, 1, 0, 1] and bad.tolist() == [False] * 5 + [True, True]
    frame, warnings = prepare_columns(
        pd.DataFrame(
            {
                "tenure": ["1", "24", " "],
                "plan": ["a", "b", "a"],
                "note": [f"free text {i}" for i in range(3)],
            }
        )
    )
    assert frame["tenure"].tolist()[:2] == [1.0, 24.0] and np.isnan(frame["tenure"].iloc[2])
    assert isinstance(frame["plan"].dtype, pd.CategoricalDtype) and warnings == []
    many = prepare_columns(pd.DataFrame({"id": [f"c{i}" for i in range(60)]}))
    assert many[0].shape[1] == 0 and "60 distinct" in many[1][0]
    assert [band_of(p) for p in (0.95, 0.6, 0.59, 0.3, 0.29, 0.0)] == [
        "high",
        "high",
        "medium",
        "medium",
        "low",
        "low",
    ]


def telecom_table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A subscription export with a known churn process: month-to-month contracts, short
    tenure, high charges and support calls raise the log-odds; the id and the region do not."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["month-to-month", "one year", "two year"], n, p=[0.5, 0.3, 0.2])
    tenure = rng.integers(1, 72, n)
    charges = rng.uniform(20, 120, n).round(2)
    calls = rng.poisson(1.0, n)
    region = rng.choice(["north", "south", "east", "west"], n)
    logit = (
        -1.0
        + np.select([contract == "month-to-month", contract == "one year"], [1.5, 0.0], -1.5)
        - 0.04 * tenure
        + 0.015 * (charges - 70)
        + 0.5 * calls
    )
    p = 1 / (1 + np.exp(-logit))
    churned = rng.random(n) < p
    table = pd.DataFrame(
        {
            "customerID": [f"C{i:05d}" for i in range(n)],
            "Contract": contract,
            "tenure": tenure.astype(str),
            "MonthlyCharges": charges.astype(str),
            "SupportCalls": calls.astype(str),
            "Region": region,
            "Churn": np.where(churned, "Yes", "No"),
        }
    )
    return table, p


def test_a_known_churn_process_is_recovered_with_calibrated_probabilities():
    table, truth = telecom_table(20_000, seed=5)
    features, _ = prepare_columns(table.drop(columns=["customerID", "Churn"]))
    y = (table["Churn"] == "Yes").to_numpy().astype(int)
    train, test = slice(0, 15_000), slice(15_000, None)
    model = ChurnModel(random_state=1).fit(features.iloc[train], y[train])
    p = model.predict_proba(features.iloc[test])
    # the best any model can do is the true probability; we get within 0.02 of its AUC
    oracle = roc_auc_score(y[test], truth[test])
    assert roc_auc_score(y[test], p) > oracle - 0.02
    m = evaluate(y[test], p)
    assert m["calibration_error"] < 0.03
    assert np.mean(np.abs(p - truth[test])) < 0.05  # close to the true probabilities themselves
    # reasons name the drivers, not the noise: a short-tenure month-to-month customer
    risky = features.iloc[test][
        (table["Contract"].iloc[test] == "month-to-month") & (table["tenure"].iloc[test].astype(int) < 6)
    ].head(20)
    reasons = model.reasons(risky)
    named = {r.feature for why in reasons for r in why}
    assert {"Contract", "tenure"} <= named and "Region" not in {why[0].feature for why in reasons}
    assert all(r.weight > 0 for why in reasons for r in why)
    first = reasons[0][0]
    assert first.text.startswith(f"{first.feature}: ") and "(customers who stay: " in first.text


def test_train_and_score_an_imported_table_through_the_cli(engine, db_url, tmp_path, capsys):
    table, _ = telecom_table(3_000, seed=9)
    table.loc[[4, 10], "Churn"] = ["maybe", ""]  # lines 6 and 12 of the file
    path = tmp_path / "telco.csv"
    table.to_csv(path, index=False)
    card_path = tmp_path / "card.md"
    train = ["churn", "train", "--table", str(path), "--label", "Churn", "--id-col", "customerID"]
    code = main(["--db", db_url, *train, "--card", str(card_path), "--json"])
    assert code == 1  # some rows were rejected; the model is trained on the rest
    out = json.loads(capsys.readouterr().out)
    card = out["card"]
    assert card["rows"] == 3_000 and card["rejected_rows"] == 2 and card["windows"]["final"]["rows"] == 2_998
    assert card["metrics"]["model"]["auc"] > 0.75
    assert card["metrics"]["model"]["auc"] > card["metrics"]["best_single_column"]["auc"]
    assert set(card["features"]) == {"Contract", "tenure", "MonthlyCharges", "SupportCalls", "Region"}
    text = card_path.read_text()
    assert "Held-out metrics" in text and "Contract (category" in text

    main(["--db", db_url, "churn", "train", "--table", str(path), "--label", "Churn"])
    shown = capsys.readouterr().out
    assert "6" in shown and "'maybe', not a churn flag" in shown

    assert main(["--db", db_url, "churn", "score", "--table", str(path), "--id-col", "customerID"]) == 0
    scores = pd.read_csv(tmp_path / "telco.churn-scores.csv")
    assert len(scores) == 3_000 and scores["probability"].is_monotonic_decreasing
    assert set(scores["band"]) <= {"high", "medium", "low"} and scores["reasons"].iloc[0]
    assert main(["--db", db_url, "churn", "card", "--table"]) == 0
    assert "Churn model card (table)" in capsys.readouterr().out
    assert main(["--db", db_url, "churn", "train", "--table", str(path), "--label", "nope"]) == 1
    assert "no label column 'nope'" in capsys.readouterr().err


def test_labels_look_only_after_the_cutoff_and_features_only_before(shop, engine):
    shop.customer("stays", "2026-01-01")
    shop.customer("leaves", "2026-01-01")
    shop.customer("late", "2026-01-01")
    shop.customer("gone", "2025-01-01")
    shop.order("stays", "2026-01-10", 30)
    shop.order("stays", "2026-02-01", 50)
    shop.event("stays", "page_view", "2026-03-20")  # inside (cutoff, cutoff + 30d]
    shop.order("leaves", "2026-02-10", 80)
    shop.event("late", "page_view", "2026-02-01")
    shop.order("late", "2026-05-01", 40)  # after the horizon: churned within it
    shop.event("gone", "page_view", "2025-01-02")  # inactive longer than the window
    cutoff = day("2026-03-01")
    with engine.connect() as conn:
        x, y = labelled(conn, cutoff, horizon_days=30, active_within_days=365)
        later = store_features(conn, day("2026-06-01"), 365)
    churned = dict(zip(x.index, y, strict=True))
    assert churned == {shop.ids["stays"]: 0, shop.ids["leaves"]: 1, shop.ids["late"]: 1}
    late = x.loc[shop.ids["late"]]
    assert late["orders"] == 0 and np.isnan(late["days_since_last_purchase"])  # May's order unseen
    assert late["days_since_last_activity"] == 28
    assert later.loc[shop.ids["late"], "orders"] == 1
    # overdue = days since last purchase / own gap (22 days), or the shop's median gap without one
    assert x.loc[shop.ids["stays"], "overdue_ratio"] == pytest.approx(28 / 22)
    assert x.loc[shop.ids["leaves"], "overdue_ratio"] == pytest.approx(19 / 22)


@pytest.fixture
def demo_shop(engine):
    build_demo(engine, DemoConfig(customers=5_000, seed=11, end=day("2026-10-31")))
    return engine


def test_on_the_demo_business_the_model_beats_recency_and_p_alive_and_finds_the_dropouts(
    demo_shop, db_url, client, personas, capsys
):
    engine = demo_shop
    trained = train_store_model(engine, horizon_days=90)
    metrics = trained.card["metrics"]
    assert metrics["model"]["auc"] > metrics["recency"]["auc"]
    # P(alive) is scored only where BG/NBD defines it, the repeat buyers (a fill value of 1 for
    # everyone else ranked it worse than chance), and there it does better than chance
    assert "p_alive" not in metrics and "p_alive" not in metrics["buyers_only"]
    repeat = metrics["repeat_buyers"]
    assert repeat["model"]["auc"] > repeat["p_alive"]["auc"] > 0.5
    assert (
        repeat["p_alive"]["customers"]
        == repeat["model"]["customers"]
        < metrics["buyers_only"]["model"]["customers"]
    )
    assert metrics["model"]["calibration_error"] < 0.05
    windows = trained.card["windows"]
    # no leakage: every training label ends where the held-out features start
    assert windows["train"]["labels_until"] == windows["test"]["features_at"][0]
    assert max(windows["train"]["features_at"]) < windows["test"]["features_at"][0]

    result = score_store(engine)
    assert result["customers"] > 1000
    with engine.connect() as conn:
        truth = dict(conn.execute(select(demo_truth.c.customer_id, demo_truth.c.alive_at_end)).all())
    risks = at_risk(engine, top=100_000)
    dropped = np.array([not truth[r.customer_id] for r in risks if r.customer_id in truth])
    score = np.array([r.probability for r in risks if r.customer_id in truth])
    assert roc_auc_score(dropped, score) >= 0.8
    top = risks[0]
    assert top.band == "high" and top.reasons and top.reasons[0]["text"]

    h = personas.headers("vic")
    listed = client.get("/api/v1/analytics/churn/at-risk", params={"top": 5, "band": "high"}, headers=h)
    assert listed.status_code == 200 and len(listed.json()) == 5
    assert listed.json()[0]["customer_id"] == top.customer_id
    one = client.get(f"/api/v1/analytics/churn/customers/{top.customer_id}", headers=h)
    assert one.status_code == 200 and one.json()["reasons"] == top.reasons
    card = client.get("/api/v1/analytics/churn/model", headers=h).json()
    assert card["metrics"]["model"]["auc"] == metrics["model"]["auc"]
    bad = client.get("/api/v1/analytics/churn/at-risk", params={"band": "extreme"}, headers=h)
    assert bad.status_code == 422 and "band" in bad.text

    assert main(["--db", db_url, "churn", "at-risk", "--top", "3", "--json"]) == 0
    api = client.get("/api/v1/analytics/churn/at-risk", params={"top": 3}, headers=h).json()
    assert json.loads(capsys.readouterr().out) == api
    assert main(["--db", db_url, "churn", "at-risk", "--top", "3"]) == 0
    assert "customers at risk" in capsys.readouterr().out


def test_unscored_and_untrained_are_said_clearly(engine, shop, client, personas, db_url, capsys):
    shop.customer("a", "2026-01-01")
    h = personas.headers("vic")
    missing = client.get(f"/api/v1/analytics/churn/customers/{shop.ids['a']}", headers=h)
    assert missing.status_code == 404 and "clm churn score" in missing.json()["error"]["message"]
    assert client.get("/api/v1/analytics/churn/model", headers=h).status_code == 404
    assert client.get("/api/v1/analytics/clv/customers/999999", headers=h).status_code == 404
    assert main(["--db", db_url, "churn", "score"]) == 1
    assert "clm churn train" in capsys.readouterr().err
    assert main(["--db", db_url, "churn", "train"]) == 1
    assert "no activity to learn from" in capsys.readouterr().err


def test_short_history_is_refused_with_the_reason(engine, shop):
    shop.customer("a", "2026-01-01")
    shop.event("a", "page_view", "2026-01-05")
    with pytest.raises(InvalidInput, match="too little history"):
        train_store_model(engine, horizon_days=90, as_of=day("2026-01-05") + timedelta(days=1))
