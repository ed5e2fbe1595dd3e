"""`clm stages …`, `clm kpi`, `clm funnel`, `clm cohorts`, `clm retention project`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clm.cli.context import engine
from clm.cli.output import console, err_console, local, print_json
from clm.cli.segments import refresh_segments
from clm.core.errors import InvalidInput
from clm.core.timeutil import store_midnight, utcnow
from clm.lifecycle.assign import month_starts
from clm.lifecycle.cohorts import CohortReport
from clm.lifecycle.funnel import FunnelReport
from clm.lifecycle.kpi import KpiReport, KpiRow
from clm.lifecycle.service import (
    PRESETS,
    StageRun,
    assign_stages,
    cohorts,
    current_model,
    funnel,
    kpis,
    load_model,
    replay_stages,
    select_model,
    stage_distribution,
)

if TYPE_CHECKING:  # SciPy is loaded by the retention command alone
    from clm.lifecycle import retention

stages_app = typer.Typer(help="Lifecycle stage models and stage assignment.", no_args_is_help=True)
retention_app = typer.Typer(help="Subscription retention (shifted-beta-geometric).", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape).")]
BAR = "█"


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date (YYYY-MM-DD)", option)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def register(app: typer.Typer) -> None:
    app.add_typer(stages_app, name="stages")
    app.add_typer(retention_app, name="retention")
    app.command("kpi")(kpi_command)
    app.command("funnel")(funnel_command)
    app.command("cohorts")(cohorts_command)


# ------------------------------------------------------------------------------ stages
@stages_app.command("use")
def use(
    source: Annotated[str, typer.Argument(help=f"A preset ({', '.join(PRESETS)}) or a YAML/JSON file.")],
) -> None:
    """Select the stage model every run uses; a bad model is refused with the stage and rule named."""
    model = load_model(source)
    eng = engine()
    select_model(eng, model, source)
    console.print(f"stage model [bold]{model.name}[/] ({model.title_en} / {model.title_zh}) selected:")
    _show_model(eng)
    console.print("run [bold]clm stages run[/] to assign every customer with it")


def _show_model(eng: object) -> None:
    model = current_model(eng)  # type: ignore[arg-type]
    counts = dict(stage_distribution(eng))  # type: ignore[arg-type]
    total = sum(counts.values()) or 1
    table = Table(
        "stage", "名称", "customers", "", "rule (checked in order " + " → ".join(model.evaluation_order) + ")"
    )
    for s in model.stages:
        n = counts.get(s.key, 0)
        table.add_row(s.name_en, s.name_zh, f"{n:,}", BAR * round(30 * n / total), s.rule_text)
    console.print(table)


@stages_app.command("show")
def show(json: JsonOpt = False) -> None:
    """The selected model, its rules and how many customers are in each stage."""
    eng = engine()
    if json:
        model = current_model(eng)
        print_json({**model.as_dict(), "customers": dict(stage_distribution(eng))})
    else:
        _show_model(eng)


def _print_run(run: StageRun) -> None:
    console.print(
        f"{run.model}: evaluated [bold]{run.evaluated:,}[/] customers as of {local(run.as_of)}, "
        f"[bold]{run.changed:,}[/] changed stage"
    )
    if run.moves:
        table = Table("from", "to", "customers", title="stage changes")
        for (a, b), n in sorted(run.moves.items(), key=lambda kv: -kv[1]):
            table.add_row(a or "(new)", b, f"{n:,}")
        console.print(table)


@stages_app.command("run")
def run(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Evaluate as of this date (default: now).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Assign every customer to a stage now; changes are stored and emitted as stage_changed events."""
    when = store_midnight(_day(as_of, "as_of")) if as_of else None  # the day's start in the store's zone
    eng = engine()
    result = assign_stages(eng, as_of=when)
    refresh_segments(eng, {"features", "stage"}, quiet=json)
    if json:
        print_json(
            {
                "model": result.model,
                "as_of": result.as_of,
                "evaluated": result.evaluated,
                "changed": result.changed,
                "moves": [{"from": a, "to": b, "customers": n} for (a, b), n in result.moves.items()],
            }
        )
    else:
        _print_run(result)
        _show_model(engine())


@stages_app.command("backfill")
def backfill(
    start: Annotated[str, typer.Option("--from", help="Replay from this date (YYYY-MM-DD).")],
    end: Annotated[str | None, typer.Option("--to", help="Up to this date (default: now).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Forget the model's history first.")] = False,
) -> None:
    """Build stage history by evaluating the rules at the start of every month, as customers were then."""
    eng = engine()
    t0 = store_midnight(_day(start, "from"))  # days begin in the store's time zone
    t1 = store_midnight(_day(end, "to")) if end else None
    steps = len(month_starts(t0, t1 or utcnow()))
    progress = Progress(
        TextColumn("[bold]replaying months"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )
    with progress:
        task = progress.add_task("replay", total=steps)
        runs = replay_stages(eng, t0, t1, rebuild=rebuild, progress=lambda _: progress.advance(task))
    console.print(f"replayed {len(runs)} months: {sum(r.changed for r in runs):,} stage changes recorded")
    _show_model(eng)


# ------------------------------------------------------------------------------ KPIs
def kpi_command(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")],
    by: Annotated[str | None, typer.Option("--by", help="Group by channel, stage or cohort.")] = None,
    active_days: Annotated[int, typer.Option(help="Active = an order within this many days.")] = 365,
    json: JsonOpt = False,
) -> None:
    """Lifecycle KPIs for a period: customers, churn, retention, repurchase, revenue, AOV, CAC,
    NPS, CSAT, historical CLV."""
    eng = engine()
    report = kpis(
        eng,
        _day(start, "from"),
        _day(end, "to"),
        group_by=by,
        active_days=active_days,
        model=current_model(eng).name,
    )
    if json:
        print_json(report.model_dump(mode="json"))
        return
    show_kpis(report)


def show_kpis(report: KpiReport) -> None:
    rows: list[KpiRow] = [report.overall, *report.groups]
    table = Table(
        report.group_by or "",
        *(r.group for r in rows),
        title=f"KPIs {report.start} … {report.end} (active = an order in the last {report.active_days} days)",
    )
    lines = [
        ("customers at start", lambda r: f"{r.customers_at_start:,}"),
        ("customers at end", lambda r: f"{r.customers_at_end:,}"),
        ("new", lambda r: f"{r.new_customers:,}"),
        ("lost", lambda r: f"{r.lost_customers:,}"),
        ("churn rate", lambda r: _pct(r.churn_rate)),
        ("retention rate", lambda r: _pct(r.retention_rate)),
        ("repurchase rate", lambda r: _pct(r.repurchase_rate)),
        ("orders", lambda r: f"{r.orders:,}"),
        ("revenue", lambda r: _num(r.revenue, 0)),
        ("AOV", lambda r: _num(r.aov)),
        ("spend", lambda r: _num(r.spend, 0)),
        ("CAC", lambda r: _num(r.cac)),
        ("NPS", lambda r: _num(r.nps, 1) + (f" (n={r.nps_responses})" if r.nps_responses else "")),
        (
            "CSAT",
            lambda r: (
                _pct(None if r.csat is None else r.csat / 100)
                + (f" (n={r.csat_responses})" if r.csat_responses else "")
            ),
        ),
        ("historical CLV", lambda r: _num(r.historical_clv)),
    ]
    table.columns[0].no_wrap = True
    for name, fmt in lines:
        table.add_row(name, *(fmt(r) for r in rows))
    console.print(table)
    notes = sorted({f"{r.group}: {n}" for r in rows for n in r.notes})
    for note in notes[:8]:
        console.print(f"  [dim]{note}[/]")


# ------------------------------------------------------------------------------ funnel
def funnel_command(
    window_days: Annotated[int, typer.Option(help="Days a customer has to reach the next stage.")] = 180,
    png: Annotated[
        Path | None, typer.Option("--png", help="Also draw the funnel into this PNG file.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Stage-to-stage conversion, median time in each stage, and the weakest link."""
    from clm.lifecycle.charts import funnel_chart

    report = funnel(engine(), window_days=window_days)
    if png:
        funnel_chart(report, png)
    if json:
        print_json(report.model_dump(mode="json"))
        return
    show_funnel(report)
    if png:
        console.print(f"chart written to {png}")


def show_funnel(report: FunnelReport) -> None:
    table = Table(
        "step",
        "reached",
        "converted",
        "conversion",
        "",
        "median days",
        title=f"{report.model} funnel (within {report.window_days} days)",
    )
    table.columns[0].no_wrap = True
    for s in report.steps:
        weak = report.weakest_link is not None and s.from_stage == report.weakest_link.from_stage
        bar = BAR * round(30 * (s.conversion or 0))
        table.add_row(
            f"{s.from_stage} → {s.to_stage}",
            f"{s.reached:,}",
            f"{s.converted:,}",
            _pct(s.conversion),
            f"[red]{bar}[/]" if weak else bar,
            _num(s.median_days_to_convert, 0),
        )
    console.print(table)
    stays = Table("stage", "名称", "customers now", "entries", "median days in stage", title="stages")
    for st in report.stages:
        stays.add_row(
            st.stage, st.name_zh, f"{st.customers_now:,}", f"{st.entries:,}", _num(st.median_days_in_stage, 0)
        )
    console.print(stays)
    if report.weakest_link:
        w = report.weakest_link
        console.print(
            f"weakest link (薄弱环节): [bold red]{w.from_stage} → {w.to_stage}[/] "
            f"converts {_pct(w.conversion)}"
        )


# ------------------------------------------------------------------------------ cohorts
def cohorts_command(
    months: Annotated[int, typer.Option(help="Months after acquisition to show.")] = 12,
    since: Annotated[
        str | None, typer.Option(help="First cohort month, YYYY-MM-DD (default: last `months`).")
    ] = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Draw the matrix as a heat map into this PNG file.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Cohort retention: acquisition month × months since acquisition (share active / purchasing)."""
    from clm.lifecycle.charts import cohort_heatmap

    report = cohorts(engine(), months=months, since=_day(since, "since") if since else None)
    if png:
        cohort_heatmap(report, png)
    if json:
        print_json(report.model_dump(mode="json"))
        return
    show_cohorts(report)
    if png:
        console.print(f"chart written to {png}")


def show_cohorts(report: CohortReport) -> None:
    table = Table(
        "cohort",
        "customers",
        *(f"M{k}" for k in range(report.months)),
        title="share active (share purchasing)",
    )
    for c in report.cohorts:
        cells = [
            "" if a is None else f"{a:.0%} ({p or 0:.0%})" + ("*" if k == c.partial else "")
            for k, (a, p) in enumerate(zip(c.active, c.purchasing, strict=True))
        ]
        table.add_row(c.cohort, f"{c.customers:,}", *cells)
    console.print(table)
    if any(c.partial is not None for c in report.cohorts):
        console.print("* 本月尚未结束 month still running: the share so far, not a full month")


# ------------------------------------------------------------------------------ retention
@retention_app.command("project")
def project(
    survivors: Annotated[str, typer.Option(help="Survivors per period, comma-separated: 1000,869,743,…")],
    periods: Annotated[int, typer.Option(help="Project this many periods from the start.")] = 12,
    discount_rate: Annotated[
        float, typer.Option(help="Per-period discount rate for the remaining lifetime.")
    ] = 0.1,
    json: JsonOpt = False,
) -> None:
    """Fit the shifted-beta-geometric model to one cohort and project its retention."""
    from clm.lifecycle.retention import parse_survivors, project_retention

    report = project_retention(parse_survivors(survivors), periods, discount_rate)
    if json:
        print_json(report.model_dump(mode="json"))
        return
    show_retention(report)


def show_retention(report: retention.RetentionReport) -> None:
    p, se = report.params, report.standard_errors
    console.print(
        f"sBG fit: α = {p['alpha']:.4f} (se {_num(se['alpha'], 4)}), "
        f"β = {p['beta']:.4f} (se {_num(se['beta'], 4)}), "
        f"log-likelihood {report.loglik:.2f}{'' if report.converged else ' [red](did not converge)[/]'}"
    )
    table = Table("period", "observed", "projected", "survival", "retention rate")
    for row in report.projection:
        table.add_row(
            str(row.period),
            _num(row.observed, 0),
            _num(row.survivors, 1),
            _pct(row.survival),
            _pct(row.retention_rate),
        )
    console.print(table)
    und = report.expected_remaining_periods_undiscounted
    console.print(
        f"a customer still there after the last observed period stays "
        f"{report.expected_remaining_periods:.2f} more periods discounted at {report.discount_rate:.0%} "
        f"({'unbounded' if und is None else f'{und:.2f}'} undiscounted)"
    )
