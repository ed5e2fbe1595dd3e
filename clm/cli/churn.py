"""`clm churn train|score|at-risk|card`: churn early warning from the store or a customer table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from clm.cli.context import engine
from clm.cli.output import console, print_json
from clm.cli.segments import refresh_segments
from clm.core.errors import InvalidInput

app = typer.Typer(
    help="Churn early warning (流失预警): risk, reasons and the at-risk list.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape).")]
TableOpt = Annotated[
    Path | None, typer.Option("--table", help="A customer table (CSV/TSV/JSONL, one row per customer).")
]
IdOpt = Annotated[str | None, typer.Option("--id-col", help="The table's customer id column.")]


def _metrics_table(card: dict[str, Any]) -> Table:
    table = Table("score", "AUC", "precision top 10%", "lift", "Brier", title="held-out evaluation")
    metrics = card["metrics"]

    def add(name: str, m: dict[str, Any]) -> None:
        cells = [m.get(k) for k in ("auc", "precision_top_decile", "lift_top_decile", "brier")]
        table.add_row(name, *("-" if c is None else f"{c:.3f}" for c in cells))

    for name, m in metrics.items():
        if name == "best_single_column":
            table.add_row(f"best single column ({m['column']})", f"{m['auc']:.3f}", "-", "-", "-")
        elif name not in ("buyers_only", "repeat_buyers"):
            add(name, m)
    for name, m in metrics.get("buyers_only", {}).items():
        add(f"{name} (buyers only)", m)
    for name, m in metrics.get("repeat_buyers", {}).items():  # where P(alive) is defined
        add(f"{name} (repeat buyers)", m)
    return table


@app.command()
def train(
    table: TableOpt = None,
    label: Annotated[str | None, typer.Option(help="The table's churn label column (1/0, yes/no).")] = None,
    id_col: IdOpt = None,
    horizon: Annotated[int, typer.Option(help="Days without activity that count as churn (store).")] = 90,
    active_within: Annotated[
        int, typer.Option(help="Only customers active this many days before a cut-off (store).")
    ] = 365,
    card: Annotated[Path | None, typer.Option(help="Also write the model card (Markdown) here.")] = None,
    json: JsonOpt = False,
) -> None:
    """Train the churn model with a time-based split (store) or a held-out quarter (table),
    compare it with the baselines, and save it with its model card."""
    from clm.analytics.service import card_markdown, read_table, train_store_model, train_table_model

    eng = engine()
    rejected = 0
    if table is not None:
        if not label:
            raise InvalidInput("give the churn label column of the table with --label", "label")
        trained = train_table_model(eng, read_table(table), label=label, id_col=id_col, name=table.name)
        result = trained.trained
        rejected = len(trained.rejections)
        if rejected and not json:
            shown = Table(
                "line", "reason", title="rejected rows (first 20)" if rejected > 20 else "rejected rows"
            )
            for r in trained.rejections[:20]:
                shown.add_row(str(r.line), r.reason)
            console.print(shown)
    else:
        result = train_store_model(eng, horizon_days=horizon, active_within_days=active_within)
    if card is not None:
        card.write_text(card_markdown(result.card), encoding="utf-8")
    if json:
        print_json({"model_id": result.model_id, "card": result.card})
    else:
        windows = result.card["windows"]
        console.print(
            f"churn model #{result.model_id} trained on {result.card['source']}: "
            f"{windows['final'].get('examples', windows['final'].get('rows'))} examples; "
            f"label: {result.card['label']}"
        )
        console.print(_metrics_table(result.card))
        for warning in result.card.get("warnings", []):
            console.print(f"[yellow]warning:[/] {warning}")
        console.print(
            f"model card: [bold]clm churn card{' --table' if table else ''}[/]"
            + (f" (also written to {card})" if card else "")
        )
        console.print("next: [bold]clm churn score[/]" + (" --table FILE" if table else ""))
    if rejected:
        raise typer.Exit(1)


@app.command()
def score(
    table: TableOpt = None,
    id_col: IdOpt = None,
    out: Annotated[Path | None, typer.Option(help="Where to write a table's scores (CSV).")] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="The CSV's encoding: utf-8-sig, gb18030 or utf-8 (default: $CLM_EXPORT_ENCODING)."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Score every recently active customer of the store (table churn_scores) or every row of a
    customer table (written to a CSV that Excel opens with Chinese) with the newest model for that
    source."""
    from clm.analytics.service import read_table, score_store, score_table
    from clm.core.exports import export_encoding, write_csv

    encoding = export_encoding(encoding)  # a name CLM cannot write is refused before any work
    eng = engine()
    if table is not None:
        scores = score_table(eng, read_table(table), id_col=id_col)
        target = out or table.with_name(f"{table.stem}.churn-scores.csv")
        write_csv(target, [list(scores.columns), *scores.itertuples(index=False, name=None)], encoding)
        counts = scores["band"].value_counts().to_dict()
        if json:
            print_json({"rows": len(scores), "bands": counts, "file": str(target)})
            return
        console.print(f"scored {len(scores):,} rows: {counts}; written to [bold]{target}[/]")
        return
    from clm.lifecycle.service import lapsed_rule

    result = score_store(eng, lapsed_rule=lapsed_rule(eng))
    refresh_segments(eng, {"scores"}, quiet=json)
    if json:
        print_json(result)
        return
    console.print(f"scored {result['customers']:,} customers as of {result['as_of'][:10]}: {result['bands']}")
    console.print("see who is at risk: [bold]clm churn at-risk[/]")


def _risk_table(risks: list[Any], title: str) -> Table:
    table = Table("customer", "name", "risk", "band", "CLV", "value at risk", "why", title=title)
    for r in risks:
        table.add_row(
            str(r.customer_id),
            r.name or r.email or "",
            f"{r.probability:.0%}",
            r.band,
            "-" if r.clv is None else f"{r.clv:,.0f}",
            "-" if r.value_at_risk is None else f"{r.value_at_risk:,.0f}",
            "\n".join(x["text"] for x in r.reasons),
        )
    return table


@app.command("at-risk")
def at_risk_command(
    top: Annotated[int, typer.Option(min=1, max=100_000, help="How many customers at risk.")] = 20,
    band: Annotated[str | None, typer.Option(help="Only this band: high, medium or low.")] = None,
    by: Annotated[
        str, typer.Option(help="Order by value at risk (risk x CLV, then risk), or by risk.")
    ] = "value",
    unreachable: Annotated[
        bool, typer.Option("--unreachable", help="Also customers no message can reach (no consent).")
    ] = False,
    lost: Annotated[
        int, typer.Option(min=0, max=100_000, help="How many already-lost customers to list too.")
    ] = 5,
    json: JsonOpt = False,
) -> None:
    """Customers at risk of churning (still active, reachable), the most value at risk first,
    with the reasons in words; then those already lost by the stage model's threshold."""
    from clm.analytics.service import already_lost, at_risk, risk_summary

    eng = engine()
    risks = at_risk(eng, top=top, band=band, by=by, reachable_only=not unreachable)
    gone = already_lost(eng, top=lost, by=by) if lost else []
    summary = risk_summary(eng)
    if json:
        print_json(
            {
                "summary": summary,
                "at_risk": [r.as_dict() for r in risks],
                "lost": [r.as_dict() for r in gone],
            }
        )
        return
    if not summary["customers"]:
        console.print("no churn scores yet: run [bold]clm churn train[/] and [bold]clm churn score[/]")
        return
    shares = summary["bands"]
    thresholds = summary["thresholds"]
    console.print(
        f"{summary['customers']:,} customers scored at {str(summary['scored_at'])[:16]}: "
        + ", ".join(
            f"{name} (≥ {thresholds[name]:.0%}) {shares[name]['customers']:,} ({shares[name]['share']:.0%})"
            if thresholds.get(name)
            else f"{name} {shares[name]['customers']:,} ({shares[name]['share']:.0%})"
            for name in ("high", "medium", "low")
        )
        + f"; already lost {shares['lost']['customers']:,} ({shares['lost']['share']:.0%})"
    )
    order = "value at risk" if by == "value" else "risk"
    who = "" if unreachable else f" reachable ({summary['at_risk_reachable']:,} of the at-risk)"
    console.print(_risk_table(risks, f"top {len(risks)} customers at risk{who}, by {order}"))
    if gone:
        console.print(
            _risk_table(
                gone,
                f"already lost (past the stage model's lapse threshold): top {len(gone)} of "
                f"{shares['lost']['customers']:,}, for win-back",
            )
        )


@app.command()
def card(
    table: Annotated[bool, typer.Option("--table", help="The newest table-trained model's card.")] = False,
    json: JsonOpt = False,
) -> None:
    """Print the model card of the newest churn model (data window, features, metrics)."""
    from clm.analytics.service import card_markdown, load_model

    _, _, model_card = load_model(engine(), "table" if table else "store")
    if json:
        print_json(model_card)
    else:
        console.print(card_markdown(model_card), markup=False, highlight=False)
