"""Profiles: upsert by any identity, consent, merges (automatic and by hand), duplicates."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from clm.commerce.schemas import OrderIn
from clm.commerce.service import customer_orders, ingest_order_batch
from clm.commerce.tables import order_days
from clm.core.errors import InvalidInput, NotFound
from clm.customers.merge import merge_customers, suspected_duplicates
from clm.customers.schemas import CustomerIn
from clm.customers.service import find_customers, get_customer, set_consent, upsert_customer
from clm.customers.tables import customer_merges
from clm.events.schemas import validate_event
from clm.events.service import ingest, timeline
from clm.segments.service import create_segment, refresh_customers
from clm.segments.tables import segment_members

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def event(kind="page_view", ts="2025-03-01T12:00:00Z", **fields):
    return validate_event({"type": kind, "timestamp": ts, **fields})


def test_upsert_creates_then_updates_the_same_profile_by_any_identity(engine):
    first, created = upsert_customer(
        engine,
        CustomerIn(email="Ann@Example.com", first_name="Ann", attributes={"vip": True}),
        actor="t",
    )
    assert created and first.email == "ann@example.com"
    second, created = upsert_customer(
        engine,
        CustomerIn(email="ann@example.com", phone="13812345678", city="Hangzhou", attributes={"size": "M"}),
        actor="t",
    )
    assert not created and second.id == first.id
    assert second.phone == "+8613812345678" and second.first_name == "Ann" and second.city == "Hangzhou"
    assert second.attributes == {"vip": True, "size": "M"}
    assert {(i.kind, i.value) for i in second.identities} == {
        ("email", "ann@example.com"),
        ("phone", "+8613812345678"),
    }
    assert [c.id for c in find_customers(engine, {"phone": "+8613812345678"})] == [first.id]


def test_customer_input_is_validated():
    with pytest.raises(ValueError, match="at least one identity"):
        CustomerIn(first_name="Nobody")
    with pytest.raises(ValueError, match="time zone"):
        CustomerIn(email="a@b.co", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="consent channel"):
        CustomerIn(email="a@b.co", consents={"pigeon": True})


def test_an_event_sharing_a_phone_merges_two_profiles_with_all_their_history(engine):
    a, _ = upsert_customer(
        engine,
        CustomerIn(email="a@x.com", first_name="Ann", consents={"email": True, "sms": True}),
        actor="t",
    )
    b, _ = upsert_customer(
        engine,
        CustomerIn(phone="+8613900000001", birthday=date(1990, 5, 4), consents={"email": False}),
        actor="t",
    )
    ingest(engine, [event(email="a@x.com", event_id="e-a")], actor="t")
    ingest(engine, [event(phone="+8613900000001", event_id="e-b")], actor="t")
    ingest_order_batch(
        engine,
        [OrderIn(order_id="o-b", phone="+8613900000001", ordered_at=T0, total=50)],
        actor="t",
    )

    # One event carries both identities: the two profiles are one person.
    result = ingest(engine, [event(email="a@x.com", phone="13900000001", event_id="e-both")], actor="t")
    assert result.merges == 1 and result.customer_ids == {a.id}

    merged = get_customer(engine, a.id)
    assert merged.merged_from == [b.id]
    assert merged.first_name == "Ann" and merged.birthday == date(1990, 5, 4)  # gaps filled from b
    assert {i.kind for i in merged.identities} == {"email", "phone"}
    # The stricter consent wins: b withdrew email consent, so the merged profile has none.
    assert {c.channel: c.granted for c in merged.consents} == {"email": False, "sms": True}
    assert {e.event_id for e in timeline(engine, a.id)} == {
        "e-a",
        "e-b",
        "e-both",
        "order:o-b:purchase",
    }
    assert [o.order_id for o in customer_orders(engine, a.id)] == ["o-b"]
    # The merged id still leads to the survivor; the merge is on record.
    assert get_customer(engine, b.id).id == a.id
    with engine.connect() as conn:
        row = conn.execute(select(customer_merges)).one()
    assert (row.survivor_id, row.merged_id) == (a.id, b.id)


def test_a_batch_that_links_three_profiles_merges_into_the_oldest(engine):
    ids = [upsert_customer(engine, CustomerIn(external_id=f"u{i}"), actor="t")[0].id for i in range(3)]
    ingest(
        engine,
        [
            event(external_id="u2", email="x@y.com", event_id="1"),
            event(email="x@y.com", anonymous_id="d1", event_id="2"),
            event(anonymous_id="d1", external_id="u1", event_id="3"),
            event(external_id="u0", anonymous_id="d1", event_id="4"),
        ],
        actor="t",
    )
    survivor = get_customer(engine, ids[2])
    assert survivor.id == ids[0]
    assert sorted(survivor.merged_from) == ids[1:]
    assert len(timeline(engine, ids[0])) == 4


def test_profiles_merging_at_once_that_share_summary_rows_keep_one_of_each(engine):
    """Two of the profiles folded into a survivor both bought on one day and both sit in one
    segment: each kept summary row (one per customer and day, one per segment) must move once."""
    create_segment(engine, "browsers", where="events(page_view, last 3650d) >= 1")
    when = datetime(2025, 3, 1, 9, tzinfo=UTC)
    ids = [upsert_customer(engine, CustomerIn(external_id=f"u{i}"), actor="t")[0].id for i in range(3)]
    ingest_order_batch(
        engine,
        [
            OrderIn(order_id=f"o{i}", external_id=f"u{i}", ordered_at=when, total=10.0 * (i + 1))
            for i in (1, 2)
        ],
        actor="t",
    )
    seen = ingest(engine, [event(external_id=f"u{i}", event_id=f"v{i}") for i in (1, 2)], actor="t")
    refresh_customers(engine, seen.customer_ids, {"event:page_view"})

    ingest(
        engine,
        [
            event(external_id="u0", email="a@x.com", phone="+8613800000000", event_id="j1"),
            event(external_id="u1", email="a@x.com", event_id="j2"),
            event(external_id="u2", phone="+8613800000000", event_id="j3"),
        ],
        actor="t",
    )

    survivor = get_customer(engine, ids[2])
    assert survivor.id == ids[0] and sorted(survivor.merged_from) == ids[1:]
    assert sorted(o.order_id for o in customer_orders(engine, ids[0])) == ["o1", "o2"]
    with engine.connect() as conn:
        days = conn.execute(select(order_days.c.customer_id, order_days.c.orders)).all()
        members = conn.execute(select(segment_members.c.customer_id)).scalars().all()
    assert days == [(ids[0], 2)]
    assert members == [ids[0]]


def test_unknown_people_in_one_batch_who_share_an_identity_get_one_profile(engine):
    result = ingest(
        engine,
        [
            event(anonymous_id="dev1", event_id="1"),
            event(anonymous_id="dev1", email="new@x.com", event_id="2"),
        ],
        actor="t",
    )
    assert result.created_customers == 1 and len(result.customer_ids) == 1
    profile = get_customer(engine, result.customer_ids.pop())
    assert profile.email == "new@x.com"
    assert profile.first_seen_at == T0


def test_older_activity_moves_first_seen_earlier(engine):
    result = ingest(engine, [event(external_id="u", ts="2025-03-01T00:00:00Z", event_id="1")], actor="t")
    cid = result.customer_ids.pop()
    ingest(engine, [event(external_id="u", ts="2024-12-24T00:00:00Z", event_id="2")], actor="t")
    assert get_customer(engine, cid).first_seen_at == datetime(2024, 12, 24, tzinfo=UTC)


def test_consent_keeps_the_newest_answer(engine):
    c, _ = upsert_customer(engine, CustomerIn(email="c@x.com"), actor="t")
    set_consent(engine, c.id, "email", True, source="form", at=datetime(2025, 1, 2, tzinfo=UTC))
    set_consent(engine, c.id, "email", False, source="old import", at=datetime(2024, 1, 1, tzinfo=UTC))
    [consent] = get_customer(engine, c.id).consents
    assert consent.granted is True and consent.source == "form"


def test_manual_merge_and_its_errors(engine):
    a, _ = upsert_customer(engine, CustomerIn(email="a@x.com"), actor="t")
    b, _ = upsert_customer(engine, CustomerIn(email="b@x.com"), actor="t")
    assert merge_customers(engine, a.id, [b.id], reason="same person", actor="t") == a.id
    with pytest.raises(InvalidInput, match="already one"):
        merge_customers(engine, a.id, [b.id], reason="again", actor="t")
    with pytest.raises(NotFound):
        merge_customers(engine, a.id, [999_999], reason="x", actor="t")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(customer_merges)).scalar_one() == 1


def test_suspected_duplicates_rank_birthday_matches_first(engine):
    def person(email, **kw):
        return upsert_customer(
            engine, CustomerIn(email=email, first_name="Wei", last_name="Wang", **kw), actor="t"
        )[0].id

    a = person("wei@qq.com", birthday=date(1990, 1, 1), city="Beijing")
    b = person("wei.work@corp.cn", birthday=date(1990, 1, 1))
    c = person("wei@163.com", city="Shanghai")
    person("other@x.com", birthday=date(1985, 1, 1), city="Chengdu")
    pairs = suspected_duplicates(engine)
    assert [(p.customer_id, p.other_id, p.reason) for p in pairs] == [
        (a, b, "same name and birthday"),
        (a, c, "same name and email user name"),
    ]


def test_implausible_dates_are_refused():
    with pytest.raises(ValueError, match="before 1990"):
        CustomerIn(email="a@b.co", first_seen_at=datetime(943, 3, 20, tzinfo=UTC))
    with pytest.raises(ValueError, match="in the future"):
        CustomerIn(email="a@b.co", first_seen_at=datetime(2331, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="not a plausible birthday"):
        CustomerIn(email="a@b.co", birthday=date(2331, 5, 31))


def test_timestamps_round_trip_through_the_store(engine):
    # Stored text on SQLite must keep a four-digit year so it reads back (1990 is the floor).
    c, _ = upsert_customer(
        engine, CustomerIn(email="t@x.com", first_seen_at=datetime(1990, 1, 1, tzinfo=UTC)), actor="t"
    )
    assert get_customer(engine, c.id).first_seen_at == datetime(1990, 1, 1, tzinfo=UTC)
