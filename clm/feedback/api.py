"""HTTP routes of the feedback domain: surveys, invitations, answers, results and comments;
tickets with messages and SLA figures; follow-up tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from clm.auth.http import requires
from clm.auth.service import Principal
from clm.core.errors import InvalidInput
from clm.core.payloads import MAX_ID, IsoDateTime
from clm.feedback.service import (
    Answer,
    Comment,
    Invitation,
    PriorityStats,
    Results,
    Survey,
    Task,
    Ticket,
    add_message,
    comments,
    create_survey,
    create_task,
    finish_task,
    get_survey,
    get_ticket,
    invite,
    list_surveys,
    list_tasks,
    list_tickets,
    open_ticket,
    record_feedback,
    survey_results,
    ticket_stats,
    update_ticket,
)

router = APIRouter(prefix="/api/v1", tags=["feedback"])
read = [Depends(requires("read"))]
write = [Depends(requires("write"))]
SurveyName = Annotated[str, Path(min_length=1, max_length=100, description="The survey's name.")]
TicketId = Annotated[int, Path(ge=1, le=MAX_ID)]
CustomerRef = Field(..., ge=1, le=MAX_ID, description="The customer's id.")
Priority = Literal["urgent", "high", "normal", "low"]


class SurveyIn(BaseModel):
    name: str = Field(..., min_length=1, max_length=100, description="Lower-case letters, digits, _ and -.")
    kind: Literal["nps", "csat", "feedback"]
    question_en: str = Field(..., min_length=1, max_length=1000)
    question_zh: str | None = Field(None, max_length=1000)
    follow_up: bool = Field(True, description="Open a follow-up task for NPS 0-6 and CSAT 1-2 answers.")
    follow_up_assignee: str | None = Field(None, max_length=200)


class InvitationIn(BaseModel):
    customer_id: int = CustomerRef
    channel: str = Field("email", min_length=1, max_length=32, description="How the link will be sent.")
    reference: str | None = Field(
        None,
        max_length=300,
        description="The occasion (order:A-1): one link per occasion, however often asked.",
    )


class FeedbackIn(BaseModel):
    customer_id: int = CustomerRef
    score: int | None = Field(None, ge=0, le=10)
    comment: str = Field("", max_length=5000)
    channel: str = Field("web", min_length=1, max_length=32)
    event_id: str | None = Field(None, min_length=1, max_length=120, description="Your id for the answer.")


class TicketIn(BaseModel):
    customer_id: int = CustomerRef
    subject: str = Field(..., min_length=1, max_length=300)
    body: str = Field(..., min_length=1, max_length=20_000, description="The customer's first message.")
    channel: str = Field("email", min_length=1, max_length=32)
    priority: Priority = "normal"


class MessageIn(BaseModel):
    author_kind: Literal["customer", "agent", "note"] = "agent"
    author: str | None = Field(None, max_length=200, description="Defaults to the API key's name.")
    body: str = Field(..., min_length=1, max_length=20_000)


class TicketPatch(BaseModel):
    status: Literal["open", "assigned", "waiting", "resolved", "closed"] | None = None
    assignee: str | None = Field(None, max_length=200)
    priority: Priority | None = None
    csat_survey: str | None = Field(
        None, max_length=100, description="On resolution, invite the customer to this CSAT survey."
    )


class TaskIn(BaseModel):
    customer_id: int = CustomerRef
    title: str = Field(..., min_length=1, max_length=300)
    notes: str = Field("", max_length=5000)
    assignee: str | None = Field(None, max_length=200)
    due_at: IsoDateTime


class TaskPatch(BaseModel):
    status: Literal["done", "cancelled"]


def _period(start: datetime | None, end: datetime | None) -> None:
    if start and end and end <= start:
        raise InvalidInput("must be after from", "to")


@router.get("/surveys", response_model=list[Survey], dependencies=read)
def read_surveys(request: Request) -> list[Survey]:
    return list_surveys(request.app.state.engine)


@router.post("/surveys", response_model=Survey, status_code=201, dependencies=write)
def post_survey(body: SurveyIn, request: Request) -> Survey:
    return create_survey(
        request.app.state.engine,
        body.name,
        body.kind,
        body.question_en,
        body.question_zh,
        follow_up=body.follow_up,
        follow_up_assignee=body.follow_up_assignee,
    )


@router.post("/surveys/{name}/invitations", response_model=Invitation, status_code=201, dependencies=write)
def post_invitation(name: SurveyName, body: InvitationIn, request: Request) -> Invitation:
    """A single-use answer link for one customer (`link` is only returned now; it is not stored)."""
    return invite(
        request.app.state.engine, name, body.customer_id, channel=body.channel, reference=body.reference
    )


@router.post("/surveys/{name}/responses", response_model=Answer, status_code=201, dependencies=write)
def post_response(name: SurveyName, body: FeedbackIn, request: Request) -> Answer:
    """Record an answer that arrived another way (a shop form, a call); free text for `feedback`."""
    return record_feedback(
        request.app.state.engine,
        name,
        body.customer_id,
        body.score,
        body.comment,
        channel=body.channel,
        event_id=body.event_id,
    )


@router.get("/surveys/{name}/results", response_model=Results, dependencies=read)
def read_results(
    name: SurveyName,
    request: Request,
    start: IsoDateTime | None = Query(None, alias="from", description="Answers from this time (inclusive)."),
    end: IsoDateTime | None = Query(None, alias="to", description="Answers before this time."),
    by: Literal["channel", "month", "stage", "segment"] | None = None,
    segment: str | None = Query(None, max_length=100, description="Only customers in this segment."),
    all_sources: bool = Query(
        False,
        description="Count every answer of the survey's kind (imports, other tools), not only this survey's.",
    ),
) -> Results:
    """NPS = % promoters (9-10) − % detractors (0-6); CSAT = % of answers 4-5 on 1-5."""
    _period(start, end)
    survey = get_survey(request.app.state.engine, name)
    groups = request.app.state.customer_groups(by, segment)
    return survey_results(
        request.app.state.engine,
        survey.kind,
        survey=None if all_sources else survey.name,
        start=start,
        end=end,
        by=by,
        groups=groups,
    )


@router.get("/surveys/{name}/comments", response_model=list[Comment], dependencies=read)
def read_comments(
    name: SurveyName,
    request: Request,
    flagged: bool = Query(False, description="Only detractors (NPS 0-6) and unhappy CSAT answers (1-2)."),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ID),
) -> list[Comment]:
    survey = get_survey(request.app.state.engine, name)
    return comments(
        request.app.state.engine, survey=survey.name, flagged_only=flagged, limit=limit, offset=offset
    )


@router.get("/tickets", response_model=list[Ticket], dependencies=read)
def read_tickets(
    request: Request,
    status: Literal["open", "assigned", "waiting", "resolved", "closed"] | None = None,
    priority: Priority | None = None,
    assignee: str | None = Query(None, max_length=200),
    breached: bool = Query(False, description="Only tickets past an SLA target."),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ID),
) -> list[Ticket]:
    return list_tickets(
        request.app.state.engine,
        status=status,
        priority=priority,
        assignee=assignee,
        breached=breached,
        limit=limit,
        offset=offset,
    )


@router.get("/tickets/stats", response_model=list[PriorityStats], dependencies=read)
def read_ticket_stats(
    request: Request,
    start: IsoDateTime | None = Query(None, alias="from"),
    end: IsoDateTime | None = Query(None, alias="to"),
) -> list[PriorityStats]:
    """Per priority: tickets, median first-response and resolution hours, SLA breaches."""
    _period(start, end)
    return ticket_stats(request.app.state.engine, start, end)


@router.post("/tickets", response_model=Ticket, status_code=201, dependencies=write)
def post_ticket(body: TicketIn, request: Request) -> Ticket:
    return open_ticket(
        request.app.state.engine,
        body.customer_id,
        body.subject,
        body.body,
        channel=body.channel,
        priority=body.priority,
    )


@router.get("/tickets/{ticket_id}", response_model=Ticket, dependencies=read)
def read_ticket(ticket_id: TicketId, request: Request) -> Ticket:
    return get_ticket(request.app.state.engine, ticket_id)


@router.post("/tickets/{ticket_id}/messages", response_model=Ticket, status_code=201)
def post_message(
    ticket_id: TicketId, body: MessageIn, request: Request, principal: Principal = Depends(requires("write"))
) -> Ticket:
    """A reply or an internal note; the first agent reply is the ticket's first response."""
    return add_message(
        request.app.state.engine, ticket_id, body.author_kind, body.author or principal.name, body.body
    )


@router.patch("/tickets/{ticket_id}", response_model=Ticket, dependencies=write)
def patch_ticket(ticket_id: TicketId, body: TicketPatch, request: Request) -> Ticket:
    """Assign, re-prioritise or move the ticket (a closed ticket is final)."""
    return update_ticket(
        request.app.state.engine,
        ticket_id,
        status=body.status,
        assignee=body.assignee,
        priority=body.priority,
        csat_survey=body.csat_survey,
    )


@router.get("/tasks", response_model=list[Task], dependencies=read)
def read_tasks(
    request: Request,
    status: Literal["open", "done", "cancelled"] | None = "open",
    overdue: bool = Query(False, description="Only open tasks past their due time."),
    assignee: str | None = Query(None, max_length=200),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ID),
) -> list[Task]:
    return list_tasks(
        request.app.state.engine,
        status=status,
        overdue=overdue,
        assignee=assignee,
        limit=limit,
        offset=offset,
    )


@router.post("/tasks", response_model=Task, status_code=201)
def post_task(body: TaskIn, request: Request, principal: Principal = Depends(requires("write"))) -> Task:
    return create_task(
        request.app.state.engine,
        body.customer_id,
        body.title,
        due_at=body.due_at,
        notes=body.notes,
        assignee=body.assignee,
        created_by=principal.actor,
    )


@router.patch("/tasks/{task_id}", response_model=Task, dependencies=write)
def patch_task(task_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: TaskPatch, request: Request) -> Task:
    return finish_task(request.app.state.engine, task_id, body.status)
