"""HTTP routes of the journeys domain: journeys (versioned), trace, experiments, campaign ROI,
message templates and their preview, the outbox."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from clm.auth.http import requires
from clm.auth.service import Principal
from clm.channels.templates import MessageTemplate, get_template, list_templates, render, save_template
from clm.core.payloads import MAX_ID
from clm.core.timeutil import utcnow
from clm.journeys.attribution import CampaignRoi, campaign_roi
from clm.journeys.context import build_contexts, language, profiles
from clm.journeys.experiments import ExperimentReport, experiment_report
from clm.journeys.service import (
    EnablePreview,
    Journey,
    Trace,
    enable_preview,
    get_journey,
    list_journeys,
    outbox_rows,
    presets,
    retry_message,
    save_definition,
    set_status,
    trace,
)

router = APIRouter(prefix="/api/v1", tags=["journeys"])
read = [Depends(requires("read"))]
write = [Depends(requires("write"))]
Name = Annotated[str, Path(min_length=1, max_length=100)]


class JourneyIn(BaseModel):
    definition: dict[str, Any] = Field(
        ..., description="The journey as in a YAML file: name, trigger, reentry, exit_when, goal, steps."
    )
    status: Literal["draft", "live", "paused", "archived"] | None = Field(
        None, description="Also set the status."
    )


class Saved(BaseModel):
    name: str
    version: int


class StatusIn(BaseModel):
    status: Literal["draft", "live", "paused", "archived"]


class JourneyOut(BaseModel):
    journey: Journey
    definition: dict[str, Any]


class PreviewOut(BaseModel):
    subject: str
    text: str
    html: str | None
    lang: str


@router.get("/journeys", response_model=list[Journey], dependencies=read)
def read_journeys(request: Request) -> list[Journey]:
    return list_journeys(request.app.state.engine)


@router.get("/journeys/presets", dependencies=read)
def read_presets() -> list[dict[str, Any]]:
    """The ready-made journeys (import one by posting its definition, or `clm journeys import NAME`)."""
    return [d.raw for _, d in sorted(presets().items())]


MISSING_422 = (
    "The journey names a template, segment, survey or stage that does not exist (or cannot be used):"
    " `error.code` is `missing_references` and `error.fields` has one entry per name, with `field`"
    " (where the journey names it), `kind`, `name` and `message`."
)


@router.post(
    "/journeys",
    response_model=Saved,
    status_code=201,
    dependencies=write,
    responses={422: {"description": MISSING_422}},
)
def post_journey(body: JourneyIn, request: Request) -> Saved:
    """Save a journey; saving an existing name adds a version (customers in it keep theirs).
    Refused (422, nothing saved) when it names a template, segment, survey or stage that does not
    exist."""
    engine = request.app.state.engine
    name, version = save_definition(engine, body.definition)
    if body.status:
        set_status(engine, name, body.status)
    return Saved(name=name, version=version)


@router.get("/journeys/{name}", response_model=JourneyOut, dependencies=read)
def read_journey(name: Name, request: Request) -> JourneyOut:
    j, d = get_journey(request.app.state.engine, name)
    return JourneyOut(journey=j, definition=d.raw)


@router.put(
    "/journeys/{name}/status",
    response_model=JourneyOut,
    dependencies=write,
    responses={422: {"description": MISSING_422}},
)
def put_status(name: Name, body: StatusIn, request: Request) -> JourneyOut:
    """live: react to events from now on; paused: nobody enters or moves on and its queued messages
    wait (new sends stop at once); archived: as paused, set aside. Going live is refused
    (422) while the journey names a template, segment, survey or stage that does not exist; see
    `GET /journeys/{name}/enable-preview` for how many customers it would enrol first."""
    set_status(request.app.state.engine, name, body.status)
    j, d = get_journey(request.app.state.engine, name)
    return JourneyOut(journey=j, definition=d.raw)


@router.get("/journeys/{name}/enable-preview", response_model=EnablePreview, dependencies=read)
def read_enable_preview(name: Name, request: Request) -> EnablePreview:
    """A dry run of going live, changing nothing: how many customers the trigger would enrol at its
    next run (`entering`, counted by the same selection the worker inserts, re-entry rule
    included; `runs_at` says when: now, or a broadcast's time), for an event trigger how many the
    events of the last `recent_days` would have enrolled, and the `missing` references that would
    make going live fail."""
    return enable_preview(request.app.state.engine, name)


@router.get("/journeys/trace/{customer_id}", response_model=Trace, dependencies=read)
def read_trace(
    customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    journey: str | None = Query(None, max_length=100),
) -> Trace:
    """Every journey step the customer went through and every message meant for them, with reasons."""
    return trace(request.app.state.engine, customer_id, journey)


@router.get("/experiments/{name}", response_model=ExperimentReport, dependencies=read)
def read_experiment(name: Name, request: Request) -> ExperimentReport:
    """Conversion per arm; lift against the holdout with a 95% CI and p-value from one two-proportion
    z-test (the CI excludes 0 exactly when p < 0.05); `warning` when an arm has fewer than 10
    conversions or 10 non-conversions."""
    return experiment_report(request.app.state.engine, name)


@router.get("/campaigns/roi", response_model=list[CampaignRoi], dependencies=read)
def read_roi(request: Request) -> list[CampaignRoi]:
    """ROI = (attributed revenue − cost) / cost per journey, each order credited once, to the journey
    of the last message sent or clicked within that journey's window (goal `within_days`) before
    it; with a holdout, incremental revenue = (revenue per treated − per held-out customer) ×
    treated customers and incremental ROI = (incremental revenue − cost) / cost."""
    return campaign_roi(request.app.state.engine)


@router.get("/templates", dependencies=read)
def read_templates(request: Request) -> list[dict[str, Any]]:
    """Every template; a stored one that no longer passes the checks has `error` instead of its texts."""
    return [t.as_dict() for t in list_templates(request.app.state.engine)]


@router.post("/templates", status_code=201, dependencies=write)
def post_template(body: MessageTemplate, request: Request) -> dict[str, Any]:
    """Add or replace a template, checked by the same model that loads it (Jinja2 syntax too;
    sandboxed at render time). `subject` and `html` are optional, except an email's subject."""
    save_template(request.app.state.engine, body)
    return body.as_dict()


@router.get("/templates/{name}/preview/{customer_id}", response_model=PreviewOut, dependencies=read)
def preview_template(
    name: Name,
    customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    lang: Literal["en", "zh"] | None = None,
) -> PreviewOut:
    """The template rendered for one customer (profile, loyalty, recommendations)."""
    engine = request.app.state.engine
    template = get_template(engine, name)
    people = profiles(engine, [customer_id])
    if customer_id not in people:
        from clm.core.errors import NotFound

        raise NotFound(f"no customer with id {customer_id}")
    context = build_contexts(engine, [(customer_id, {})], utcnow(), with_recommendations=True)[0]
    context["unsubscribe_url"] = "(a link per message)"
    context["track"] = lambda url: url
    out = render(template, context, lang or language(people[customer_id]))
    return PreviewOut(subject=out.subject, text=out.text, html=out.html, lang=out.lang)


@router.get("/outbox", dependencies=read)
def read_outbox(
    request: Request,
    status: Literal["queued", "claimed", "sending", "sent", "skipped", "suppressed", "failed", "unknown"]
    | None = None,
    limit: int = Query(50, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Messages newest first, with why any was not sent."""
    return outbox_rows(request.app.state.engine, status, limit)


@router.post("/outbox/{message_id}/retry")
def post_outbox_retry(
    message_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    principal: Principal = Depends(requires("write")),
) -> dict[str, Any]:
    """Queue a failed (or `unknown`) message again with fresh attempts (409 for any other status)."""
    return retry_message(request.app.state.engine, message_id, actor=principal.actor)
