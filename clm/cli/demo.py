"""`clm demo`: build the demo business and show what is in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy import Engine

from clm.cli.context import database_url, engine
from clm.cli.lifecycle import show_funnel, show_kpis
from clm.cli.output import console, err_console, local_day, times_in
from clm.core.errors import ClmError
from clm.demo.service import DemoSummary, build_demo
from clm.demo.simulate import DemoConfig
from clm.lifecycle.assign import month_starts
from clm.lifecycle.service import assign_stages, funnel, kpis, replay_stages
from clm.migrations import reset_schema
from clm.store.engine import make_engine

BAR = "█"
HISTORY_LIMIT = 200_000


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        customers: Annotated[int, typer.Option(min=1, help="How many customers to simulate.")] = 10_000,
        seed: Annotated[
            int, typer.Option(help="Random seed: the same seed and end date give the same data.")
        ] = 42,
        days: Annotated[int, typer.Option(min=30, help="Length of the simulated history in days.")] = 730,
        end: Annotated[
            str | None,
            typer.Option(help="Last day of the history, YYYY-MM-DD (default: today, UTC)."),
        ] = None,
        reset: Annotated[
            bool, typer.Option("--reset", help="Delete everything in the database first.")
        ] = False,
        history: Annotated[
            bool,
            typer.Option(
                "--history/--no-history",
                help="Replay lifecycle stages month by month (default: yes up to 200,000 customers).",
            ),
        ] = True,
    ) -> None:
        """Build a realistic synthetic shop: customers from five channels with different costs,
        browsing, carts, orders that follow repeat-buying-with-dropout, refunds, email
        engagement, surveys and support tickets; the simulated truth is kept in `demo_truth`."""
        if reset:
            reset_schema(make_engine(database_url()))
        end_at = (
            datetime.fromisoformat(end).replace(tzinfo=UTC)
            if end
            else datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        )
        config = DemoConfig(customers=customers, seed=seed, days=days, end=end_at)
        eng = engine()
        progress = Progress(
            TextColumn("[bold]simulating customers"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
        )
        with progress:
            task = progress.add_task("demo", total=customers)
            summary = build_demo(eng, config, progress=lambda done: progress.update(task, completed=done))
        show_summary(summary, eng.url.render_as_string(hide_password=True))
        run_lifecycle(eng, config, history)
        if config.customers <= HISTORY_LIMIT:
            run_value(eng, config)
        run_loyalty_and_feedback(eng)
        run_segments(eng)
        run_recommendations(eng)
        show_console_access(eng)


DEMO_ADMIN = "admin@demo.clm"


def show_console_access(eng: Engine) -> None:
    """The first demo in a store makes an admin who can sign in to the web console, and says how."""
    import secrets

    from clm.auth.users import create_user, list_users
    from clm.core.settings import settings

    console.rule("[bold]web console")
    address = settings().public_url + "/"
    if list_users(eng):
        console.print(f"run [bold]clm serve[/] and open {address} ; sign in with your console user")
        return
    password = secrets.token_urlsafe(9)
    create_user(eng, DEMO_ADMIN, "admin", password, "演示管理员", actor="demo")
    console.print(f"run [bold]clm serve[/] and open {address}")
    console.print(
        f"sign in as [bold]{DEMO_ADMIN}[/] with password [bold]{password}[/] (shown only now)",
        highlight=False,
    )
    console.print("more people: clm users create EMAIL --role ROLE --name NAME", highlight=False)


def run_recommendations(eng: Engine) -> None:
    """Association rules on the demo orders, and how they do against popularity."""
    from clm.analytics.recommend_store import build_recommendations, evaluate_recommendations, rules

    console.rule("[bold]recommendations")
    try:
        with err_console.status("counting association rules and evaluating them …"):
            built = build_recommendations(eng)
            result = evaluate_recommendations(eng, 10)
    except ClmError as exc:
        console.print(f"[yellow]no recommendations for this demo:[/] {exc.message}")
        return
    table = Table("if bought", "then", "confidence", "lift", title=f"strongest of {built['rules']:,} rules")
    for r in rules(eng, limit=5):
        table.add_row(r["antecedent"], r["consequent"], f"{r['confidence']:.0%}", f"{r['lift']:.2f}")
    console.print(table)
    console.print(
        f"hit-rate@10 on {result['customers']:,} held-out last orders: rules {result['hit_rate']:.1%}, "
        f"most popular products {result['popularity_hit_rate']:.1%}"
    )


def run_loyalty_and_feedback(eng: Engine) -> None:
    """Points for every order, tiers by the last year's spend, and what the surveys say."""
    from clm.feedback.service import install_builtin_surveys, survey_results
    from clm.loyalty.service import accrue, evaluate_tiers, tiers_overview

    console.rule("[bold]loyalty and feedback")
    with err_console.status("posting points and evaluating tiers …"):
        done = accrue(eng)
        evaluate_tiers(eng)
        install_builtin_surveys(eng)
    console.print(
        f"{done.earn_postings:,} earn postings ({done.earned:,} points), {done.expired:,} lots expired "
        "(points last 365 days); customers per tier:",
        highlight=False,
    )
    tiers = Table("tier", "customers", "", box=None)
    counts = tiers_overview(eng)
    top = max(counts.values(), default=1) or 1
    for name, count in counts.items():
        tiers.add_row(name, f"{count:,}", BAR * max(1, round(40 * count / top)))
    console.print(tiers)
    nps = survey_results(eng, "nps").overall
    csat = survey_results(eng, "csat").overall
    if nps.nps is not None and csat.csat is not None:
        console.print(
            f"NPS {nps.nps:+.1f} ({nps.responses:,} answers: {nps.promoters:,} promoters, "
            f"{nps.detractors:,} detractors); support CSAT {csat.csat:.1f}% ({csat.responses:,} answers)",
            highlight=False,
        )


def run_segments(eng: Engine) -> None:
    """The segments on the demo data: the missing built-ins are created (and built), and every
    segment that existed before, such as the built-ins `clm init` made on the empty store, is
    rebuilt, since the demo changed all the data they read."""
    from clm.cli.segments import sizes_chart
    from clm.segments.service import install_builtins, list_segments, rebuild_segments

    console.rule("[bold]segments")
    with err_console.status("building the segments …"):
        added = set(install_builtins(eng))
        older = [s.name for s in list_segments(eng) if s.name not in added]
        if older:
            rebuild_segments(eng, older)
    console.print(sizes_chart(eng))


def run_value(eng: Engine, config: DemoConfig) -> None:
    """Value and churn on the new data: CLV scores, the churn model against its baselines, and
    the customers most at risk with their reasons."""
    from clm.analytics.service import at_risk, score_customers, score_store, train_store_model
    from clm.cli.churn import _metrics_table
    from clm.lifecycle.service import lapsed_rule

    console.rule("[bold]value and churn early warning")
    try:
        with err_console.status("scoring CLV and training the churn model …"):
            score_customers(eng, observation_end=config.end)
            trained = train_store_model(eng, horizon_days=90)
            score_store(eng, lapsed_rule=lapsed_rule(eng))
    except ClmError as exc:  # a tiny or short demo has too little to learn from
        console.print(f"[yellow]no churn model for this demo:[/] {exc.message}")
        return
    console.print(_metrics_table(trained.card))
    top = Table("customer", "risk", "CLV", "why", title="most value at risk (risk × CLV)")
    for r in at_risk(eng, top=5, by="value"):
        top.add_row(
            f"{r.customer_id} {r.name or ''}".strip(),
            f"{r.probability:.0%}",
            "-" if r.clv is None else f"{r.clv:,.0f}",
            "; ".join(x["text"] for x in r.reasons[:2]),
        )
    console.print(top)


def run_lifecycle(eng: Engine, config: DemoConfig, history: bool) -> None:
    """The lifecycle pipeline on the new data: stage history, then the funnel and last year's KPIs."""
    console.rule("[bold]lifecycle")
    if history and config.customers <= HISTORY_LIMIT:
        months = month_starts(config.start, config.end)
        progress = Progress(
            TextColumn("[bold]replaying stage history"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
        )
        with progress:
            task = progress.add_task("stages", total=len(months))
            replay_stages(eng, config.start, config.end, progress=lambda _: progress.advance(task))
    else:
        assign_stages(eng, as_of=config.end)
    show_funnel(funnel(eng, as_of=config.end))
    year_end = config.end.date() - timedelta(days=1)
    year_start = year_end - timedelta(days=364)
    report = kpis(eng, year_start, year_end, group_by="channel")
    show_kpis(report)


def _compact(amount: float) -> str:
    """Big money amounts as 1.3M / 25.2K so the table fits a terminal."""
    for threshold, size, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "K")):
        if abs(amount) >= threshold:
            return f"{amount / size:,.1f}{suffix}"
    return f"{amount:,.0f}"


def _bars(rows: list[tuple[str, int]], width: int = 40) -> Table:
    table = Table("month", "new customers", "", box=None, title="new customers per month")
    top = max((c for _, c in rows), default=1)
    for month, count in rows:
        table.add_row(month, f"{count:,}", BAR * max(1, round(width * count / top)))
    return table


def show_summary(summary: DemoSummary, where: str) -> None:
    console.rule("[bold]CLM demo business")
    console.print(
        f"[bold]{summary.customers:,}[/] customers, [bold]{summary.orders:,}[/] orders, "
        f"[bold]{summary.events:,}[/] events, revenue [bold]{summary.revenue:,.2f}[/] CNY"
    )
    if summary.first_event and summary.last_event:
        console.print(
            f"history from {local_day(summary.first_event)} to {local_day(summary.last_event)} "
            f"({times_in()}); stored in {where}"
        )
    channels = Table(
        "channel",
        "customers",
        "buyers",
        "buy %",
        "revenue",
        "spend",
        "CAC",
        title="by acquisition channel",
    )
    for row in summary.by_channel:
        channels.add_row(
            row.channel,
            f"{row.customers:,}",
            f"{row.buyers:,}",
            f"{row.buyers / row.customers:.0%}" if row.customers else "-",
            _compact(row.revenue),
            _compact(row.spend),
            f"{row.cac:,.2f}" if row.cac is not None else "-",
        )
    console.print(channels)
    console.print(_bars(summary.new_per_month))
    kinds = Table("event type", "count", title="events by type", box=None)
    for kind, count in summary.events_by_type:
        kinds.add_row(kind, f"{count:,}")
    console.print(kinds)
    console.print(
        f"simulated truth: {summary.alive_share:.0%} of buyers are still active at the end (table demo_truth)"
    )
    console.rule("[bold]where to look next")
    console.print(
        "  clm customers show 1              one customer's profile, stage history and timeline\n"
        "  clm kpi --from 2026-01-01 --to 2026-03-31 --by stage   KPIs for any period\n"
        "  clm cohorts --png cohorts.png     cohort retention as a heat map\n"
        "  clm churn at-risk --top 20        who is about to leave, and why (clm churn card: the model)\n"
        "  clm customers duplicates          profiles that look like the same person\n"
        "  clm apikey create --role admin --name me   then: clm serve  →  http://127.0.0.1:8000/docs\n"
        "  clm import events FILE.csv        bring your own data (see docs/ingestion.md)"
    )
