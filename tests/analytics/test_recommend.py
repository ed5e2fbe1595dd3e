"""Recommendations: association-rule numbers against a hand-counted shop, upsell, exclusions,
the offline evaluation on the demo business, and the CLI and API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clm.analytics.recommend import AssociationRecommender, hit_rate
from clm.analytics.recommend_store import build_recommendations, evaluate_recommendations, recommend, rules
from clm.cli import main
from clm.demo.service import build_demo
from clm.demo.simulate import DemoConfig

# ten buyers; each letter is a product they bought (one order per product)
BASKETS = {
    "c1": "AB",
    "c2": "AB",
    "c3": "ABC",
    "c4": "AC",
    "c5": "B",
    "c6": "C",
    "c7": "CD",
    "c8": "CD",
    "c9": "A",
    "c10": "BC",
}
# By hand: buyers A 5, B 5, C 6, D 2 of 10.
#   A,B together 3: support .3, confidence A→B 3/5 = .6, lift .6 / .5 = 1.2 (B→A the same)
#   C,D together 2: support .2, C→D 2/6 = .333, lift .333 / .2 = 1.667; D→C 2/2 = 1, lift 1 / .6 = 1.667
#   A,C and B,C together 2: lift .4 / .6 < 1, no rule
EXPECTED = {
    ("A", "B"): (3, 0.3, 0.6, 1.2),
    ("B", "A"): (3, 0.3, 0.6, 1.2),
    ("C", "D"): (2, 0.2, 1 / 3, 5 / 3),
    ("D", "C"): (2, 0.2, 1.0, 5 / 3),
}


def owned_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [(c, p) for c, items in BASKETS.items() for p in items], columns=["customer_id", "sku"]
    )


def test_association_rules_match_the_hand_count() -> None:
    model = AssociationRecommender(min_together=2).fit(owned_frame())
    got = {
        (r.antecedent, r.consequent): (r.together, r.support, r.confidence, r.lift)
        for r in model.rules_.itertuples()
    }
    assert got.keys() == EXPECTED.keys()
    for key, numbers in EXPECTED.items():
        assert got[key] == pytest.approx(numbers)
    assert dict(zip(model.skus_, model.buyers_.tolist(), strict=True)) == {"A": 5, "B": 5, "C": 6, "D": 2}


def test_scores_combine_rules_as_a_noisy_or_and_upsell_a_step_up() -> None:
    catalog = pd.DataFrame(
        {
            "sku": ["A", "B", "C", "D"],
            "category": ["x", "y", "z", "z"],
            "price": [10.0, 20.0, 5.0, 50.0],
            "available": [True, True, True, True],
        }
    )
    model = AssociationRecommender(min_together=2).fit(owned_frame(), catalog)
    owned = model.matrix(pd.DataFrame({"customer_id": ["u", "v"], "sku": ["A", "C"]}), ["u", "v"])
    cross, up = model.scores(owned)
    a, b, c, d = (model.index_[s] for s in "ABCD")
    assert cross[0, b] == pytest.approx(0.6)  # owns A: B from A → B
    assert cross[0, a] == -np.inf  # never recommend what they own
    assert cross[1, d] == pytest.approx(1 / 3)
    assert up[1, d] == pytest.approx(0.5 * 2 / 8)  # D is pricier in C's category; share 2 of 8 buyers
    assert up[0, b] == 0  # no step up across categories
    # ranking adds the rule from nothing, Y's share of buyers: u: B 1 - (1 - .6)(1 - .5) = .8,
    # C .6, D .2; v: A and B .5, D 1 - (1 - 1/3)(1 - .2) = .467
    score = model.combined(owned)
    assert score[0, [b, c, d]] == pytest.approx([0.8, 0.6, 0.2])
    assert score[1, [a, b, d]] == pytest.approx([0.5, 0.5, 1 - (2 / 3) * 0.8])
    assert model.top(owned, 3).tolist() == [[b, c, d], [a, b, d]]
    # two antecedents pointing at the same product: 1 - (1 - .6)(1 - 1.0) for an owner of B and D → A, C
    both = model.matrix(pd.DataFrame({"customer_id": ["w", "w"], "sku": ["B", "D"]}), ["w"])
    cross_w, _ = model.scores(both)
    assert cross_w[0, a] == pytest.approx(0.6) and cross_w[0, c] == pytest.approx(1.0)


def test_hit_rate_counts_customers_with_any_held_out_product_recommended() -> None:
    top = np.array([[1, 2, -1], [3, 4, 5], [0, -1, -1]])
    assert hit_rate(top, [{2}, {9}, {1}]) == pytest.approx(1 / 3)


def _order(client: Any, personas: Any, ext: str, sku: str, n: int) -> None:
    body = {
        "order_id": f"{ext}-{sku}",
        "external_id": ext,
        "ordered_at": datetime(2026, 1, n + 1, tzinfo=UTC).isoformat(),
        "total": 10,
        "items": [{"sku": sku, "unit_price": 10}],
    }
    assert client.post("/api/v1/orders", json=body, headers=personas.headers("mark")).status_code == 200


def test_store_rules_recommendations_and_api(engine: Any, client: Any, personas: Any) -> None:
    products = [
        {"sku": "A", "name": "Apple", "category": "x", "price": 10},
        {"sku": "B", "name": "Bag", "category": "y", "price": 20},
        {"sku": "C", "name": "Cap", "category": "z", "price": 5},
        {"sku": "D", "name": "Dress", "category": "z", "price": 50, "in_stock": False},
    ]
    assert (
        client.post(
            "/api/v1/products", json={"products": products}, headers=personas.headers("mark")
        ).status_code
        == 200
    )
    for ext, items in BASKETS.items():
        for n, sku in enumerate(items):
            _order(client, personas, ext, sku, n)
    built = build_recommendations(engine, min_together=2)
    assert (built["customers"], built["products"], built["rules"]) == (10, 4, 4)
    stored = {
        (r["antecedent"], r["consequent"]): (r["together"], r["support"], r["confidence"], r["lift"])
        for r in rules(engine)
    }
    for key, numbers in EXPECTED.items():
        assert stored[key] == pytest.approx(numbers)

    c9 = client.get(
        "/api/v1/customers", params={"external_id": "c9"}, headers=personas.headers("vic")
    ).json()[0]["id"]
    first = recommend(engine, c9, 10)
    assert first[0].sku == "B" and first[0].kind == "cross-sell"
    assert first[0].reason == "bought with Apple by 60% of its buyers"
    assert "A" not in {r.sku for r in first}  # owned
    assert "D" not in {r.sku for r in first}  # out of stock
    over_api = client.get(
        f"/api/v1/analytics/recommendations/customers/{c9}", params={"n": 2}, headers=personas.headers("vic")
    )
    assert over_api.status_code == 200 and [r["sku"] for r in over_api.json()] == [r.sku for r in first[:2]]
    listed = client.get(
        "/api/v1/analytics/recommendations/rules", params={"sku": "D"}, headers=personas.headers("vic")
    ).json()
    assert [(r["antecedent"], r["consequent"]) for r in listed] == [("D", "C")]
    assert (
        client.post("/api/v1/analytics/recommendations/build", headers=personas.headers("vic")).status_code
        == 403
    )
    assert (
        client.get(
            "/api/v1/analytics/recommendations/customers/999", headers=personas.headers("vic")
        ).status_code
        == 404
    )


@pytest.fixture
def demo(engine: Any) -> Any:
    build_demo(engine, DemoConfig(customers=4_000, seed=5, end=datetime(2026, 10, 31, tzinfo=UTC)))
    return engine


def test_on_the_demo_business_rules_beat_popularity(demo: Any, db_url: str, capsys: Any) -> None:
    at10 = evaluate_recommendations(demo, 10)
    at5 = evaluate_recommendations(demo, 5)
    assert at10["customers"] > 500
    assert at10["hit_rate"] > at10["popularity_hit_rate"]
    assert at5["hit_rate"] > at5["popularity_hit_rate"] * 1.1
    assert main(["--db", db_url, "recommend", "evaluate"]) == 0
    out = capsys.readouterr().out
    assert f"{at10['hit_rate']:.1%}" in out and f"{at10['popularity_hit_rate']:.1%}" in out
    assert main(["--db", db_url, "recommend", "D0000001", "--n", "3", "--json"]) in (0,)
    assert main(["--db", db_url, "recommend", "nobody@example.com"]) == 1
