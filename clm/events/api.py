"""HTTP routes of the events domain: ingest one event or a batch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, Tag

from clm.auth.http import requires
from clm.auth.service import Principal
from clm.core.errors import InvalidInput
from clm.core.followups import refresh_customers
from clm.core.payloads import batch_or_single
from clm.core.timeutil import utcnow
from clm.events.schemas import EventIn, ValidEvent
from clm.events.service import ingest

router = APIRouter(prefix="/api/v1/events", tags=["events"])

MAX_BATCH = 1000


class EventBatch(BaseModel):
    events: list[EventIn] = Field(..., min_length=1, max_length=MAX_BATCH)


EventsPayload = Annotated[
    Annotated[EventBatch, Tag("batch")] | Annotated[EventIn, Tag("single")], batch_or_single("events")
]


class IngestOut(BaseModel):
    accepted: int = Field(..., description="Events stored now.")
    duplicates: int = Field(
        ..., description="Events already stored earlier (same event_id); not stored again."
    )
    customer_ids: list[int] = Field(..., description="Profiles the events were attached to.")


@router.post("", response_model=IngestOut)
def post_events(
    payload: EventsPayload, request: Request, principal: Principal = Depends(requires("write"))
) -> IngestOut:
    """Ingest one event, or `{"events": [...]}` with up to 1,000. A batch is all or nothing:
    if any event is invalid, none is stored and the error names each bad one."""
    items = payload.events if isinstance(payload, EventBatch) else [payload]
    now = utcnow()
    batch: list[ValidEvent] = []
    for i, item in enumerate(items):
        try:
            batch.append(item.to_valid(now))
        except InvalidInput as exc:
            where = f"events[{i}]." if isinstance(payload, EventBatch) else ""
            raise InvalidInput(exc.reason, f"{where}{exc.field or 'event'}")
    engine = request.app.state.engine
    result = ingest(engine, batch, actor=principal.actor)
    refresh_customers(request.app.state, engine, result.customer_ids, {f"event:{e.type}" for e in batch})
    return IngestOut(
        accepted=result.accepted,
        duplicates=result.duplicates,
        customer_ids=sorted(result.customer_ids),
    )
