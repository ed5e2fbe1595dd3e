"""The campaign pages (`/campaigns`): every journey and broadcast with its ROI, and one page each
with what its messages did, conversions, attributed revenue (the rule stated), cost, ROI, the
incremental lift and ROI against the holdout with intervals, A/B/n results and a chart over time;
every table downloads as CSV. The figures come from `clm.journeys.campaigns`, which takes ROI from
the same `campaign_roi` as `GET /api/v1/campaigns/roi` and `clm campaigns roi`, and experiments
from the same `experiment_report` as `clm experiments report`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from clm.core.errors import NotFound
from clm.core.exports import content_disposition, csv_bytes, export_encoding, media_type
from clm.journeys.campaigns import CampaignReport, CampaignRow, campaign_report, list_campaigns
from clm.web.access import Console, page
from clm.web.i18n import N_

router = APIRouter(include_in_schema=False, tags=["console"])
TABLES = ("summary", "incremental", "experiments", "days")
TRIGGERS = {
    "event": N_("Event"),
    "condition": N_("Condition"),
    "date": N_("Date"),
    "broadcast": N_("Broadcast"),
}


def _num(value: float | None, digits: int | None = None) -> Any:
    """A figure for the CSV: in full (Python's shortest exact form, as the API's JSON has it),
    or rounded to `digits` for money computed here."""
    if value is None:
        return ""
    return value if digits is None else round(value, digits)


def list_rows(rows: list[CampaignRow]) -> list[list[Any]]:
    head = [
        "campaign",
        "title",
        "status",
        "trigger",
        "sent",
        "customers",
        "holdout",
        "cost",
        "attributed_orders",
        "attributed_revenue",
        "roi",
        "incremental_revenue",
        "incremental_roi",
    ]
    return [head] + [
        [
            r.campaign,
            r.title,
            r.status,
            r.trigger,
            r.sent,
            r.roi.customers,
            r.roi.holdout,
            r.roi.cost,
            r.roi.attributed_orders,
            r.roi.revenue,
            _num(r.roi.roi),
            _num(r.roi.incremental_revenue),
            _num(r.roi.incremental_roi),
        ]
        for r in rows
    ]


def report_rows(report: CampaignReport, table: str) -> list[list[Any]]:
    """One table of the campaign page as CSV rows (a header first)."""
    if table == "summary":
        d, roi = report.delivery, report.roi
        figures = [
            ("entered", report.entered),
            ("sent", d.sent),
            ("delivered", d.delivered),
            ("opened", d.opened),
            ("clicked", d.clicked),
            ("unsubscribed", d.unsubscribed),
            ("bounced", d.bounced),
            ("failed", d.failed),
            ("held", d.held),
            ("not_sent", d.not_sent),
            ("converted", report.converted),
            ("goal_event", report.goal or ""),
            ("window_days", report.window_days),
            ("attributed_orders", roi.attributed_orders),
            ("attributed_revenue", roi.revenue),
            ("cost", roi.cost),
            ("roi", _num(roi.roi)),
            ("attribution_rule", report.attribution_rule),
        ]
        return [["figure", "value"], *([k, v] for k, v in figures)]
    if table == "incremental":
        i = report.incremental
        head = ["group", "customers", "conversions", "conversion_rate", "revenue_per_customer"]
        if i is None:
            return [head]
        return [
            head,
            [
                "treated",
                i.treated,
                i.treated_conversions,
                _num(i.treated_rate),
                _num(i.revenue_per_treated, 2),
            ],
            [
                "holdout",
                i.holdout,
                i.holdout_conversions,
                _num(i.holdout_rate),
                _num(i.revenue_per_holdout, 2),
            ],
            ["lift (treated - holdout)", "", "", _num(i.lift), ""],
            ["lift 95% CI low", "", "", _num(i.lift_low), ""],
            ["lift 95% CI high", "", "", _num(i.lift_high), ""],
            ["p_value", "", "", _num(i.p_value), ""],
            ["incremental_revenue", "", "", "", _num(i.incremental_revenue, 2)],
            ["incremental_revenue 95% CI low", "", "", "", _num(i.incremental_revenue_low, 2)],
            ["incremental_revenue 95% CI high", "", "", "", _num(i.incremental_revenue_high, 2)],
            ["incremental_roi", "", "", "", _num(i.incremental_roi)],
            ["incremental_roi 95% CI low", "", "", "", _num(i.incremental_roi_low)],
            ["incremental_roi 95% CI high", "", "", "", _num(i.incremental_roi_high)],
        ]
    if table == "experiments":
        out: list[list[Any]] = [
            [
                "experiment",
                "arm",
                "customers",
                "conversions",
                "conversion_rate",
                "control",
                "lift",
                "ci_low",
                "ci_high",
                "p_value",
                "significant",
                "small_sample",
            ]
        ]
        for e in report.experiments:
            by_arm = {c.arm: c for c in e.comparisons}
            for a in e.arms:
                c = by_arm.get(a.name)
                out.append(
                    [e.experiment, a.name, a.customers, a.conversions, _num(a.rate), e.control or ""]
                    + (
                        [
                            _num(c.lift),
                            _num(c.ci_low),
                            _num(c.ci_high),
                            _num(c.p_value),
                            c.significant,
                            c.small_sample,
                        ]
                        if c
                        else ["", "", "", "", "", ""]
                    )
                )
        return out
    if table == "days":
        return [["day", "entered", "sent", "opened", "clicked", "converted"]] + [
            [d.day.isoformat(), d.entered, d.sent, d.opened, d.clicked, d.converted] for d in report.days
        ]
    raise NotFound(f"no table {table!r}; tables: {', '.join(TABLES)}")


def _csv(rows: list[list[Any]], filename: str, encoding: str | None) -> Response:
    """Rows as a CSV download that Excel opens with Chinese intact (clm.core.exports: UTF-8 with a
    byte-order mark, or `?encoding=gb18030`)."""
    encoding = export_encoding(encoding)
    return Response(
        csv_bytes(rows, encoding),
        media_type=media_type(encoding),
        headers={"Content-Disposition": content_disposition(filename), "Cache-Control": "no-store"},
    )


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns_list(console: Annotated[Console, Depends(page("read", "campaigns"))]) -> Response:
    console.crumbs = [(N_("Campaigns"), None)]
    rows = await run_in_threadpool(list_campaigns, console.engine)
    return console.render("campaigns.html", rows=rows, triggers=TRIGGERS)


@router.get("/campaigns.csv")
async def campaigns_csv(
    console: Annotated[Console, Depends(page("read", "campaigns"))],
    encoding: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    rows = await run_in_threadpool(list_campaigns, console.engine)
    return _csv(list_rows(rows), "clm-campaigns.csv", encoding)


@router.get("/campaigns/{name}", response_class=HTMLResponse)
async def campaign_page(
    console: Annotated[Console, Depends(page("read", "campaigns"))], name: str
) -> Response:
    console.crumbs = [(N_("Campaigns"), "/campaigns")]  # the campaign's name is the heading
    try:
        report = await run_in_threadpool(campaign_report, console.engine, name)
    except NotFound:
        return console.render("not_found.html", 404)
    chart = {
        "days": [d.day.isoformat() for d in report.days],
        "series": {
            k: [getattr(d, k) for d in report.days]
            for k in ("entered", "sent", "opened", "clicked", "converted")
        },
    }
    return console.render("campaign.html", r=report, chart=chart, triggers=TRIGGERS, tables=TABLES)


@router.get("/campaigns/{name}/export.csv")
async def campaign_csv(
    console: Annotated[Console, Depends(page("read", "campaigns"))],
    name: str,
    table: Annotated[str, Query(max_length=20)] = "summary",
    encoding: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    if table not in TABLES:
        return console.render("not_found.html", 404)
    try:
        report = await run_in_threadpool(campaign_report, console.engine, name)
    except NotFound:
        return console.render("not_found.html", 404)
    return _csv(report_rows(report, table), f"clm-campaign-{name}-{table}.csv", encoding)
