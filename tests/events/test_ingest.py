"""Event validation and idempotent ingestion."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from clm.core.errors import InvalidInput
from clm.events.schemas import EVENT_TYPES, validate_event
from clm.events.service import event_counts, ingest, timeline
from clm.events.tables import events, survey_answers


def count(engine):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def test_the_same_event_id_is_stored_once(engine):
    e = validate_event({"event_id": "abc", "type": "signup", "timestamp": "2025-01-01", "email": "a@b.co"})
    first = ingest(engine, [e, e], actor="t")
    again = ingest(engine, [e], actor="t")
    assert (first.accepted, first.duplicates) == (1, 1)
    assert (again.accepted, again.duplicates) == (0, 1)
    assert count(engine) == 1


def test_events_without_an_id_get_a_content_id_so_resending_is_safe(engine):
    raw = {
        "type": "page_view",
        "timestamp": "2025-01-01T10:00:00Z",
        "external_id": "u1",
        "page": "/a",
    }
    a, b = validate_event(raw), validate_event(dict(raw))
    assert a.event_id == b.event_id and a.event_id.startswith("h:")
    assert validate_event({**raw, "page": "/b"}).event_id != a.event_id
    ingest(engine, [a], actor="t")
    ingest(engine, [b], actor="t")
    assert count(engine) == 1


def test_flat_columns_become_properties_and_custom_types_are_allowed():
    e = validate_event(
        {
            "type": "Coupon_Redeemed",
            "timestamp": "2025-01-01",
            "email": "A@B.co",
            "channel": "app",
            "properties": '{"code": "X1"}',
            "properties.value": "10",
            "store": "SH-1",
        }
    )
    assert (e.type, e.channel, e.identities) == ("coupon_redeemed", "app", {"email": "a@b.co"})
    assert e.properties == {"code": "X1", "value": "10", "store": "SH-1"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timestamp": "2025-01-01", "email": "a@b.co"}, "type: is required"),
        ({"type": "signup", "email": "a@b.co"}, "timestamp: is required"),
        ({"type": "signup", "timestamp": "soon", "email": "a@b.co"}, "timestamp"),
        ({"type": "signup", "timestamp": "2025-01-01"}, "at least one identity"),
        ({"type": "sign up!", "timestamp": "2025-01-01", "email": "a@b.co"}, "type"),
        ({"type": "signup", "timestamp": "2025-01-01", "email": "nope"}, "email"),
        (
            {"type": "signup", "timestamp": "2025-01-01", "email": "a@b.co", "properties": "[1]"},
            "properties",
        ),
        ({"type": "signup", "timestamp": "1970-01-02", "email": "a@b.co"}, "before 1990"),
    ],
)
def test_invalid_events_name_the_bad_field(fields, message):
    with pytest.raises(InvalidInput, match=message):
        validate_event(fields)


def test_future_events_are_refused():
    tomorrow_plus = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    with pytest.raises(InvalidInput, match="in the future"):
        validate_event({"type": "signup", "timestamp": tomorrow_plus, "email": "a@b.co"})


def test_all_standard_event_types_are_accepted_and_show_on_the_timeline(engine):
    batch = [
        validate_event(
            {
                "type": t,
                "timestamp": f"2025-01-01T00:{i:02d}:00Z",
                "external_id": "u1",
                "event_id": t,
            }
        )
        for i, t in enumerate(EVENT_TYPES)
    ]
    result = ingest(engine, batch, actor="t")
    assert result.accepted == len(EVENT_TYPES)
    cid = result.customer_ids.pop()
    newest_first = [e.type for e in timeline(engine, cid, limit=3)]
    assert newest_first == list(reversed(EVENT_TYPES))[:3]
    assert event_counts(engine, cid) == {t: 1 for t in sorted(EVENT_TYPES)}


def test_the_system_channel_and_clm_ids_are_reserved_for_derived_events():
    base = {"type": "page_view", "timestamp": "2026-01-01T00:00:00Z", "external_id": "u"}
    with pytest.raises(InvalidInput, match="reserved") as err:
        validate_event({**base, "channel": "system"})
    assert err.value.field == "channel"
    with pytest.raises(InvalidInput, match="reserved") as err:
        validate_event({**base, "event_id": "clm:stage:1"})
    assert err.value.field == "event_id"


def answers(engine):
    a = survey_answers
    query = select(a.c.customer_id, a.c.channel, a.c.survey, a.c.score).order_by(a.c.answered_at)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def test_survey_answers_are_taken_out_of_their_events_once(engine):
    def answer(event_id, day, **props):
        fields = {"event_id": event_id, "type": "survey_response", "timestamp": day, "email": "a@b.co"}
        return validate_event({**fields, "channel": "email", **props})

    batch = [
        answer("s1", "2025-01-01", survey="nps", score=9),
        answer("s2", "2025-01-02", survey="csat", score="great"),  # not a number: no score
        answer("s3", "2025-01-03", survey="nps"),
        validate_event({"event_id": "v1", "type": "page_view", "timestamp": "2025-01-04", "email": "a@b.co"}),
    ]
    result = ingest(engine, batch, actor="t")
    ingest(engine, batch[:1], actor="t")  # a resent answer is stored once
    (cid,) = result.customer_ids
    assert answers(engine) == [
        (cid, "email", "nps", 9.0),
        (cid, "email", "csat", None),
        (cid, "email", "nps", None),
    ]


def test_upgrading_a_store_with_survey_events_fills_the_answers(engine):
    from alembic import command

    from clm.migrations import config, upgrade

    e = validate_event(
        {"event_id": "s1", "type": "survey_response", "timestamp": "2025-01-01", "email": "a@b.co"}
        | {"survey": "csat", "score": 4.5}
    )
    ingest(engine, [e], actor="t")
    expected = answers(engine)
    assert [row[2:] for row in expected] == [("csat", 4.5)]
    try:
        command.downgrade(config(engine), "0008")
    finally:
        upgrade(engine)  # the migration's own SQL fills survey_answers again
    assert answers(engine) == expected
