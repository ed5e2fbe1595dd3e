"""Features, stage models, stage assignment, history and re-evaluation on ingestion."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from clm.cli import main
from clm.conditions import ConditionError
from clm.core.errors import Conflict, InvalidInput, UnusableInput
from clm.core.timeutil import store_midnight
from clm.events.service import timeline
from clm.lifecycle.models import PRESETS, load_model, model_from_dict, preset
from clm.lifecycle.service import (
    assign_stages,
    clear_history,
    customer_stage,
    reassess_customers,
    replay_stages,
    select_model,
    stage_distribution,
)
from clm.lifecycle.tables import customer_features
from tests.lifecycle.conftest import day

AS_OF = day("2026-06-01")


def build(shop):
    shop.products(
        ("A", "misc", 10, 4), ("P", "phones", 200, 120), ("C", "cases", 20, 5), ("H", "audio", 90, 50)
    )
    shop.customer("alice", "2026-01-01")
    for when in ("2026-04-01", "2026-05-10", "2026-05-20"):
        shop.event("alice", "product_view", when, sku="A")
    shop.event("alice", "add_to_cart", "2026-05-20", sku="A")
    shop.customer("bob", "2025-01-01", channel="ads")
    shop.order("bob", "2025-02-01", 100)
    shop.order("bob", "2025-03-03", 50)
    shop.customer("carol", "2026-05-01", birthday="1990-06-02")
    shop.order("carol", "2026-05-15", 200, sku="P")
    shop.event("carol", "survey_response", "2026-05-20", survey="nps", score=9)
    shop.event("carol", "survey_response", "2026-05-25", survey="nps", score=7)
    shop.event("carol", "survey_response", "2026-05-26", survey="csat", score=5)
    shop.event("carol", "ticket_opened", "2026-05-21", channel="support", ticket_id="T1")
    shop.event("carol", "ticket_opened", "2026-05-22", channel="support", ticket_id="T2")
    shop.event("carol", "ticket_resolved", "2026-05-23", channel="support", ticket_id="T1")
    shop.customer("dan", "2026-04-20")
    shop.order("dan", "2026-05-01", 80, status="refunded", refunded_at="2026-05-05")
    shop.customer("erin", "2026-01-05")
    for when, sku in (("2026-01-10", "A"), ("2026-02-10", "C"), ("2026-03-10", "H"), ("2026-04-10", "A")):
        shop.order("erin", when, 30, sku=sku)


def features(engine):
    with engine.connect() as conn:
        return {r.customer_id: r._mapping for r in conn.execute(select(customer_features))}


def test_features_are_right_for_a_hand_made_shop(shop, engine):
    build(shop)
    run = assign_stages(engine, as_of=AS_OF)
    f = features(engine)
    ids = shop.ids
    assert run.evaluated == 5
    alice, bob, carol, dan, erin = (f[ids[n]] for n in ("alice", "bob", "carol", "dan", "erin"))
    assert (alice["orders"], alice["product_views"], alice["views_30d"], alice["carts_30d"]) == (0, 3, 2, 1)
    assert alice["days_since_last_purchase"] is None and alice["days_since_last_activity"] == pytest.approx(
        12
    )
    assert alice["days_since_first_seen"] == pytest.approx(151)
    assert (bob["orders"], bob["revenue"], bob["purchase_gap_days"]) == (2, 150.0, pytest.approx(30))
    assert bob["days_since_last_purchase"] == pytest.approx(455)
    assert (carol["orders"], carol["revenue"], carol["margin"], carol["aov"]) == (1, 200.0, 80.0, 200.0)
    assert (carol["last_nps"], carol["last_csat"], carol["open_tickets"], carol["age"]) == (7, 5, 1, 35)
    assert (dan["orders"], dan["refunds"], dan["revenue"]) == (0, 1, 0.0)
    assert (erin["orders"], erin["categories"], erin["purchase_gap_days"]) == (4, 3, pytest.approx(30))
    assert erin["orders_90d"] == 2 and erin["revenue_365d"] == 120.0
    assert alice["shop_purchase_gap_days"] == pytest.approx(30)  # median of bob's 30 and erin's 30
    stages = {n: f[ids[n]]["stage"] for n in ids}
    assert stages == {
        "alice": "acquisition",
        "bob": "win-back",  # 455 days > max(3 × 30, 90)
        "carol": "activation",
        "dan": "acquisition",  # refunds only: never a buyer
        "erin": "expansion",  # 4 orders, 52 days since the last: not lapsed
    }


def test_history_is_stored_and_emitted_as_events(shop, engine):
    build(shop)
    first = assign_stages(engine, as_of=day("2026-03-01"))
    assert first.evaluated == 3  # carol and dan were not seen yet
    second = assign_stages(engine, as_of=AS_OF)
    erin = customer_stage(engine, shop.ids["erin"])
    assert erin.stage == "expansion" and erin.name_zh == "扩展" and erin.since == AS_OF
    assert [(h.from_stage, h.to_stage, h.changed_at) for h in erin.history] == [
        (None, "retention", day("2026-03-01")),
        ("retention", "expansion", AS_OF),
    ]
    assert erin.history[1].rule == "orders >= 4 or (orders >= 2 and categories >= 3)"
    assert second.moves == {("retention", "expansion"): 1, (None, "activation"): 1, (None, "acquisition"): 1}
    stage_events = [e for e in timeline(engine, shop.ids["erin"]) if e.type == "stage_changed"]
    assert [(e.properties["from"], e.properties["to"], e.channel) for e in stage_events] == [
        ("retention", "expansion", "system"),
        (None, "retention", "system"),
    ]
    # stage_changed events are not activity: another run changes nothing
    assert assign_stages(engine, as_of=AS_OF + timedelta(hours=1)).changed == 0
    with pytest.raises(Conflict, match="would rewrite the past"):
        assign_stages(engine, as_of=day("2026-04-01"))


def test_replay_builds_monthly_history_and_rebuild_starts_over(shop, engine):
    build(shop)
    runs = replay_stages(engine, day("2026-01-15"), AS_OF)
    # months begin at midnight in Shanghai (16:00 UTC the day before); AS_OF is 08:00 on 1 June there
    months = ("2026-02-01", "2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01")
    assert [r.as_of for r in runs] == [store_midnight(date.fromisoformat(d)) for d in months] + [AS_OF]
    erin = customer_stage(engine, shop.ids["erin"])
    assert [h.to_stage for h in erin.history] == ["activation", "retention", "expansion"]
    assert clear_history(engine, "clm5") > 0
    assert customer_stage(engine, shop.ids["erin"]).history == []
    assert not [e for e in timeline(engine, shop.ids["erin"]) if e.type == "stage_changed"]
    runs = replay_stages(engine, day("2026-01-15"), AS_OF, rebuild=True)
    assert [h.to_stage for h in customer_stage(engine, shop.ids["erin"]).history] == [
        "activation",
        "retention",
        "expansion",
    ]


def test_a_first_purchase_through_the_api_moves_the_customer_at_once(client, personas, engine):
    now = datetime.now(UTC) - timedelta(minutes=5)
    h = personas.headers("mark")
    r = client.post(
        "/api/v1/events",
        json={"type": "signup", "timestamp": now.isoformat(), "external_id": "zoe"},
        headers=h,
    )
    cid = r.json()["customer_ids"][0]
    assert customer_stage(engine, cid).stage == "acquisition"
    order = {
        "order_id": "z1",
        "external_id": "zoe",
        "ordered_at": now.isoformat(),
        "items": [{"sku": "A", "unit_price": 9}],
    }
    assert client.post("/api/v1/orders", json=order, headers=h).status_code == 200
    view = client.get(f"/api/v1/customers/{cid}", headers=personas.headers("vic")).json()
    assert view["stage"]["stage"] == "activation"
    assert [(c["from_stage"], c["to_stage"]) for c in view["stage"]["history"]] == [
        (None, "acquisition"),
        ("acquisition", "activation"),
    ]
    assert view["stage"]["history"][1]["rule"] == "orders = 1"


def test_reassessing_one_customer_leaves_the_others_alone(shop, engine):
    build(shop)
    assign_stages(engine, as_of=AS_OF)
    before = dict(stage_distribution(engine))
    run = reassess_customers(engine, [shop.ids["alice"]])
    assert run.evaluated == 1
    assert dict(stage_distribution(engine)) == before


def test_presets_have_english_and_chinese_names():
    for name in PRESETS:
        model = preset(name)
        assert model.name == name and all(s.name_en and s.name_zh != s.name_en for s in model.stages)
    assert preset("clm5").keys == ("acquisition", "activation", "retention", "expansion", "win-back")
    assert preset("funnel5").keys == ("awareness", "consideration", "purchase", "loyalty", "churn")
    assert preset("classic4").keys == ("acquisition", "development", "maintenance", "churn")


def model(rule2="orders >= 1"):
    return {
        "name": "mine",
        "stages": [
            {"key": "lead", "name": "Lead", "rule": "orders = 0"},
            {"key": "buyer", "name": "Buyer", "rule": rule2},
        ],
    }


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (model("ordrs >= 1"), "stages[1] (buyer).rule", "unknown field 'ordrs' (did you mean 'orders'?)"),
        (model("orders >= "), "stages[1] (buyer).rule", "expected a field"),
        (model({"field": "orders", "op": "≥", "value": 1}), "stages[1] (buyer).rule", "unknown operator"),
        ({**model(), "evaluation_order": ["buyer", "vip"]}, "model.evaluation_order", "'vip' is not a stage"),
        ({"name": "x", "stages": [{"key": "a", "rule": "true"}]}, "model.stages", "at least two"),
        (
            {"name": "x", "stages": [{"key": "A b", "rule": "true"}, {"key": "c", "rule": "true"}]},
            "stages[0] (A b).key",
            "lowercase",
        ),
        (
            {"name": "x", "stages": [{"key": "a", "rule": "true"}, {"key": "a", "rule": "true"}]},
            "stages[1] (a).key",
            "twice",
        ),
        (
            {"name": "x", "stages": [{"key": "a"}, {"key": "b", "rule": "true"}]},
            "stages[0] (a).rule",
            "needs a rule",
        ),
    ],
)
def test_a_bad_model_names_the_stage_and_rule(data, field, words):
    with pytest.raises(InvalidInput) as err:
        model_from_dict(data)
    assert err.value.field == field and words in err.value.message
    if isinstance(err.value, ConditionError) and isinstance(data["stages"][1]["rule"], str):
        assert "column" in err.value.message


def test_own_model_from_yaml_through_the_cli(shop, engine, db_url, tmp_path, capsys):
    build(shop)
    path = tmp_path / "vip.yaml"
    path.write_text(
        "name: vip\ntitle: {en: VIP, zh: 贵宾}\nstages:\n"
        "  - {key: prospect, name: {en: Prospect, zh: 潜客}, rule: orders = 0}\n"
        "  - {key: vip, name: {en: VIP, zh: 贵宾}, rule: revenue >= 150}\n"
        "  - {key: buyer, name: {en: Buyer, zh: 买家}, rule: 'true'}\n",
        encoding="utf-8",
    )
    assert main(["--db", db_url, "stages", "use", str(path)]) == 0
    assert main(["--db", db_url, "stages", "run", "--json"]) == 0
    assert dict(stage_distribution(engine)) == {"prospect": 2, "vip": 2, "buyer": 1}
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nstages:\n  - {key: a, rule: 'true'}\n  - {key: b, rule: 'revenu > 1'}\n", encoding="utf-8"
    )
    assert main(["--db", db_url, "stages", "use", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "stages[1] (b).rule" in err and "did you mean 'revenue'" in err
    assert main(["--db", db_url, "stages", "use", "nope"]) == 2
    with pytest.raises(UnusableInput):
        load_model(str(tmp_path / "missing.yaml"))
    select_model(engine, preset("funnel5"), "funnel5")
    assert main(["--db", db_url, "stages", "run"]) == 0
    assert set(dict(stage_distribution(engine))) == {
        "awareness",
        "consideration",
        "purchase",
        "loyalty",
        "churn",
    }


def test_windowed_event_counts_in_rules(shop, engine):
    build(shop)
    custom = model_from_dict(
        {
            "name": "browsers",
            "stages": [
                {
                    "key": "hot",
                    "rule": 'events(product_view, last 30d, sku = "A") >= 2 and not purchased(last 60d)',
                },
                {"key": "rest", "rule": "true"},
            ],
        }
    )
    assign_stages(engine, as_of=AS_OF, model=custom)
    f = features(engine)
    assert [n for n in shop.ids if f[shop.ids[n]]["stage"] == "hot"] == ["alice"]
