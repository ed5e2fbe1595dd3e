"""Saving journeys: every save of a definition is a new version; going live starts the event
cursor at the newest event, so a journey reacts to what happens from then on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from clm.core.errors import InvalidInput, NotFound
from clm.core.timeutil import utcnow
from clm.events.tables import events
from clm.journeys.definition import JourneyDefinition, definition_from_dict
from clm.journeys.tables import enrolments, journey_versions, journeys

STATUSES = ("draft", "live", "paused", "archived")  # archived: as paused, and set aside


@dataclass(frozen=True)
class Journey:
    id: int
    name: str
    title: str
    status: str
    version: int
    trigger: str
    steps: int
    active: int  # customers in it now (active or waiting)
    entered: int  # enrolments ever
    updated_at: datetime


@lru_cache(maxsize=256)
def _parsed(definition: str) -> JourneyDefinition:
    return definition_from_dict(json.loads(definition))


def version_definition(conn: Connection, version_id: int) -> JourneyDefinition:
    raw = conn.execute(
        select(journey_versions.c.definition).where(journey_versions.c.id == version_id)
    ).scalar_one()
    return _parsed(json.dumps(raw, sort_keys=True))


def current_version(conn: Connection, journey_id: int) -> tuple[int, JourneyDefinition]:
    row = conn.execute(
        select(journey_versions.c.id, journey_versions.c.definition)
        .join(journeys, journeys.c.id == journey_versions.c.journey_id)
        .where(journeys.c.id == journey_id, journey_versions.c.version == journeys.c.version)
    ).one()
    return row.id, _parsed(json.dumps(row.definition, sort_keys=True))


def save_journey(engine: Engine, definition: JourneyDefinition) -> tuple[int, int]:
    """Create the journey or add a version; returns (journey id, version). Customers already in
    it stay on the version they entered with."""
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(journeys).where(journeys.c.name == definition.name)).first()
        if row is None:
            journey_id = conn.execute(
                insert(journeys)
                .values(
                    name=definition.name,
                    status="draft",
                    version=1,
                    event_cursor=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(journeys.c.id)
            ).scalar_one()
            version = 1
        else:
            journey_id, version = row.id, row.version + 1
            conn.execute(
                update(journeys).where(journeys.c.id == journey_id).values(version=version, updated_at=now)
            )
        conn.execute(
            insert(journey_versions).values(
                journey_id=journey_id, version=version, definition=definition.raw, created_at=now
            )
        )
    return journey_id, version


def set_status(engine: Engine, name: str, status: str) -> None:
    if status not in STATUSES:
        raise InvalidInput(f"must be one of {', '.join(STATUSES)}", "status")
    with engine.begin() as conn:
        row = conn.execute(select(journeys).where(journeys.c.name == name)).first()
        if row is None:
            raise NotFound(f"no journey named {name!r}")
        values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
        if status == "live" and row.status != "live":
            # react to what happens from now on, not to the whole history
            values["event_cursor"] = conn.execute(
                select(func.coalesce(func.max(events.c.id), 0))
            ).scalar_one()
        conn.execute(update(journeys).where(journeys.c.id == row.id).values(**values))


def list_journeys(engine: Engine) -> list[Journey]:
    live = enrolments.c.state.in_(("active", "waiting"))
    counts = (
        select(
            enrolments.c.journey_id,
            func.count().label("entered"),
            func.count().filter(live).label("active"),
        )
        .group_by(enrolments.c.journey_id)
        .subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(journeys, counts.c.entered, counts.c.active)
            .outerjoin(counts, counts.c.journey_id == journeys.c.id)
            .order_by(journeys.c.name)
        ).all()
        out = []
        for r in rows:
            _, d = current_version(conn, r.id)
            out.append(
                Journey(
                    r.id,
                    r.name,
                    d.title,
                    r.status,
                    r.version,
                    d.trigger.kind if d.trigger.kind != "event" else f"event {d.trigger.event}",
                    len(d.steps),
                    int(r.active or 0),
                    int(r.entered or 0),
                    r.updated_at,
                )
            )
        return out


def get_journey(engine: Engine, name: str) -> tuple[Journey, JourneyDefinition]:
    for j in list_journeys(engine):
        if j.name == name:
            with engine.connect() as conn:
                return j, current_version(conn, j.id)[1]
    raise NotFound(f"no journey named {name!r}")
