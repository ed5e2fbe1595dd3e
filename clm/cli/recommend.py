"""`clm recommend CUSTOMER | evaluate | build | rules`: cross-sell and upsell recommendations."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from clm.cli.context import customer_id, engine
from clm.cli.output import console, err_console, print_json
from clm.core.errors import InvalidInput

ACTIONS = ("evaluate", "build", "rules")


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_command)


def recommend_command(
    target: Annotated[
        str,
        typer.Argument(
            help="A customer (id, email or external id) to recommend to; or `evaluate` (hit-rate@n on "
            "each customer's held-out last order against popularity), `build` (recount the rules), "
            "`rules` (list the strongest rules)."
        ),
    ],
    n: Annotated[
        int, typer.Option("--n", min=1, max=100, help="How many products (or the n of hit-rate@n).")
    ] = 10,
    sku: Annotated[str | None, typer.Option(help="With `rules`: only rules from this product.")] = None,
    max_customers: Annotated[int, typer.Option(help="With `evaluate`: sample at most this many.")] = 50_000,
    json: Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape).")] = False,
) -> None:
    """Products for a customer with the reason for each, or evaluate / build / list the rules."""
    from clm.analytics.recommend_store import (
        build_recommendations,
        evaluate_recommendations,
        recommend,
        rules,
    )

    eng = engine()
    if target == "evaluate":
        with err_console.status("evaluating on each customer's last order …"):
            result = evaluate_recommendations(eng, n, max_customers=max_customers)
        if json:
            print_json(result)
            return
        table = Table(
            "recommender", f"hit-rate@{n}", title=f"held-out last orders of {result['customers']:,} customers"
        )
        table.add_row(f"association rules ({result['rules']} rules) + upsell", f"{result['hit_rate']:.1%}")
        table.add_row("most popular products", f"{result['popularity_hit_rate']:.1%}")
        console.print(table)
        if result["lift_over_popularity"]:
            console.print(f"{result['lift_over_popularity']:.2f}× the popularity baseline")
        return
    if target == "build":
        built = build_recommendations(eng)
        if json:
            print_json(built)
        else:
            console.print(
                f"{built['rules']:,} rules over {built['products']:,} products "
                f"from {built['customers']:,} buyers"
            )
        return
    if target == "rules":
        found = rules(eng, sku, n)
        if json:
            print_json(found)
            return
        table = Table(
            "if bought", "then", "together", "support", "confidence", "lift", title="association rules"
        )
        for r in found:
            table.add_row(
                r["antecedent"],
                r["consequent"],
                f"{r['together']:,}",
                f"{r['support']:.2%}",
                f"{r['confidence']:.1%}",
                f"{r['lift']:.2f}",
            )
        console.print(table)
        return
    if not target.strip():
        raise InvalidInput("name a customer, or evaluate / build / rules", "target")
    who = customer_id(eng, target)
    items = recommend(eng, who, n)
    if json:
        print_json(items)
        return
    table = Table("#", "product", "category", "price", "kind", "why", title=f"for customer {who}")
    for i, item in enumerate(items, 1):
        table.add_row(
            str(i),
            f"{item.name} ({item.sku})",
            item.category or "",
            f"{item.price:,.0f}",
            item.kind,
            item.reason,
        )
    console.print(table)
