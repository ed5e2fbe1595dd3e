"""The points ledger against balances worked out by hand (default programme: 1 point per
currency unit, points expire 365 days after they were earned, first in first out)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from clm.commerce.schemas import OrderIn
from clm.commerce.service import ingest_order_batch
from clm.core.errors import Conflict, InvalidInput
from clm.loyalty.accrual import accrue
from clm.loyalty.ledger import balance, expiring, post_points, reverse_posting, sweep_expired
from clm.loyalty.tables import points_postings


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 12, tzinfo=UTC)


def buy(engine, order_id: str, when: datetime, total: float, who: str = "ann", **kw) -> int:
    result = ingest_order_batch(
        engine,
        [OrderIn(order_id=order_id, external_id=who, ordered_at=when, total=total, **kw)],
        actor="test",
    )
    return next(iter(result.customer_ids))


def points(engine, customer_id: int) -> int:
    with engine.connect() as conn:
        return balance(conn, customer_id)


def test_earn_redeem_refund_and_expiry_give_the_hand_computed_balances(engine):
    ann = buy(engine, "A", day(2025, 1, 10), 100)  # lot A: 100, expires 2026-01-10
    buy(engine, "B", day(2025, 2, 10), 50.4)  # lot B: 50 (rounded down), expires 2026-02-10
    buy(engine, "C", day(2025, 6, 1), 30)  # lot C: 30, expires 2026-06-01
    accrue(engine, now=day(2025, 6, 2))
    assert points(engine, ann) == 180

    post_points(engine, ann, "redeem", 60, "voucher", "redeem-1", actor="test", now=day(2025, 6, 3))
    assert points(engine, ann) == 120

    buy(engine, "B", day(2025, 2, 10), 50.4, status="refunded", refunded_at=day(2025, 7, 1))
    done = accrue(engine, now=day(2025, 7, 1))
    assert (done.reversed, done.reversals) == (50, 1)  # the balance covers all of B's points
    assert points(engine, ann) == 70

    # lot A falls due: 100 earned, 60 spent since → 40 of A expire; B was taken back whole
    with engine.begin() as conn:
        assert expiring(conn, ann, day(2026, 1, 31)) == 40
        assert sweep_expired(conn, day(2026, 1, 11)) == 1
    assert points(engine, ann) == 30
    # C falls due: what is left of it (30) expires
    with engine.begin() as conn:
        assert sweep_expired(conn, day(2026, 6, 2)) == 1
        assert sweep_expired(conn, day(2026, 6, 2)) == 0  # a lot expires once
    assert points(engine, ann) == 0
    with engine.connect() as conn:
        kinds = conn.execute(
            select(points_postings.c.kind, points_postings.c.points).order_by(points_postings.c.id)
        ).all()
    assert sorted(kinds) == sorted(
        [
            ("earn", 100),
            ("earn", 50),
            ("earn", 30),
            ("redeem", -60),
            ("reverse", -50),
            ("expire", -40),
            ("expire", -30),
        ]
    )


def test_a_refund_takes_back_only_what_is_left(engine):
    bob = buy(engine, "B1", day(2025, 3, 1), 100, who="bob")
    accrue(engine, now=day(2025, 3, 2))
    post_points(engine, bob, "redeem", 80, "gift", "g-1", actor="test", now=day(2025, 3, 3))
    buy(engine, "B1", day(2025, 3, 1), 100, who="bob", status="refunded", refunded_at=day(2025, 3, 4))
    done = accrue(engine, now=day(2025, 3, 4))
    assert done.reversed == 20
    assert points(engine, bob) == 0
    assert accrue(engine, now=day(2025, 3, 5)).reversals == 0  # once per earn posting


def test_a_redemption_larger_than_the_balance_is_refused(engine):
    ann = buy(engine, "A", day(2025, 1, 10), 40)
    accrue(engine, now=day(2025, 1, 11))
    with pytest.raises(InvalidInput, match="balance is 40, the posting needs 50"):
        post_points(engine, ann, "redeem", 50, "too much", "r-1", actor="test", now=day(2025, 1, 12))
    # expired points cannot be spent either
    with pytest.raises(InvalidInput, match="balance is 0"):
        post_points(engine, ann, "redeem", 10, "late", "r-2", actor="test", now=day(2026, 2, 1))


def test_posting_is_idempotent_on_its_reference(engine):
    ann = buy(engine, "A", day(2026, 11, 1), 10)
    first, created = post_points(engine, ann, "adjust", 25, "goodwill", "ticket-7", actor="test")
    again, created_again = post_points(engine, ann, "adjust", 25, "goodwill", "ticket-7", actor="test")
    assert created and not created_again and first.id == again.id
    with pytest.raises(Conflict, match="already used"):
        post_points(engine, ann, "adjust", 30, "goodwill", "ticket-7", actor="test")
    assert accrue(engine).earn_postings == 1
    assert accrue(engine).earn_postings == 0  # orders earn once
    assert points(engine, ann) == 35


def test_reversing_a_redemption_gives_the_points_back(engine):
    ann = buy(engine, "A", day(2026, 11, 1), 100)
    accrue(engine)
    redemption, _ = post_points(engine, ann, "redeem", 30, "voucher", "v-1", actor="test")
    back, created = reverse_posting(engine, redemption.id, "order cancelled", actor="test")
    assert created and back.points == 30
    assert reverse_posting(engine, redemption.id, "again", actor="test")[1] is False
    assert points(engine, ann) == 100


def test_concurrent_redemptions_never_overdraw(engine):
    ann = buy(engine, "A", day(2025, 1, 10), 100)
    accrue(engine, now=day(2025, 1, 11))
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def redeem(i: int) -> None:
        start.wait()
        try:
            post_points(engine, ann, "redeem", 30, "race", f"race-{i}", actor="test", now=day(2025, 1, 12))
            outcomes.append("ok")
        except InvalidInput:
            outcomes.append("refused")

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 3 and outcomes.count("refused") == 5
    assert points(engine, ann) == 10


def test_category_campaign_and_signup_rules_earn_their_bonus(engine):
    from clm.commerce.schemas import ProductIn
    from clm.commerce.service import upsert_products
    from clm.events.schemas import validate_event
    from clm.events.service import ingest
    from clm.loyalty.ledger import select_programme
    from clm.loyalty.programme import preset, programme_from_dict
    from clm.loyalty.service import account

    base = preset().as_dict()
    rules = [
        *base["earn"],
        {"name": "phones", "from": "order", "category": "phones", "points_per_unit": 2},
        {"name": "double11", "from": "order", "campaign": "double11", "points_per_unit": 1,
         "starts": "2026-11-01", "ends": "2026-11-11"},
    ]  # fmt: skip
    select_programme(engine, programme_from_dict({**base, "earn": rules}), "test")
    with engine.begin() as conn:
        upsert_products(
            conn,
            [
                ProductIn(sku="PH-1", name="Phone", category="phones", price=300),
                ProductIn(sku="CB-1", name="Cable", category="cables", price=20),
            ],
        )
    items = [
        {"sku": "PH-1", "quantity": 1, "unit_price": 300},
        {"sku": "CB-1", "quantity": 2, "unit_price": 20},
    ]
    ann = buy(engine, "D11", day(2026, 11, 11), 340, campaign="double11", items=items)
    buy(engine, "D12", day(2026, 11, 12), 10, campaign="double11")  # after the campaign window
    for n in range(2):  # two signup events, one bonus
        event = {"event_id": f"s{n}", "type": "signup", "external_id": "ann", "timestamp": day(2026, 11, 1)}
        ingest(engine, [validate_event(event)], actor="t")
    accrue(engine)
    # 340 + 10 (purchase) + 2 x 300 (phones) + 340 (campaign) + 100 (signup) = 1,390
    assert account(engine, ann).balance == 1390
