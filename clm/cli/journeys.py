"""`clm journeys …`, `clm templates …`, `clm experiments report`, `clm campaigns roi`, `clm outbox list`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from clm.channels.templates import (
    BrokenTemplate,
    get_template,
    list_templates,
    load_template_file,
    render,
    save_template,
)
from clm.cli.context import customer_id, engine
from clm.cli.output import console, local, print_json, times_in
from clm.core.errors import ClmError
from clm.core.timeutil import utcnow
from clm.journeys.context import build_contexts, language, profiles
from clm.journeys.service import (
    EnablePreview,
    MissingReferences,
    enable_preview,
    get_journey,
    import_journey,
    list_journeys,
    outbox_rows,
    presets,
    retry_message,
    set_status,
    tick,
    trace,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

journeys_app = typer.Typer(help="Marketing automation journeys.", no_args_is_help=True)
templates_app = typer.Typer(help="Message templates (email, SMS, webhook).", no_args_is_help=True)
experiments_app = typer.Typer(help="A/B tests inside journeys.", no_args_is_help=True)
campaigns_app = typer.Typer(help="Campaign results.", no_args_is_help=True)
outbox_app = typer.Typer(help="Messages on their way out.", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape).")]


def register(app: typer.Typer) -> None:
    app.add_typer(journeys_app, name="journeys")
    app.add_typer(templates_app, name="templates")
    app.add_typer(experiments_app, name="experiments")
    app.add_typer(campaigns_app, name="campaigns")
    app.add_typer(outbox_app, name="outbox")


@journeys_app.command("list")
def journeys_list(json: Json = False) -> None:
    """Every journey with its status, version and how many customers are in it."""
    rows = list_journeys(engine())
    if json:
        print_json(rows)
        return
    table = Table(
        "journey", "status", "version", "trigger", "steps", "in it now", "entered", title="journeys"
    )
    for j in rows:
        table.add_row(
            j.name, j.status, str(j.version), j.trigger, str(j.steps), f"{j.active:,}", f"{j.entered:,}"
        )
    console.print(table)
    if not rows:
        console.print("no journeys yet: `clm journeys presets` lists the ready-made ones")


@journeys_app.command("presets")
def journeys_presets() -> None:
    """The ready-made journeys from the seeds, to import with `clm journeys import NAME`."""
    table = Table("name", "title", "what it does", title="ready-made journeys")
    for name, d in sorted(presets().items()):
        table.add_row(name, d.title, d.description)
    console.print(table)


Yes = Annotated[bool, typer.Option("--yes", "-y", help="Go live without asking.")]


def _estimate(p: EnablePreview) -> str:
    if p.recent_entrants is not None:
        days = p.recent_days or 1
        return (
            f"journey {p.journey!r} ({p.trigger}) enrols customers from new events only: nobody "
            f"enters at once; the events of the last {days} days would have enrolled "
            f"{p.recent_entrants:,} customers (about {p.recent_entrants / days:,.1f} a day)"
        )
    if p.runs_at is None:
        return f"journey {p.journey!r} ({p.trigger}) will not run again: nobody enters"
    if p.runs_at > utcnow():
        return (
            f"journey {p.journey!r} ({p.trigger}) enrols nobody now; its next run, at "
            f"{p.runs_at.isoformat(timespec='minutes')}, would enrol {p.entering:,} customers (counted now)"
        )
    return f"journey {p.journey!r} ({p.trigger}) will enrol {p.entering:,} customers now"


def _go_live(eng: Engine, name: str, yes: bool) -> None:
    """Say how many customers going live enrols now, ask (unless --yes), then make it live."""
    p = enable_preview(eng, name)
    if p.missing:
        raise MissingReferences(name, p.missing)
    console.print(_estimate(p), highlight=False)
    if not yes:
        if not sys.stdin.isatty():
            raise ClmError(
                f"journey {name!r} was not made live: nobody to confirm it here (no terminal); "
                "run again with --yes to go live without asking"
            )
        if not typer.confirm(f"Make {name!r} live?", default=False):
            raise ClmError(f"journey {name!r} was not made live (still {p.status})")
    set_status(eng, name, "live")
    console.print(f"journey {name!r} is live", highlight=False)


@journeys_app.command("import")
def journeys_import(
    source: Annotated[str, typer.Argument(help="A ready-made journey's name or a YAML/JSON file.")],
    enable: Annotated[
        bool, typer.Option(help="Make it live at once (after showing how many enter and asking).")
    ] = False,
    yes: Yes = False,
) -> None:
    """Save a journey (a new version when it exists; customers in it keep their version). Refused
    when it names a template, segment, survey or stage that does not exist."""
    eng = engine()
    name, version = import_journey(eng, source)
    console.print(f"journey {name!r} saved as version {version}", highlight=False)
    if enable:
        _go_live(eng, name, yes)


@journeys_app.command("enable")
def journeys_enable(
    name: Annotated[str, typer.Argument()],
    yes: Yes = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show how many would enter and what is missing.")
    ] = False,
) -> None:
    """Make a journey live: shows how many customers enter now and asks first (--yes skips)."""
    eng = engine()
    if dry_run:
        p = enable_preview(eng, name)
        console.print(_estimate(p), highlight=False)
        for m in p.missing:
            console.print(f"[red]missing:[/red] {escape(m.where)}: {escape(m.problem)}", highlight=False)
        return
    _go_live(eng, name, yes)


@journeys_app.command("pause")
def journeys_pause(name: Annotated[str, typer.Argument()]) -> None:
    """Stop enrolling and advancing (customers keep their place)."""
    set_status(engine(), name, "paused")
    console.print(f"journey {name!r} is paused")


@journeys_app.command("show")
def journeys_show(name: Annotated[str, typer.Argument()], json: Json = False) -> None:
    """A journey's current definition."""
    j, d = get_journey(engine(), name)
    if json:
        print_json({"journey": j, "definition": d.raw})
        return
    console.print(f"[bold]{d.title}[/bold] ({j.name}, version {j.version}, {j.status}); {d.description}")
    console.print(
        f"trigger: {d.trigger}; re-entry: {d.reentry} {d.reentry_days or ''}; exit on: {d.exit_event}"
    )
    for s in d.steps:
        console.print(f"  {s.id}: {s.action} {s.args} → {s.next or 'end'}", highlight=False)


@journeys_app.command("run")
def journeys_run(json: Json = False) -> None:
    """One round of the journeys now (what `clm worker` does every few seconds)."""
    done = tick(engine())
    if json:
        print_json(done)
        return
    d = done.dispatch
    console.print(
        f"{sum(done.enrolled.values()):,} entered {done.enrolled or ''}, {done.exited:,} left, "
        f"{done.waits_resolved:,} waits resolved, {done.steps:,} steps; messages: {d.sent:,} sent, "
        f"{d.skipped:,} skipped, {d.suppressed:,} suppressed, {d.deferred:,} delayed, {d.failed:,} failed",
        highlight=False,
    )


@journeys_app.command("trace")
def journeys_trace(
    who: Annotated[str, typer.Argument(help="The customer: CLM id, email or external id.")],
    journey: Annotated[str | None, typer.Argument(help="Only this journey.")] = None,
    json: Json = False,
) -> None:
    """Why did (or didn't) this customer get a message: every step and message, with reasons."""
    eng = engine()
    t = trace(eng, customer_id(eng, who), journey)
    if json:
        print_json(t)
        return
    for e in t.enrolments:
        console.print(
            f"[bold]{e['journey']}[/bold] entered {local(e['entered_at'])}: {e['state']}"
            + (f" ({e['exit_reason']})" if e["exit_reason"] else "")
            + (f", arm {e['variant']}" if e["variant"] else ""),
            highlight=False,
        )
    table = Table("when", "journey", "step", "action", "outcome", "detail", title="steps", caption=times_in())
    for s in t.steps:
        table.add_row(f"{local(s.at)}", s.journey, s.step, s.action, s.outcome, s.detail)
    console.print(table)
    messages = Table(
        "queued",
        "journey",
        "channel",
        "template",
        "status",
        "why / sent",
        title="messages",
        caption=times_in(),
    )
    for m in t.messages:
        why = m.reason or (f"sent {local(m.sent_at)}" if m.sent_at else "")
        messages.add_row(f"{local(m.created_at)}", m.journey or "-", m.channel, m.template, m.status, why)
    console.print(messages)


@templates_app.command("list")
def templates_list() -> None:
    """Every template (ready-made and added)."""
    table = Table("template", "channel", "languages", "what it is for", title="templates")
    for t in list_templates(engine()):
        if isinstance(t, BrokenTemplate):  # listed with its error; fix it with `clm templates add`
            table.add_row(t.name, t.channel, "-", f"[red]cannot be used: {escape(t.error)}[/]")
        else:
            table.add_row(t.name, t.channel, ", ".join(sorted(t.text)), t.description)
    console.print(table)


@templates_app.command("add")
def templates_add(file: Annotated[Path, typer.Argument(help="A template in YAML/JSON.")]) -> None:
    """Add or replace a template (checked: a syntax error names the part, language and line)."""
    template = load_template_file(file)
    save_template(engine(), template)
    console.print(f"template {template.name!r} saved")


@templates_app.command("preview")
def templates_preview(
    template: Annotated[str, typer.Argument(help="The template.")],
    who: Annotated[str, typer.Argument(help="The customer: CLM id, email or external id.")],
    lang: Annotated[str | None, typer.Option(help="en or zh (default: the customer's language).")] = None,
    coupon: Annotated[
        str | None, typer.Option(help="Show a coupon of this campaign (issues a code).")
    ] = None,
) -> None:
    """Render a template for one customer, with their profile, loyalty and recommendations."""
    eng = engine()
    cid = customer_id(eng, who)
    t = get_template(eng, template)
    now = utcnow()
    context = build_contexts(eng, [(cid, {"coupon_campaign": coupon})], now, with_recommendations=True)[0]
    context["unsubscribe_url"] = "https://…/u/(a link per message)"
    context["track"] = lambda url: url
    profile = profiles(eng, [cid])[cid]
    out = render(t, context, lang or language(profile))
    if out.subject:
        console.print(f"[bold]Subject:[/bold] {out.subject}", highlight=False)
    console.print(out.text, highlight=False, markup=False)


@experiments_app.command("report")
def experiments_report(
    name: Annotated[str, typer.Argument(help="The experiment (a split step's name).")], json: Json = False
) -> None:
    """Conversion per arm, lift against the holdout with its 95% interval and p-value."""
    from clm.journeys.experiments import experiment_report

    r = experiment_report(engine(), name)
    if json:
        print_json(r)
        return
    console.print(
        f"[bold]{r.experiment}[/bold] in journey {r.journey}: goal {r.goal} within {r.window_days:g} days"
    )
    console.print(r.method, highlight=False)
    table = Table("arm", "customers", "converted", "rate")
    for a in r.arms:
        table.add_row(
            a.name, f"{a.customers:,}", f"{a.conversions:,}", "-" if a.rate is None else f"{a.rate:.2%}"
        )
    console.print(table)
    for c in r.comparisons:
        verdict = "significant" if c.significant else "not significant"
        relative = "" if c.relative_lift is None else f", relative lift {c.relative_lift:+.1%}"
        console.print(
            f"{c.arm} vs {c.control}: difference {100 * c.lift:+.2f} points "
            f"(95% CI {100 * c.ci_low:+.2f} … {100 * c.ci_high:+.2f}){relative}, "
            f"p = {c.p_value:.4f}: {verdict}",
            highlight=False,
        )
        if c.warning:
            console.print(f"[yellow]warning:[/yellow] {c.warning}", highlight=False)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0%}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


@campaigns_app.command("roi")
def campaigns_roi(json: Json = False) -> None:
    """Per journey: cost (spend recorded for the campaign), revenue credited to it (each order once,
    last touch within the window), ROI; against the holdout, incremental revenue and ROI."""
    from clm.journeys.attribution import campaign_roi

    rows = campaign_roi(engine())
    if json:
        print_json(rows)
        return
    table = Table(
        "campaign",
        "window",
        "customers",
        "holdout",
        "cost",
        "orders",
        "attributed revenue",
        "ROI",
        "revenue / customer (treated · holdout)",
        "incremental revenue",
        "incremental ROI",
        title="ROI = (attributed revenue − cost) / cost; each order credited once, to the last message "
        "sent or clicked within its journey's window before it",
    )
    for r in rows:
        per = (
            "-"
            if r.holdout_revenue_per_customer is None
            else f"{_money(r.treated_revenue_per_customer)} · {_money(r.holdout_revenue_per_customer)}"
        )
        table.add_row(
            r.campaign,
            f"{r.window_days:g} d",
            f"{r.customers:,}",
            f"{r.holdout:,}",
            f"{r.cost:,.2f}",
            f"{r.attributed_orders:,}",
            f"{r.revenue:,.2f}",
            _pct(r.roi),
            per,
            _money(r.incremental_revenue),
            _pct(r.incremental_roi),
        )
    console.print(table)


@outbox_app.command("list")
def outbox_list(
    status: Annotated[
        str | None, typer.Option(help="queued, sent, skipped, suppressed, failed or unknown.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    json: Json = False,
) -> None:
    """Messages newest first, with why any was not sent."""
    rows = outbox_rows(engine(), status, limit)
    if json:
        print_json(rows)
        return
    table = Table(
        "id",
        "queued",
        "customer",
        "channel",
        "template",
        "status",
        "reason",
        title="outbox",
        caption=times_in(),
    )
    for r in rows:
        table.add_row(
            str(r["id"]),
            f"{local(r['created_at'])}",
            str(r["customer_id"]),
            r["channel"],
            r["template"],
            r["status"],
            r["reason"] or "",
        )
    console.print(table)


@outbox_app.command("retry")
def outbox_retry(
    ids: Annotated[list[int], typer.Argument(help="The messages' ids (`clm outbox list --status failed`).")],
) -> None:
    """Queue failed (or unknown) messages again with fresh attempts, e.g. after fixing a template."""
    eng = engine()
    for message_id in ids:
        done = retry_message(eng, message_id, actor="cli")
        console.print(f"message {message_id}: {done['status']}", highlight=False)
