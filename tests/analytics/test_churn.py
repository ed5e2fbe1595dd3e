"""Churn early warning: metrics by hand, labels and the time split by hand, recovery of a known
churn process, imported tables, and the model on the demo business against the simulator's truth."""

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy import delete, select

from clm.analytics.churn import ChurnModel, band_of, evaluate, labels_from, prepare_columns
from clm.analytics.churn_store import data_end, labelled, shop_purchase_gap, store_features, training_sample
from clm.analytics.service import (
    already_lost,
    at_risk,
    card_markdown,
    risk_summary,
    score_customers,
    score_store,
    train_store_model,
)
from clm.analytics.tables import churn_scores
from clm.cli import main
from clm.core.errors import InvalidInput
from clm.core.timeutil import utcnow
from clm.customers.tables import consents, customers
from clm.demo.service import build_demo
from clm.demo.simulate import DemoConfig
from clm.demo.tables import demo_truth
from clm.lifecycle.assign import shop_purchase_gap as lifecycle_shop_gap
from clm.lifecycle.service import lapsed_rule
from clm.worker.jobs import run_due, set_interval
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
    # calibrated thresholds: high when at least half such customers leave, medium one in five
    assert [band_of(p) for p in (0.95, 0.5, 0.49, 0.2, 0.19, 0.0)] == [
        "high",
        "high",
        "medium",
        "medium",
        "low",
        "low",
    ]


def telecom_table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A subscription export with a known churn process: month-to-month contracts, short
    tenure, high charges and support calls raise the log-odds; the id, the region and the
    gender do not."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["month-to-month", "one year", "two year"], n, p=[0.35, 0.4, 0.25])
    tenure = rng.integers(1, 72, n)
    charges = rng.uniform(20, 120, n).round(2)
    calls = rng.poisson(1.0, n)
    region = rng.choice(["north", "south", "east", "west"], n)
    gender = rng.choice(["Female", "Male"], n)
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
            "gender": gender,
            "Churn": np.where(churned, "Yes", "No"),
        }
    )
    return table, p


@pytest.fixture(scope="module")
def known_process() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, ChurnModel]:
    """One fit on 15,000 rows of the known process, shared by the tests that read it; the
    other 5,000 rows (table, features, labels, true probabilities) to test on."""
    table, truth = telecom_table(20_000, seed=5)
    features, _ = prepare_columns(table.drop(columns=["customerID", "Churn"]))
    y = (table["Churn"] == "Yes").to_numpy().astype(int)
    model = ChurnModel(random_state=1).fit(features.iloc[:15_000], y[:15_000])
    model.training_table = table.iloc[:15_000]  # for the tests' own sums
    return table.iloc[15_000:], features.iloc[15_000:], y[15_000:], truth[15_000:], model


def test_a_known_churn_process_is_recovered_with_calibrated_probabilities(known_process):
    _, features, y, truth, model = known_process
    p = model.predict_proba(features)
    # the best any model can do is the true probability; we get within 0.02 of its AUC
    assert roc_auc_score(y, p) > roc_auc_score(y, truth) - 0.02
    m = evaluate(y, p)
    assert m["calibration_error"] < 0.03
    assert np.mean(np.abs(p - truth)) < 0.05  # close to the true probabilities themselves
    # one fit, stopped early on the held-out fifth, which also calibrates (3,000 rows: sigmoid)
    assert model.iterations_ < 500 and model.calibration_ == "sigmoid"


def test_reasons_name_the_drivers_in_their_direction_and_never_the_noise(known_process):
    table, features, _, _, model = known_process
    learnt = model.training_table
    stayers = learnt[learnt["Churn"] == "No"]
    # what customers who stay typically have: their median, their most common category
    assert model.typical_["tenure"] == float(stayers["tenure"].astype(int).median())
    assert model.typical_["Contract"] == stayers["Contract"].value_counts().idxmax() == "one year"
    assert model.summary()["without_signal"] == ["Region", "gender"]
    reasons = model.reasons(features)
    given = [r for why in reasons for r in why]
    named = {r.feature for r in given}
    assert {"Contract", "tenure", "MonthlyCharges", "SupportCalls"} <= named
    assert not named & {"Region", "gender"}  # no signal, never a reason
    for r in given:  # each in the direction that raises the risk in the true process
        if r.feature == "tenure":
            assert r.value < r.typical
        elif r.feature in ("MonthlyCharges", "SupportCalls"):
            assert r.value > r.typical
        elif r.feature == "Contract":
            assert r.value == "month-to-month" and r.typical == "one year"
        assert r.weight >= 0.05
    # a long-standing two-year customer with low charges and no calls has nothing against them
    loyal = features[
        (table["Contract"] == "two year").to_numpy()
        & (table["tenure"].astype(int) > 60).to_numpy()
        & (table["MonthlyCharges"].astype(float) < 40).to_numpy()
        & (table["SupportCalls"] == "0").to_numpy()
    ]
    assert len(loyal) >= 5 and all(why == [] for why in model.reasons(loyal))
    first = next(why[0] for why in reasons if why and why[0].feature == "tenure")
    assert first.text == f"tenure: {first.value} (customers who stay: typically {first.typical})"


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
    assert set(card["features"]) == {
        "Contract",
        "tenure",
        "MonthlyCharges",
        "SupportCalls",
        "Region",
        "gender",
    }
    text = card_path.read_text()
    assert "Held-out metrics" in text and "Contract (category" in text
    assert "- gender (category; typical for customers who stay: " in text
    assert "adds no signal of its own, never a reason" in text.split("- gender (")[1].splitlines()[0]

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


def test_a_sample_of_customers_keeps_their_rows_and_labels_exactly(shop, engine):
    for k in range(6):
        shop.customer(f"c{k}", "2026-01-01")
        shop.order(f"c{k}", f"2026-02-{k + 1:02d}", 10 * (k + 1))
        if k % 2:
            shop.event(f"c{k}", "page_view", "2026-03-10")  # active after the cut-off: stayed
    cutoff = day("2026-03-01")
    with engine.connect() as conn:
        x, y = labelled(conn, cutoff, horizon_days=30, active_within_days=365)
        kept = int(sorted(x.index)[3])  # the ids below the 4th smallest: three customers
        xs, ys = labelled(conn, cutoff, horizon_days=30, active_within_days=365, sample=kept)
        # 6 customers x 3 windows = 18 examples; at most 9 wanted: half of each 1,000 ids
        assert training_sample(conn, windows=3, max_examples=9) == 500
        assert training_sample(conn, windows=3, max_examples=18) is None
    full = pd.DataFrame(x).assign(churned=y)
    part = pd.DataFrame(xs).assign(churned=ys)
    assert sorted(part.index) == sorted(i for i in x.index if i % 1000 < kept) and len(part) == 3
    pd.testing.assert_frame_equal(part.sort_index(), full.loc[sorted(part.index)].sort_index())


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
    assert f"| p_alive, repeat buyers only | {repeat['p_alive']['auc']:.3f} |" in card_markdown(trained.card)
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

    result = score_store(engine, lapsed_rule=lapsed_rule(engine))
    assert result["customers"] > 1000
    score_customers(engine)  # CLV, for the value at risk
    with engine.connect() as conn:
        truth = dict(conn.execute(select(demo_truth.c.customer_id, demo_truth.c.alive_at_end)).all())
        end = data_end(conn)
        features = store_features(conn, end, 365)
        gap = shop_purchase_gap(conn, end)
        assert gap == lifecycle_shop_gap(conn, end)  # the lifecycle's own figure
        reachable = {
            cid
            for (cid,) in conn.execute(
                select(customers.c.id)
                .join(consents, consents.c.customer_id == customers.c.id)
                .where(
                    consents.c.granted.is_(True),
                    ((consents.c.channel == "email") & customers.c.email.is_not(None))
                    | ((consents.c.channel == "sms") & customers.c.phone.is_not(None)),
                )
            )
        }
    everyone = at_risk(engine, top=100_000, reachable_only=False) + already_lost(engine, top=100_000)
    assert len(everyone) == result["customers"] == len(features)
    dropped = np.array([not truth[r.customer_id] for r in everyone if r.customer_id in truth])
    score = np.array([r.probability for r in everyone if r.customer_id in truth])
    assert roc_auc_score(dropped, score) >= 0.8

    # already lost = past the stage model's lapse threshold (clm5's win-back rule), by hand
    f = features
    threshold = np.maximum(3 * f["purchase_gap_days"].fillna(gap).astype(float), 90)
    past = np.where(
        f["orders"] > 0,
        f["days_since_last_purchase"] > threshold,
        f["days_since_last_activity"] > max(3 * gap, 90),
    )
    lost = {r.customer_id for r in everyone if r.band == "lost"}
    assert lost == set(f.index[past]) and 0 < len(lost) < len(f)
    # the at-risk list: nobody already lost, only the reachable, the most value at risk first
    risks = at_risk(engine, top=20)
    assert len(risks) == 20 and not {r.customer_id for r in risks} & lost
    assert {r.customer_id for r in risks} <= reachable and all(r.reachable for r in risks)
    values = [r.value_at_risk or 0.0 for r in risks]
    assert values == sorted(values, reverse=True) and values[0] > 0
    assert all(r.band in ("high", "medium", "low") and r.status == "at_risk" for r in risks)
    # bands that mean something: calibrated thresholds, and "high" is not half the base
    summary = risk_summary(engine)
    bands_by_hand = pd.Series([r.band for r in everyone]).value_counts()
    for name in ("high", "medium", "low", "lost"):
        assert summary["bands"][name]["customers"] == bands_by_hand.get(name, 0)
        assert summary["bands"][name]["share"] == pytest.approx(bands_by_hand.get(name, 0) / len(everyone))
    assert summary["bands"]["high"]["share"] < 0.25 and summary["thresholds"] == {
        "high": 0.5,
        "medium": 0.2,
        "low": 0.0,
    }
    assert all(r.probability >= 0.5 for r in everyone if r.band == "high")
    assert all(0.2 <= r.probability < 0.5 for r in everyone if r.band == "medium")
    top = at_risk(engine, top=1, by="risk", reachable_only=False)[0]
    assert top.band == "high" and top.reasons and top.reasons[0]["text"]

    h = personas.headers("vic")
    listed = client.get(
        "/api/v1/analytics/churn/at-risk",
        params={"top": 5, "band": "high", "by": "risk", "reachable_only": "false"},
        headers=h,
    )
    assert listed.status_code == 200 and len(listed.json()) == 5
    assert listed.json()[0]["customer_id"] == top.customer_id
    one = client.get(f"/api/v1/analytics/churn/customers/{top.customer_id}", headers=h)
    assert one.status_code == 200 and one.json()["reasons"] == top.reasons
    gone = client.get("/api/v1/analytics/churn/lost", params={"top": 10}, headers=h).json()
    assert len(gone) == 10 and {g["customer_id"] for g in gone} <= lost
    assert all(g["status"] == "lost" and g["band"] == "lost" for g in gone)
    assert client.get("/api/v1/analytics/churn/summary", headers=h).json() == json.loads(json.dumps(summary))
    card = client.get("/api/v1/analytics/churn/model", headers=h).json()
    assert card["metrics"]["model"]["auc"] == metrics["model"]["auc"]
    bad = client.get("/api/v1/analytics/churn/at-risk", params={"band": "extreme"}, headers=h)
    assert bad.status_code == 422 and "band" in bad.text

    assert main(["--db", db_url, "churn", "at-risk", "--top", "3", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    api = client.get("/api/v1/analytics/churn/at-risk", params={"top": 3}, headers=h).json()
    assert shown["at_risk"] == api and shown["lost"] == gone[:5] and shown["summary"]["customers"] == len(f)
    assert main(["--db", db_url, "churn", "at-risk", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "top 3 customers at risk" in out and "already lost" in out and "high (≥ 50%)" in out

    # the worker's daily churn job scores again with the newest model: fresh scores
    for job in ("stages", "loyalty", "segments"):
        set_interval(engine, job, None)
    with engine.begin() as conn:
        conn.execute(delete(churn_scores).where(churn_scores.c.band == "lost"))
    before = risk_summary(engine)
    done = run_due(engine, utcnow())
    assert [(name, status) for name, status, _ in done] == [("churn", "ok")]
    after = risk_summary(engine)
    assert after["scored_at"] > before["scored_at"] and after["bands"] == summary["bands"]

    # a store too large for every example learns from a fixed sample of customers and still
    # ranks churners as well as the full model does (within noise on the smaller sample)
    sampled = train_store_model(engine, horizon_days=90, max_examples=6_000)
    assert sampled.card["customers_sampled"] != "all" and trained.card["customers_sampled"] == "all"
    assert sampled.card["windows"]["test"]["examples"] < 0.6 * windows["test"]["examples"]
    assert sampled.card["metrics"]["model"]["auc"] > metrics["recency"]["auc"] - 0.02


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
