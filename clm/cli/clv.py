"""`clm clv fit`: fit the CLV models on a transactions file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from clm.cli.output import console, print_json
from clm.cli.segments import refresh_segments

app = typer.Typer(
    help="Predictive customer lifetime value (BG/NBD or Pareto/NBD + Gamma-Gamma).", no_args_is_help=True
)


@app.command()
def fit(
    transactions: Annotated[Path, typer.Option(help="CSV of transactions: one row per purchase.")],
    customer_col: Annotated[str, typer.Option(help="Column with the customer id.")] = "customer_id",
    date_col: Annotated[str, typer.Option(help="Column with the purchase date.")] = "date",
    amount_col: Annotated[str, typer.Option(help="Column with the amount ('' for none).")] = "amount",
    calibration_end: Annotated[str | None, typer.Option(help="Fit on purchases up to this date.")] = None,
    unit: Annotated[str, typer.Option(help="Time unit: day or week.")] = "week",
    model: Annotated[
        str, typer.Option(help="Transaction model: bgnbd, mbgnbd (modified BG/NBD) or pareto.")
    ] = "bgnbd",
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Fit BG/NBD or Pareto/NBD (and Gamma-Gamma on the amounts); print parameters and log-likelihood."""
    from clm.analytics.service import fit_clv, read_transactions

    data = read_transactions(transactions)
    result = fit_clv(
        data,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col or None,
        calibration_end=calibration_end,
        unit=unit,
        model=model,
    )
    if json:
        print_json(result)
        return
    table = Table(
        "parameter",
        "estimate",
        "std. error",
        title=f"{result['model']} on {result['customers']:,} customers ({unit}s)",
    )
    for name, value in result["params"].items():
        table.add_row(name, f"{value:.4f}", f"{result['standard_errors'][name]:.4f}")
    if "spend" in result:
        for name in ("p", "q", "v"):
            table.add_row(
                f"spend {name}",
                f"{result['spend'][name]:.4f}",
                f"{result['spend']['standard_errors'][name]:.4f}",
            )
    console.print(table)
    console.print(f"log-likelihood {result['loglik']:.2f}, converged: {result['converged']}")
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")


@app.command()
def score(
    horizon_days: Annotated[int, typer.Option(help="Look this many days ahead.")] = 365,
    discount_rate: Annotated[float, typer.Option(help="Annual discount rate.")] = 0.10,
    margin: Annotated[float | None, typer.Option(help="Margin ratio (default: the shop's own).")] = None,
    model: Annotated[
        str, typer.Option(help="Transaction model: bgnbd, mbgnbd (modified BG/NBD) or pareto.")
    ] = "bgnbd",
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Fit on the store's orders and write every customer's P(alive), expected purchases and
    spend over the horizon and discounted CLV (table clv_scores)."""
    from clm.analytics.service import score_customers
    from clm.cli.context import engine

    eng = engine()
    result = score_customers(
        eng, horizon_days=horizon_days, annual_discount_rate=discount_rate, margin=margin, model=model
    )
    refresh_segments(eng, {"scores"}, quiet=json)
    if json:
        print_json(result)
        return
    console.print(
        f"scored [bold]{result['customers']:,}[/] customers with {model} + Gamma-Gamma: "
        f"total {horizon_days}-day CLV {result['total_clv']:,.2f} at margin {result['margin']:.1%}"
    )
    if result["p_alive_median"] is None:
        console.print("P(alive) is not defined for any customer (no repeat buyer)")
    else:
        defined = result["p_alive_customers"]
        console.print(
            f"P(alive) for {defined:,} customers (median {result['p_alive_median']:.0%}); "
            f"not defined for the other {result['customers'] - defined:,}"
            + (" (no repeat purchase: BG/NBD says nothing about them)" if model == "bgnbd" else "")
        )
