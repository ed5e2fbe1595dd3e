"""The events domain's public door: idempotent ingestion and per-customer timelines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from sqlalchemy import Connection, Engine, func, insert, select

from clm.core.timeutil import utcnow
from clm.customers.schemas import ProfileSeed
from clm.customers.service import note_first_seen, resolve_customers
from clm.events.schemas import Event, ValidEvent
from clm.events.tables import events, survey_answers
from clm.store.bulk import insert_ignore_many
from clm.store.engine import in_retried_transaction
from clm.store.schema import to_db_timestamp
from clm.store.sql import json_number, json_text

SURVEY_RESPONSE = "survey_response"
_ANSWER_CHUNK = 500

STORED_COLUMNS = (  # the order of the tuples store_events writes
    "event_id",
    "customer_id",
    "type",
    "channel",
    "occurred_at",
    "received_at",
    "properties",
)


@dataclass
class IngestResult:
    """How a batch went: stored, already there (same event id), and which customers it touched."""

    accepted: int = 0
    duplicates: int = 0
    customer_ids: set[int] = field(default_factory=set)
    created_customers: int = 0
    merges: int = 0


def profile_seed(event: ValidEvent) -> ProfileSeed:
    """What a profile this event creates starts with: when, and from which channel and campaign."""
    props = event.properties
    source = props.get("utm_source") or props.get("acquisition_channel")
    campaign = props.get("utm_campaign") or props.get("campaign")
    return ProfileSeed(
        event.occurred_at,
        str(source) if source else event.channel,
        str(campaign) if campaign else None,
    )


def ingest_events(conn: Connection, batch: Sequence[ValidEvent], *, actor: str = "ingest") -> IngestResult:
    """Store validated events inside the caller's transaction; events already stored are skipped."""
    if not batch:
        return IngestResult()
    resolution = resolve_customers(
        conn, [e.identities for e in batch], lambda i: profile_seed(batch[i]), actor=actor
    )
    ids = resolution.customer_ids
    earliest: dict[int, datetime] = {}
    for event, cid in zip(batch, ids, strict=True):
        if cid not in resolution.created:
            seen = earliest.get(cid)
            if seen is None or event.occurred_at < seen:
                earliest[cid] = event.occurred_at
    note_first_seen(conn, earliest)
    accepted = store_events(conn, batch, ids)
    return IngestResult(
        accepted=accepted,
        duplicates=len(batch) - accepted,
        customer_ids=set(ids),
        created_customers=len(resolution.created),
        merges=len(resolution.merges),
    )


def store_events(conn: Connection, batch: Sequence[ValidEvent], customer_ids: Sequence[int]) -> int:
    """Write events whose customers are already known; return how many were new."""
    dialect = conn.dialect.name
    received = to_db_timestamp(utcnow(), dialect)
    rows = [
        (
            e.event_id,
            cid,
            e.type,
            e.channel,
            to_db_timestamp(e.occurred_at, dialect),
            received,
            orjson.dumps(e.properties).decode(),
        )
        for e, cid in zip(batch, customer_ids, strict=True)
    ]
    accepted = insert_ignore_many(conn, events, STORED_COLUMNS, rows, ("event_id",))
    record_answers(conn, [e.event_id for e in batch if e.type == SURVEY_RESPONSE])
    return accepted


def record_answers(conn: Connection, event_ids: Sequence[str]) -> None:
    """Copy the survey answers among these stored events into `survey_answers`, once each
    (whoever stores a `survey_response` event calls this in the same transaction)."""
    for start in range(0, len(event_ids), _ANSWER_CHUNK):
        recorded = select(survey_answers.c.event_pk).where(survey_answers.c.event_pk == events.c.id)
        answers = select(
            events.c.id,
            events.c.customer_id,
            events.c.occurred_at,
            events.c.channel,
            json_text(events.c.properties, "survey"),
            json_number(events.c.properties, "score"),
        ).where(
            events.c.event_id.in_(event_ids[start : start + _ANSWER_CHUNK]),
            events.c.type == SURVEY_RESPONSE,
            ~recorded.exists(),
        )
        columns = ["event_pk", "customer_id", "answered_at", "channel", "survey", "score"]
        conn.execute(insert(survey_answers).from_select(columns, answers))


def ingest(engine: Engine, batch: Sequence[ValidEvent], *, actor: str) -> IngestResult:
    """Ingest a batch in its own transaction (the API's path)."""

    return in_retried_transaction(engine, lambda conn: ingest_events(conn, batch, actor=actor))


def timeline(
    engine: Engine,
    customer_id: int,
    limit: int = 50,
    offset: int = 0,
    *,
    type: str = "",
    channel: str = "",
) -> list[Event]:
    """A customer's events, newest first; only one type and/or channel when given."""
    query = select(events).where(events.c.customer_id == customer_id)
    if type:
        query = query.where(events.c.type == type)
    if channel:
        query = query.where(events.c.channel == channel)
    query = query.order_by(events.c.occurred_at.desc(), events.c.id.desc()).limit(limit).offset(offset)
    with engine.connect() as conn:
        return [
            Event(
                r.id,
                r.event_id,
                r.customer_id,
                r.type,
                r.channel,
                r.occurred_at,
                r.received_at,
                r.properties or {},
            )
            for r in conn.execute(query)
        ]


def event_counts(engine: Engine, customer_id: int) -> dict[str, int]:
    """How many events of each type a customer has."""
    query = (
        select(events.c.type, func.count())
        .where(events.c.customer_id == customer_id)
        .group_by(events.c.type)
        .order_by(events.c.type)
    )
    with engine.connect() as conn:
        return {t: int(n) for t, n in conn.execute(query)}
