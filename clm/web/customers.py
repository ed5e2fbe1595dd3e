"""The customers pages: the list (`/customers`: search, filters, sorting, pages, CSV export) and
the 360° view of one person (`/customers/{id}`), from the read models in clm.views, the same that
answer the API's customer view. Email and phone are masked for roles that may not see them;
exports and reveals of contact details are written to the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from clm.auth.service import record_audit
from clm.commerce.service import order_summary
from clm.core.errors import ClmError, NotFound
from clm.core.exports import content_disposition, csv_chunks, export_encoding, media_type, zoned_header
from clm.customers.masking import mask_email, mask_phone
from clm.customers.names import full_name
from clm.events.service import event_counts
from clm.journeys.service import trace
from clm.lifecycle.service import current_model
from clm.loyalty.service import programme
from clm.views.customer_detail import (
    customer_detail,
    customer_events,
    describe,
    event_channels,
    order_page,
)
from clm.views.customer_list import (
    SORTS,
    CustomerFilter,
    ListRow,
    customer_page,
    filter_choices,
    matching_rows,
)
from clm.web.access import Console, page
from clm.web.frame import sees_contact_details
from clm.web.i18n import N_
from clm.web.menu import BY_KEY

router = APIRouter(include_in_schema=False, tags=["console"])

PER_PAGE = 50
EVENTS_PER_PAGE = 20
ORDERS_PER_PAGE = 10
BANDS = {
    "high": N_("High risk"),
    "medium": N_("Medium risk"),
    "low": N_("Low risk"),
    "lost": N_("Already lost"),
}
RFM_NAMES = {  # clm.analytics.rfm.SEGMENTS
    "champions": N_("Champions"),
    "loyal": N_("Loyal"),
    "potential loyalists": N_("Potential loyalists"),
    "new": N_("New"),
    "promising": N_("Promising"),
    "need attention": N_("Need attention"),
    "about to sleep": N_("About to sleep"),
    "can't lose them": N_("Can't lose them"),
    "at risk": N_("At risk"),
    "lost": N_("Lost"),
    "hibernating": N_("Hibernating"),
    "other": N_("Other"),
}
# the churn model's features in words (clm.analytics.churn_store.WORDS), for its reasons
FEATURE_WORDS = {
    "days_since_first_seen": N_("days as a customer"),
    "days_since_last_activity": N_("days since the last activity"),
    "days_since_last_purchase": N_("days since the last purchase"),
    "orders": N_("orders"),
    "refunds": N_("refunded orders"),
    "revenue": N_("revenue to date"),
    "aov": N_("average order value"),
    "purchase_gap_days": N_("usual days between purchases"),
    "orders_90d": N_("orders in the last 90 days"),
    "revenue_365d": N_("revenue in the last 365 days"),
    "categories": N_("product categories bought"),
    "views_30d": N_("page and product views in the last 30 days"),
    "carts_30d": N_("items added to a cart in the last 30 days"),
    "email_opens_30d": N_("emails opened in the last 30 days"),
    "email_clicks_30d": N_("email clicks in the last 30 days"),
    "events_30d": N_("actions in the last 30 days"),
    "inquiries": N_("inquiries, trials and sales calls"),
    "last_nps": N_("the latest NPS answer"),
    "last_csat": N_("the latest CSAT answer"),
    "open_tickets": N_("open support tickets"),
    "overdue_ratio": N_("days since the last purchase ÷ usual gap"),
    "acquisition_channel": N_("acquisition channel"),
}
IDENTITY_KINDS = {
    "email": N_("Email"),
    "phone": N_("Phone"),
    "external_id": N_("External id"),
    "wechat_openid": N_("WeChat OpenID"),
    "wechat_unionid": N_("WeChat UnionID"),
    "wecom_external_userid": N_("WeCom external contact id"),
}
TICKET_STATUSES = {
    "open": N_("Open"),
    "assigned": N_("Assigned"),
    "waiting": N_("Waiting for the customer"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
}
TASK_STATUSES = {"open": N_("Open"), "done": N_("Done"), "cancelled": N_("Cancelled")}
EXPORT_COLUMNS = (
    "id",
    "name",
    "email",
    "phone",
    "external_id",
    "city",
    "acquisition_channel",
    "stage",
    "tier",
    "churn_band",
    "churn_probability",
    "created_at",
)

Text = Annotated[str, Query(max_length=200)]


def list_filter(
    q: Text = "",
    stage: Text = "",
    segment: Text = "",
    tier: Text = "",
    band: Text = "",
    channel: Text = "",
    city: Text = "",
    consent: Text = "",
) -> CustomerFilter:
    return CustomerFilter(
        q=q.strip(),
        stage=stage,
        segment=segment,
        tier=tier,
        band=band,
        channel=channel,
        city=city,
        consent=consent,
    )


@router.get("/customers", response_class=HTMLResponse)
def customers_list(
    console: Annotated[Console, Depends(page("read", "customers"))],
    wanted: Annotated[CustomerFilter, Depends(list_filter)],
    sort: Annotated[str, Query(max_length=20)] = "id",
    p: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    console.crumbs = [(N_("Customers"), None)]
    if sort.lstrip("-") not in SORTS:
        sort = "id"
    found = customer_page(console.engine, wanted, sort, p, PER_PAGE)
    model = current_model(console.engine)
    zh = console.locale.startswith("zh")
    return console.render(
        "customers.html",
        wanted=wanted,
        filters=wanted.as_dict(),
        sort=sort,
        found=found,
        choices=filter_choices(console.engine),
        stage_names={s.key: (s.name_zh if zh else s.name_en) for s in model.stages},
        tier_names={t.name: (t.title_zh if zh else t.title_en) for t in programme(console.engine).tiers},
        bands=BANDS,
        full=sees_contact_details(console),
        section=BY_KEY["customers"],
    )


def _csv_rows(rows: Iterator[ListRow], full: bool) -> Iterator[tuple[Any, ...]]:
    yield (*EXPORT_COLUMNS[:-1], zoned_header(EXPORT_COLUMNS[-1]))
    for r in rows:
        yield (
            r.id,
            full_name(r.first_name, r.last_name),
            r.email if full else mask_email(r.email),
            r.phone if full else mask_phone(r.phone),
            r.external_id,
            r.city,
            r.channel,
            r.stage,
            r.tier,
            r.band,
            "" if r.churn_probability is None else f"{r.churn_probability:.4f}",
            r.created_at,  # the store's wall time, the zone in the header
        )


@router.get("/customers/export.csv")
def customers_export(
    console: Annotated[Console, Depends(page("read", "customers"))],
    wanted: Annotated[CustomerFilter, Depends(list_filter)],
    encoding: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Every customer of the current filter as CSV (UTF-8 with BOM, or `?encoding=gb18030`:
    clm.core.exports); the export is audited first, with the filter and how many customers it held."""
    encoding = export_encoding(encoding)
    assert console.user is not None
    engine = console.engine
    full = sees_contact_details(console)
    total = customer_page(engine, wanted, "id", 1, 1).total
    with engine.begin() as conn:
        record_audit(
            conn,
            console.user.actor,
            "customers.export",
            "customers",
            None,
            {"filter": wanted.as_dict(), "rows": total, "contact_details": "full" if full else "masked"},
        )
    return StreamingResponse(
        csv_chunks(_csv_rows(matching_rows(engine, wanted), full), encoding),
        media_type=media_type(encoding),
        headers={
            "Content-Disposition": content_disposition("customers.csv"),
            "Cache-Control": "no-store",
        },
    )


def _detail_context(console: Console, customer_id: int) -> dict[str, Any] | None:
    try:
        detail = customer_detail(console.engine, customer_id)
    except (NotFound, ClmError):
        return None
    model = current_model(console.engine)
    zh = console.locale.startswith("zh")
    return {
        "detail": detail,
        "customer": detail.view.profile,
        "figures": describe(detail),
        "journeys": trace(console.engine, detail.view.profile.id),
        "stage_names": {s.key: (s.name_zh if zh else s.name_en) for s in model.stages},
        "bands": BANDS,
        "rfm_names": RFM_NAMES,
        "feature_words": FEATURE_WORDS,
        "ticket_statuses": TICKET_STATUSES,
        "task_statuses": TASK_STATUSES,
        "identity_kinds": IDENTITY_KINDS,
        "may_reveal": sees_contact_details(console),
    }


def _orders_context(console: Console, customer_id: int, total: int, op: int) -> dict[str, Any]:
    return {
        "order_page": order_page(console.engine, customer_id, total, op, ORDERS_PER_PAGE),
        "customer_id": customer_id,
    }


def _events_context(console: Console, customer_id: int, type: str, channel: str, p: int) -> dict[str, Any]:
    found = customer_events(
        console.engine,
        customer_id,
        type=type,
        channel=channel,
        limit=EVENTS_PER_PAGE + 1,
        offset=(p - 1) * EVENTS_PER_PAGE,
    )
    return {
        "events": found[:EVENTS_PER_PAGE],
        "more": len(found) > EVENTS_PER_PAGE,
        "ev_type": type,
        "ev_channel": channel,
        "ev_page": p,
        "ev_channels": event_channels(console.engine, customer_id),
        "ev_types": list(event_counts(console.engine, customer_id)),
    }


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_360(
    console: Annotated[Console, Depends(page("read", "customers"))],
    customer_id: int,
    type: Text = "",
    channel: Text = "",
    p: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    op: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    context = _detail_context(console, customer_id)
    if context is None:
        console.crumbs = [(N_("Customers"), "/customers"), (N_("Not found"), None)]
        return console.render("not_found.html", 404)
    customer = context["customer"]
    if customer.id != customer_id:  # merged into another profile: show the survivor
        return RedirectResponse(f"/customers/{customer.id}", status_code=303)
    console.crumbs = [(N_("Customers"), "/customers"), (str(customer.id), None)]
    return console.render(
        "customer.html",
        **context,
        **_events_context(console, customer.id, type, channel, p),
        **_orders_context(console, customer.id, context["detail"].view.orders.orders, op),
        section=BY_KEY["customers"],
    )


@router.get("/customers/{customer_id}/orders", response_class=HTMLResponse)
def customer_orders_part(
    console: Annotated[Console, Depends(page("read", "customers"))],
    customer_id: int,
    op: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The 360° page's orders alone, one page of them (htmx swaps it in when the page changes)."""
    total = order_summary(console.engine, customer_id).orders
    return console.render("_customer_orders.html", **_orders_context(console, customer_id, total, op))


@router.get("/customers/{customer_id}/events", response_class=HTMLResponse)
def customer_events_part(
    console: Annotated[Console, Depends(page("read", "customers"))],
    customer_id: int,
    type: Text = "",
    channel: Text = "",
    p: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The 360° page's event timeline alone (htmx swaps it in when a filter or page changes)."""
    return console.render(
        "_customer_events.html",
        customer_id=customer_id,
        **_events_context(console, customer_id, type, channel, p),
    )


@router.post("/customers/{customer_id}/reveal", response_class=HTMLResponse)
async def customer_reveal(
    console: Annotated[Console, Depends(page("write", "customers"))], customer_id: int
) -> Response:
    """Email, phone and identities in full, for roles that may see them; every reveal is
    recorded in the audit log (who, whose, when)."""
    assert console.user is not None
    engine, actor = console.engine, console.user.actor
    context = await run_in_threadpool(_detail_context, console, customer_id)
    if context is None:
        console.crumbs = [(N_("Customers"), "/customers"), (N_("Not found"), None)]
        return console.render("not_found.html", 404)
    customer = context["customer"]

    def audit() -> None:
        with engine.begin() as conn:
            record_audit(
                conn,
                actor,
                "customer.reveal",
                "customer",
                str(customer.id),
                {"fields": ["email", "phone", "identities"]},
            )

    await run_in_threadpool(audit)
    return console.render(
        "_customer_contact.html",
        customer=customer,
        revealed=True,
        may_reveal=True,
        identity_kinds=IDENTITY_KINDS,
    )
