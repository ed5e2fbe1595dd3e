"""Tiers change at their thresholds (spend over a rolling 365 days), both ways, and every
change is recorded and emitted as a tier_changed event; the programme file is validated."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clm.core.errors import InvalidInput
from clm.events.tables import events
from clm.loyalty.programme import preset, programme_from_dict
from clm.loyalty.service import account, evaluate_tiers, tiers_overview
from tests.loyalty.test_ledger import buy, day


def test_tiers_change_exactly_at_their_thresholds_and_are_recorded(engine):
    ann = buy(engine, "A1", day(2025, 1, 10), 499.99)
    assert evaluate_tiers(engine, as_of=day(2025, 1, 11)).upgrades == 0  # still a member
    buy(engine, "A2", day(2025, 2, 1), 0.01)  # exactly 500 → silver
    run = evaluate_tiers(engine, as_of=day(2025, 2, 2))
    assert run.moves == {("member", "silver"): 1}
    buy(engine, "A3", day(2025, 3, 1), 1500)  # 2,000 → gold
    assert evaluate_tiers(engine, as_of=day(2025, 3, 2)).moves == {("silver", "gold"): 1}
    assert evaluate_tiers(engine, as_of=day(2025, 3, 3)).moves == {}  # nothing new, nothing written
    # a year after the first two orders only A3 (1,500) is inside the window → silver
    run = evaluate_tiers(engine, as_of=day(2026, 2, 2))
    assert run.moves == {("gold", "silver"): 1} and run.downgrades == 1
    # and once A3 leaves the window too → member
    assert evaluate_tiers(engine, as_of=day(2026, 3, 2)).moves == {("silver", "member"): 1}

    me = account(engine, ann, now=day(2026, 3, 2))
    assert me.tier == "member" and me.next_tier == "silver" and me.to_next_tier == 500
    assert [(c.from_tier, c.to_tier, c.direction) for c in me.tier_history] == [
        ("silver", "member", "down"),
        ("gold", "silver", "down"),
        ("silver", "gold", "up"),
        ("member", "silver", "up"),
    ]
    with engine.connect() as conn:
        emitted = conn.execute(
            select(events.c.properties).where(events.c.type == "tier_changed").order_by(events.c.occurred_at)
        ).scalars()
        assert [(p["from"], p["to"]) for p in emitted] == [
            ("member", "silver"),
            ("silver", "gold"),
            ("gold", "silver"),
            ("silver", "member"),
        ]
    assert tiers_overview(engine)["member"] == 1


def test_a_gold_account_shows_its_perks(engine):
    ann = buy(engine, "A1", day(2026, 11, 1), 2500)
    evaluate_tiers(engine)
    me = account(engine, ann)
    assert me.tier == "gold" and me.perks["discount_rate"] == 0.10 and me.perks["free_shipping"] is True
    assert me.next_tier == "platinum" and me.to_next_tier == 2500
    assert me.tier_title == {"en": "Gold", "zh": "金卡会员"}


def test_a_bad_programme_is_refused_naming_the_rule_or_tier():
    good = preset().as_dict()
    assert programme_from_dict(good) == preset()
    bad_rule = {**good, "earn": [{"name": "purchase", "from": "order", "points_per_unit": -1}]}
    with pytest.raises(InvalidInput) as err:
        programme_from_dict(bad_rule)
    assert err.value.field == "earn rule 'purchase'.points_per_unit"
    tiers = good["tiers"]
    swapped = {
        **good,
        "tiers": {**tiers, "levels": [tiers["levels"][0], tiers["levels"][2], tiers["levels"][1]]},
    }
    with pytest.raises(InvalidInput, match="must be above the tier before it") as err:
        programme_from_dict(swapped)
    assert err.value.field == "tier 'silver'.min"
    with pytest.raises(InvalidInput, match="'order' or 'event'"):
        programme_from_dict({**good, "earn": [{"name": "x", "from": "visit"}]})
