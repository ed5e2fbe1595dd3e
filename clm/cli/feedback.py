"""`clm surveys …`, `clm tickets …`, `clm tasks …`: feedback, customer service and follow-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from clm.cli.context import customer_id, engine
from clm.cli.output import console, local, local_day, print_json, times_in
from clm.core.errors import InvalidInput
from clm.core.timeutil import show_time
from clm.feedback.service import (
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
    set_sla,
    survey_results,
    ticket_stats,
    update_ticket,
)
from clm.views.groups import customer_groups

surveys_app = typer.Typer(
    help="NPS, CSAT and feedback surveys: links, results, comments.", no_args_is_help=True
)
tickets_app = typer.Typer(help="Customer-service tickets with SLA targets.", no_args_is_help=True)
tasks_app = typer.Typer(help="Follow-up tasks (回访) for people.", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape).")]


def register(app: typer.Typer) -> None:
    app.add_typer(surveys_app, name="surveys")
    app.add_typer(tickets_app, name="tickets")
    app.add_typer(tasks_app, name="tasks")


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date (YYYY-MM-DD) or time", option)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------- surveys


@surveys_app.command("create")
def survey_create(
    name: Annotated[str, typer.Argument(help="Lower-case letters, digits, _ and -.")],
    kind: Annotated[str, typer.Option(help="nps (0-10), csat (1-5) or feedback (free text).")],
    question: Annotated[str, typer.Option(help="The question in English.")],
    question_zh: Annotated[str | None, typer.Option(help="The question in Chinese.")] = None,
    follow_up: Annotated[bool, typer.Option(help="Open a task for NPS 0-6 / CSAT 1-2 answers.")] = True,
    assignee: Annotated[str | None, typer.Option(help="Who gets those tasks.")] = None,
) -> None:
    """Create a survey."""
    survey = create_survey(
        engine(), name, kind, question, question_zh, follow_up=follow_up, follow_up_assignee=assignee
    )
    console.print(f"survey {survey.name!r} ({survey.kind}) created", highlight=False)


@surveys_app.command("list")
def survey_list(json: Json = False) -> None:
    """Every survey."""
    rows = list_surveys(engine())
    if json:
        print_json(rows)
        return
    table = Table("name", "kind", "question", "follow-up at or below", title="surveys")
    for s in rows:
        table.add_row(
            s.name,
            s.kind,
            s.question_en,
            "-" if s.follow_up_at_or_below is None else str(s.follow_up_at_or_below),
        )
    console.print(table)


@surveys_app.command("invite")
def survey_invite(
    name: Annotated[str, typer.Argument(help="The survey.")],
    who: Annotated[str, typer.Argument(help="The customer: CLM id, email or external id.")],
    channel: Annotated[str, typer.Option(help="How the link will be sent.")] = "email",
    json: Json = False,
) -> None:
    """Make a single-use answer link for one customer (printed once; only its hash is stored)."""
    eng = engine()
    invitation = invite(eng, name, customer_id(eng, who), channel=channel)
    if json:
        print_json(invitation)
        return
    console.print(invitation.link, highlight=False, soft_wrap=True)


@surveys_app.command("results")
def survey_results_command(
    name: Annotated[str, typer.Argument(help="The survey (nps, support-csat, …).")],
    start: Annotated[str | None, typer.Option("--from", help="From this day (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Before this day.")] = None,
    by: Annotated[str | None, typer.Option(help="Group by channel, month, stage or segment.")] = None,
    segment: Annotated[str | None, typer.Option(help="Only customers in this segment.")] = None,
    all_sources: Annotated[
        bool, typer.Option("--all-sources", help="Every answer of the survey's kind (imports, other tools).")
    ] = False,
    png: Annotated[Path | None, typer.Option(help="Also draw the score distribution into this PNG.")] = None,
    json: Json = False,
) -> None:
    """NPS (% 9-10 − % 0-6) or CSAT (% 4-5) with the score distribution, overall and per group."""
    from clm.feedback.charts import distribution_chart

    eng = engine()
    survey = get_survey(eng, name)
    results = survey_results(
        eng,
        survey.kind,
        survey=None if all_sources else survey.name,
        start=_moment(start, "--from"),
        end=_moment(end, "--to"),
        by=by,
        groups=customer_groups(by, segment),
    )
    if png:
        distribution_chart(results, png)
    if json:
        print_json(results)
        return
    head = "NPS" if survey.kind == "nps" else "CSAT %"
    table = Table(
        by or "",
        "answers",
        head,
        *(["promoters", "passives", "detractors"] if survey.kind == "nps" else ["4-5"]),
    )
    for g in [*results.groups, results.overall]:
        score = g.nps if survey.kind == "nps" else g.csat
        parts = (
            [f"{g.promoters:,}", f"{g.passives:,}", f"{g.detractors:,}"]
            if survey.kind == "nps"
            else [f"{g.satisfied:,}"]
        )
        table.add_row(
            g.label,
            f"{g.responses:,}",
            "-" if score is None else f"{score:+.1f}" if survey.kind == "nps" else f"{score:.1f}",
            *parts,
        )
    console.print(table)
    peak = max(results.overall.distribution.values() or [1]) or 1
    for s, n in results.overall.distribution.items():
        console.print(f"{s:>3} {'█' * round(40 * n / peak):<40} {n:,}", highlight=False)
    if png:
        console.print(f"chart written to {png}")


@surveys_app.command("comments")
def survey_comments(
    name: Annotated[str, typer.Argument(help="The survey.")],
    flagged: Annotated[bool, typer.Option(help="Only detractors and unhappy answers.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    json: Json = False,
) -> None:
    """Answers with a comment, newest first; low scores flagged with their follow-up task."""
    eng = engine()
    rows = comments(eng, survey=get_survey(eng, name).name, flagged_only=flagged, limit=limit)
    if json:
        print_json(rows)
        return
    table = Table(
        "when", "customer", "score", "comment", "follow-up", title=f"comments on {name}", caption=times_in()
    )
    for c in rows:
        mark = "⚑ " if c.flagged else ""
        table.add_row(
            f"{local_day(c.answered_at)}",
            str(c.customer_id),
            f"{mark}{c.score if c.score is not None else ''}",
            c.comment,
            f"task {c.task_id}" if c.task_id else "",
        )
    console.print(table)


# ---------------------------------------------------------------- tickets


@tickets_app.command("open")
def ticket_open(
    who: Annotated[str, typer.Argument(help="The customer: CLM id, email or external id.")],
    subject: Annotated[str, typer.Argument()],
    body: Annotated[str, typer.Option(help="The customer's message.")],
    channel: Annotated[str, typer.Option()] = "email",
    priority: Annotated[str, typer.Option(help="urgent, high, normal or low.")] = "normal",
) -> None:
    """Open a ticket for a customer."""
    eng = engine()
    ticket = open_ticket(eng, customer_id(eng, who), subject, body, channel=channel, priority=priority)
    console.print(
        f"ticket {ticket.id} opened ({ticket.priority}); "
        f"first response due {show_time(ticket.sla.first_response_due)}"
    )


@tickets_app.command("list")
def ticket_list(
    status: Annotated[str | None, typer.Option(help="open, assigned, waiting, resolved or closed.")] = None,
    priority: Annotated[str | None, typer.Option()] = None,
    assignee: Annotated[str | None, typer.Option()] = None,
    breached: Annotated[bool, typer.Option(help="Only tickets past an SLA target.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    json: Json = False,
) -> None:
    """Tickets, newest first, with their SLA state."""
    rows = list_tickets(
        engine(), status=status, priority=priority, assignee=assignee, breached=breached, limit=limit
    )
    if json:
        print_json(rows)
        return
    table = Table(
        "id", "opened", "customer", "priority", "status", "assignee", "subject", "SLA", title="tickets"
    )
    for t in rows:
        late = [
            n
            for n, b in (
                ("first response", t.sla.first_response_breached),
                ("resolution", t.sla.resolution_breached),
            )
            if b
        ]
        table.add_row(
            str(t.id),
            f"{local(t.created_at)}",
            str(t.customer_id),
            t.priority,
            t.status,
            t.assignee or "",
            t.subject,
            "breached: " + ", ".join(late) if late else "ok",
        )
    console.print(table)


def _late(breached: bool) -> str:
    return ", BREACHED" if breached else ""


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@tickets_app.command("show")
def ticket_show(ticket_id: Annotated[int, typer.Argument()], json: Json = False) -> None:
    """One ticket with its messages and SLA figures."""
    t = get_ticket(engine(), ticket_id)
    if json:
        print_json(t)
        return
    console.print(
        f"[bold]#{t.id} {t.subject}[/bold] — {t.status}, {t.priority}, customer {t.customer_id}, {t.channel}"
    )
    fr = "-" if t.first_response_hours is None else f"{t.first_response_hours:.1f} h"
    rs = "-" if t.resolution_hours is None else f"{t.resolution_hours:.1f} h"
    console.print(
        f"first response {fr} "
        f"(target {t.sla.first_response_hours:g} h{_late(t.sla.first_response_breached)}); "
        f"resolution {rs} (target {t.sla.resolution_hours:g} h{_late(t.sla.resolution_breached)})",
        highlight=False,
    )
    for m in t.messages:
        console.print(
            f"[dim]{local(m.created_at)} {m.author_kind} {m.author}[/dim]\n  {m.body}",
            highlight=False,
        )


@tickets_app.command("reply")
def ticket_reply(
    ticket_id: Annotated[int, typer.Argument()],
    body: Annotated[str, typer.Argument()],
    author: Annotated[str, typer.Option(help="Who writes.")] = "agent",
    kind: Annotated[str, typer.Option(help="agent, customer or note (internal).")] = "agent",
) -> None:
    """Add a reply or an internal note (the first agent reply is the first response)."""
    t = add_message(engine(), ticket_id, kind, author, body)
    console.print(f"ticket {t.id}: {len(t.messages)} messages, status {t.status}")


@tickets_app.command("update")
def ticket_update(
    ticket_id: Annotated[int, typer.Argument()],
    status: Annotated[str | None, typer.Option(help="open, assigned, waiting, resolved or closed.")] = None,
    assignee: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[str | None, typer.Option()] = None,
    survey: Annotated[
        str | None, typer.Option(help="On resolution, invite the customer to this CSAT survey.")
    ] = None,
) -> None:
    """Assign, re-prioritise, resolve, close or reopen a ticket."""
    t = update_ticket(
        engine(), ticket_id, status=status, assignee=assignee, priority=priority, csat_survey=survey
    )
    console.print(f"ticket {t.id}: {t.status}, {t.priority}, {t.assignee or 'unassigned'}")
    if t.survey and t.survey.link:
        console.print(f"CSAT survey link for the customer: {t.survey.link}", highlight=False, soft_wrap=True)


@tickets_app.command("stats")
def ticket_stats_command(
    start: Annotated[str | None, typer.Option("--from", help="Tickets opened from this day.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="… and before this day.")] = None,
    json: Json = False,
) -> None:
    """Per priority: medians of first-response and resolution hours and SLA breaches."""
    rows = ticket_stats(engine(), _moment(start, "--from"), _moment(end, "--to"))
    if json:
        print_json(rows)
        return
    table = Table(
        "priority",
        "tickets",
        "unresolved",
        "median 1st response h",
        "target",
        "breached",
        "median resolution h",
        "target",
        "breached",
        title="SLA",
    )
    for r in rows:
        table.add_row(
            r.priority,
            f"{r.tickets:,}",
            f"{r.unresolved:,}",
            _hours(r.median_first_response_hours),
            f"{r.first_response_target_hours:g}",
            f"{r.first_response_breaches:,} ({r.first_response_breach_rate:.0%})",
            _hours(r.median_resolution_hours),
            f"{r.resolution_target_hours:g}",
            f"{r.resolution_breaches:,} ({r.resolution_breach_rate:.0%})",
        )
    console.print(table)


@tickets_app.command("sla")
def ticket_sla(
    priority: Annotated[str, typer.Argument(help="urgent, high, normal or low.")],
    first_response: Annotated[float, typer.Option(help="Hours to the first agent reply.")],
    resolution: Annotated[float, typer.Option(help="Hours to resolution.")],
) -> None:
    """Set the SLA targets of a priority."""
    set_sla(engine(), priority, first_response, resolution)
    console.print(
        f"{priority}: first response within {first_response:g} h, resolution within {resolution:g} h"
    )


# ---------------------------------------------------------------- tasks


@tasks_app.command("list")
def task_list(
    overdue: Annotated[bool, typer.Option(help="Only open tasks past their due time.")] = False,
    status: Annotated[str, typer.Option(help="open, done or cancelled.")] = "open",
    assignee: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    json: Json = False,
) -> None:
    """Follow-up tasks, soonest due first."""
    rows = list_tasks(engine(), status=status, overdue=overdue, assignee=assignee, limit=limit)
    if json:
        print_json(rows)
        return
    table = Table(
        "id",
        "due",
        "customer",
        "assignee",
        "title",
        "source",
        title="overdue tasks" if overdue else f"{status} tasks",
    )
    for t in rows:
        due = f"{local(t.due_at)}" + (" (overdue)" if t.overdue else "")
        table.add_row(str(t.id), due, str(t.customer_id), t.assignee or "", t.title, t.source)
    console.print(table)


@tasks_app.command("add")
def task_add(
    who: Annotated[str, typer.Argument(help="The customer: CLM id, email or external id.")],
    title: Annotated[str, typer.Argument()],
    due_in_days: Annotated[float, typer.Option(help="Due this many days from now.")] = 2,
    assignee: Annotated[str | None, typer.Option()] = None,
    notes: Annotated[str, typer.Option()] = "",
) -> None:
    """Create a follow-up task by hand."""
    eng = engine()
    due = datetime.now(UTC) + timedelta(days=due_in_days)
    task = create_task(eng, customer_id(eng, who), title, due_at=due, notes=notes, assignee=assignee)
    console.print(f"task {task.id} due {show_time(task.due_at)}")


@tasks_app.command("done")
def task_done(
    task_id: Annotated[int, typer.Argument()],
    cancel: Annotated[bool, typer.Option(help="Cancel instead of completing.")] = False,
) -> None:
    """Mark a task done (or cancelled)."""
    task = finish_task(engine(), task_id, "cancelled" if cancel else "done")
    console.print(f"task {task.id} {task.status}")
