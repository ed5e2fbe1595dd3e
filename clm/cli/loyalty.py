"""`clm loyalty balance|history|post|reverse|accrue|evaluate|programme|use`: the points ledger and tiers."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table

from clm.cli.context import customer_id, engine
from clm.cli.output import console, err_console, local, local_day, print_json, times_in
from clm.loyalty.service import (
    MANUAL_KINDS,
    account,
    accrue,
    evaluate_tiers,
    history,
    post_points,
    programme,
    reverse_posting,
    tiers_overview,
    use_programme,
)

app = typer.Typer(
    help="Loyalty programme: points balances and history, postings, tiers.", no_args_is_help=True
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape).")]
Who = Annotated[str, typer.Argument(help="The customer: CLM id, email or external id.")]


@app.command()
def balance(who: Who, json: Json = False) -> None:
    """A customer's points (after expiry), what expires within 30 days, tier, perks and the next tier."""
    me = account(engine(), customer_id(engine(), who))
    if json:
        print_json(me)
        return
    console.print(f"customer {me.customer_id}: [bold]{me.balance:,}[/bold] points", highlight=False)
    if me.expiring_soon:
        console.print(f"  {me.expiring_soon:,} of them expire within 30 days unless spent")
    console.print(
        f"  tier [bold]{me.tier}[/bold] ({me.tier_title['en']} / {me.tier_title['zh']})", highlight=False
    )
    perks = ", ".join(f"{k}={v}" for k, v in me.perks.items()) or "none"
    console.print(f"  perks: {perks}", highlight=False)
    console.print(f"  {me.basis} over the window: {me.basis_value:,.2f}", highlight=False)
    if me.next_tier:
        console.print(f"  {me.to_next_tier:,.2f} more {me.basis} to reach {me.next_tier}", highlight=False)
    for change in me.tier_history[:5]:
        console.print(
            f"  {local_day(change.changed_at)} {change.from_tier} → {change.to_tier} ({change.direction})",
            highlight=False,
        )


@app.command("history")
def history_command(
    who: Who,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    json: Json = False,
) -> None:
    """A customer's postings, newest first."""
    eng = engine()
    rows = history(eng, customer_id(eng, who), limit)
    if json:
        print_json(rows)
        return
    table = Table(
        "id",
        "when",
        "kind",
        "points",
        "reason",
        "reference",
        title=f"ledger of customer {who}",
        caption=times_in(),
    )
    for p in rows:
        table.add_row(str(p.id), f"{local(p.posted_at)}", p.kind, f"{p.points:+,}", p.reason, p.reference)
    console.print(table)


@app.command()
def post(
    who: Who,
    kind: Annotated[str, typer.Argument(help=f"One of {', '.join(MANUAL_KINDS)}.")],
    points: Annotated[int, typer.Argument(help="Points (positive; signed for adjust).")],
    reason: Annotated[str, typer.Option(help="Why (shown in the history).")] = "manual posting",
    reference: Annotated[
        str | None,
        typer.Option(help="Idempotency key; the same key again posts nothing. Default: a new one."),
    ] = None,
    json: Json = False,
) -> None:
    """Earn, redeem or adjust points by hand; a redemption above the balance is refused."""
    eng = engine()
    posting, created = post_points(
        eng, customer_id(eng, who), kind, points, reason, reference or f"admin:{uuid.uuid4()}", actor="cli"
    )
    left = account(eng, posting.customer_id).balance
    if json:
        print_json({"posting": posting, "created": created, "balance": left})
        return
    verb = "posted" if created else "already posted (same reference)"
    console.print(f"{verb}: {posting.kind} {posting.points:+,} → balance {left:,}", highlight=False)


@app.command()
def reverse(
    posting_id: Annotated[int, typer.Argument(help="The posting to take back (see `clm loyalty history`).")],
    reason: Annotated[str, typer.Option()] = "",
) -> None:
    """Take back an earn (never below zero) or give back a redemption."""
    posting, created = reverse_posting(engine(), posting_id, reason, actor="cli")
    console.print(
        f"{'reversed' if created else 'already reversed'}: {posting.points:+,} points", highlight=False
    )


@app.command("accrue")
def accrue_command(json: Json = False) -> None:
    """Post points for completed orders and earning events, reverse refunds, expire due points."""
    with err_console.status("bringing the ledger up to date …"):
        done = accrue(engine())
    if json:
        print_json(done)
        return
    console.print(
        f"{done.earn_postings:,} earn postings ({done.earned:,} points), {done.reversals:,} reversals "
        f"({done.reversed:,} points taken back), {done.expired:,} lots expired",
        highlight=False,
    )


@app.command()
def evaluate(json: Json = False) -> None:
    """Move every customer to the tier their rolling spend (or points) earns; changes are recorded."""
    eng = engine()
    with err_console.status("evaluating tiers …"):
        run = evaluate_tiers(eng)
    counts = tiers_overview(eng)
    if json:
        print_json(
            {
                "upgrades": run.upgrades,
                "downgrades": run.downgrades,
                "moves": [{"from": a, "to": b, "customers": n} for (a, b), n in sorted(run.moves.items())],
                "tiers": counts,
            }
        )
        return
    console.print(f"{run.upgrades:,} upgrades, {run.downgrades:,} downgrades", highlight=False)
    total = max(1, sum(counts.values()))
    table = Table("tier", "customers", "share", "", title="customers per tier")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}", f"{n / total:.1%}", "█" * round(40 * n / total))
    console.print(table)


@app.command("programme")
def programme_command(json: Json = False) -> None:
    """The programme in force: earn rules, expiry, tiers and perks."""
    p = programme(engine())
    if json:
        print_json(p.as_dict())
        return
    expiry = f"{p.expiry_days} days after they are earned" if p.expiry_days else "never"
    console.print(f"[bold]{p.title_en}[/bold] ({p.name}); points expire {expiry}")
    rules = Table("earn rule", "from", "points", "only", title="earning")
    for r in p.earn:
        if r.on == "order":
            only = ", ".join(
                f"{k}={getattr(r, k)}"
                for k in ("category", "campaign", "channel", "starts", "ends")
                if getattr(r, k)
            )
            rules.add_row(r.name, "completed orders", f"{r.points_per_unit:g} per currency unit", only)
        else:
            rules.add_row(r.name, f"{r.event} events", f"{r.points}", "once per customer" if r.once else "")
    console.print(rules)
    tiers = Table("tier", f"min {p.basis} in {p.window_days} days", "perks", title="tiers")
    for t in p.tiers:
        tiers.add_row(
            f"{t.name} ({t.title_zh})", f"{t.min:,.0f}", ", ".join(f"{k}={v}" for k, v in t.perks.items())
        )
    console.print(tiers)


@app.command()
def use(source: Annotated[str, typer.Argument(help="`default` or a programme file (YAML/JSON).")]) -> None:
    """Select the loyalty programme every accrual and tier evaluation uses from now on."""
    chosen = use_programme(engine(), source)
    console.print(
        f"loyalty programme {chosen.name!r} selected "
        f"({len(chosen.earn)} earn rules, {len(chosen.tiers)} tiers)"
    )
