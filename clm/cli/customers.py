"""`clm customers show|find|duplicates|merge`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from clm.cli.context import engine
from clm.cli.output import console, local, local_day, print_json, times_in
from clm.core.errors import InvalidInput
from clm.core.timeutil import show_time
from clm.customers.identities import normalize_identity
from clm.customers.merge import merge_customers, suspected_duplicates
from clm.customers.names import full_name
from clm.customers.schemas import PROFILE_FIELDS
from clm.customers.service import find_customers
from clm.segments.service import refresh_customers
from clm.views.customer import CustomerView, customer_view

app = typer.Typer(help="Look at and tidy customer profiles.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape).")]


@app.command()
def show(
    customer_id: Annotated[int, typer.Argument(help="CLM customer id.")],
    events: Annotated[int, typer.Option(help="How many recent events to list.")] = 20,
    json: JsonOpt = False,
) -> None:
    """The unified profile of one customer with orders and recent events."""
    view = customer_view(engine(), customer_id, events)
    if json:
        print_json(view.model_dump(mode="json"))
    else:
        _render(view)


def _render(view: CustomerView) -> None:
    p = view.profile
    title = f"customer {p.id}" + (
        f" (you asked for {view.requested_id}, merged into it)" if p.id != view.requested_id else ""
    )
    fields = Table.grid(padding=(0, 2))
    for name in PROFILE_FIELDS:
        value = getattr(p, name)
        if value is not None:
            shown = show_time(value) if isinstance(value, datetime) else str(value)  # the store's zone, named
            fields.add_row(name.replace("_", " "), shown)
    for key, value in sorted(p.attributes.items()):
        fields.add_row(f"· {key}", str(value))
    fields.add_row("identities", ", ".join(f"{i.kind}={i.value}" for i in p.identities))
    if p.consents:
        fields.add_row(
            "consent", ", ".join(f"{c.channel}: {'yes' if c.granted else 'no'}" for c in p.consents)
        )
    if p.merged_from:
        fields.add_row("merged from", ", ".join(map(str, p.merged_from)))
    o = view.orders
    fields.add_row(
        "orders",
        f"{o.orders} ({o.completed} completed, {o.refunded} refunded), revenue {o.revenue:,.2f}",
    )
    fields.add_row("activity", ", ".join(f"{k} {v}" for k, v in view.event_counts.items()) or "none")
    st = view.stage
    fields.add_row(
        "lifecycle stage",
        f"{st.name_en} {st.name_zh} since {local_day(st.since)} ({st.model})"
        if st.stage and st.since
        else f"not assigned yet ({st.model}; run `clm stages run`)",
    )
    fields.add_row("segments", ", ".join(m.segment for m in view.segments) or "none")
    fields.add_row("loyalty", f"{view.loyalty.balance:,} points, tier {view.loyalty.tier}")
    if view.open_tickets:
        fields.add_row(
            "open tickets", ", ".join(f"#{t.id} {t.subject} ({t.status})" for t in view.open_tickets)
        )
    if view.open_tasks:
        fields.add_row(
            "follow-ups", ", ".join(f"{t.title} (due {local_day(t.due_at)})" for t in view.open_tasks)
        )
    console.print(Panel(fields, title=title, expand=False))
    if st.history:
        history = Table("when", "from", "to", "because", title="stage history", caption=times_in())
        for change in st.history:
            history.add_row(
                f"{local_day(change.changed_at)}", change.from_stage or "(new)", change.to_stage, change.rule
            )
        console.print(history)
    if view.timeline:
        table = Table("when", "event", "channel", "details", title="recent events", caption=times_in())
        for e in view.timeline:
            details = ", ".join(f"{k}={v}" for k, v in list(e.properties.items())[:4])
            table.add_row(f"{local(e.occurred_at)}", e.type, e.channel, details[:80])
        console.print(table)


@app.command()
def find(
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number (any format).")] = None,
    external_id: Annotated[str | None, typer.Option(help="Your system's id.")] = None,
    anonymous_id: Annotated[str | None, typer.Option(help="Device / cookie id.")] = None,
    wechat_openid: Annotated[str | None, typer.Option(help="WeChat OpenID as appid:openid.")] = None,
    wechat_unionid: Annotated[str | None, typer.Option(help="WeChat UnionID.")] = None,
) -> None:
    """Find profiles by identity."""
    given = {
        "email": email,
        "phone": phone,
        "external_id": external_id,
        "anonymous_id": anonymous_id,
        "wechat_openid": wechat_openid,
        "wechat_unionid": wechat_unionid,
    }
    identities = {k: normalize_identity(k, v) for k, v in given.items() if v}
    if not identities:
        raise InvalidInput(
            "give at least one of --email, --phone, --external-id, --anonymous-id, --wechat-openid,"
            " --wechat-unionid"
        )
    table = Table("id", "name", "email", "phone", "external id")
    for c in find_customers(engine(), identities):
        table.add_row(
            str(c.id),
            full_name(c.first_name, c.last_name),
            c.email or "",
            c.phone or "",
            c.external_id or "",
        )
    console.print(table)


@app.command()
def duplicates(
    limit: Annotated[int, typer.Option(help="At most this many pairs.")] = 50, json: JsonOpt = False
) -> None:
    """Pairs of profiles that look like the same person (review, then `clm customers merge`)."""
    pairs = suspected_duplicates(engine(), limit)
    if json:
        print_json(pairs)
        return
    table = Table("customer", "looks like", "name", "why", title="suspected duplicates")
    for pair in pairs:
        table.add_row(str(pair.customer_id), str(pair.other_id), pair.name, pair.reason)
    console.print(table)
    if not pairs:
        console.print("no suspected duplicates")


@app.command()
def merge(
    survivor: Annotated[int, typer.Argument(help="The profile that stays.")],
    others: Annotated[list[int], typer.Argument(help="Profiles to fold into it.")],
    reason: Annotated[str, typer.Option(help="Why, for the merge record.")] = "manual merge",
) -> None:
    """Merge profiles: their events, orders, identities and consents move to the survivor."""
    eng = engine()
    kept = merge_customers(eng, survivor, others, reason=reason, actor="cli")
    refresh_customers(eng, [kept])
    console.print(f"merged {', '.join(map(str, others))} into customer {kept}")
