"""The overview page (`/`): lifecycle KPIs for a period against the one before it, the stage
distribution now, the stage funnel, the moves between stages in the period (a Sankey), new
customers and revenue by acquisition channel with CAC, and cohort retention (a heat map), all
from the services the API answers with (`clm.lifecycle`), so page and API show the same numbers.
Charts are drawn by ECharts from the figures embedded in the page as JSON."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import median
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import literal

from clm.analytics.service import risk_summary
from clm.core.errors import InvalidInput
from clm.core.exports import content_disposition, csv_bytes, export_encoding, media_type
from clm.customers.scope import CustomerScope
from clm.feedback.service import survey_results
from clm.lifecycle.cohorts import cohorts
from clm.lifecycle.flows import stage_flows
from clm.lifecycle.funnel import FunnelReport, FunnelStep, funnel
from clm.lifecycle.kpi import FORMULAS, KpiRow, kpis
from clm.lifecycle.service import current_model, stage_distribution
from clm.views.scope import customer_scope, scope_choices
from clm.web.access import Console, page
from clm.web.figures_cache import Figures, FiguresCache
from clm.web.i18n import N_, Formats, translations

router = APIRouter(include_in_schema=False, tags=["console"])

PERIODS = (7, 30, 90, 365)
DEFAULT_PERIOD = 30
FUNNEL_WINDOW_DAYS = 180
COHORT_MONTHS = 12
RISK_BANDS = {
    "high": N_("High risk"),
    "medium": N_("Medium risk"),
    "low": N_("Low risk"),
    "lost": N_("Already lost"),
}
# A step is marked as the weak link only when its conversion is below this share of the median
# conversion of the other steps (and at least two other steps have one): with steps at 72%, 70%
# and 74% no step is meaningfully weaker, and none is marked.
WEAK_LINK_SHARE = 0.8


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    formula: str  # the same words as clm.lifecycle.kpi.FORMULAS (a test keeps them equal)
    kind: str  # count, rate (0–1), percent (0–100), points (NPS), money
    better: str = "up"  # which way is good


CARDS = (
    Card(
        "customers_at_end",
        N_("Active customers"),
        N_("customers with a counted order in the active window before the period's end"),
        "count",
    ),
    Card(
        "new_customers",
        N_("New customers"),
        N_("customers whose first counted order falls in the period"),
        "count",
    ),
    Card("churn_rate", N_("Churn rate"), N_("lost_customers / customers_at_start"), "rate", "down"),
    Card(
        "retention_rate",
        N_("Retention rate"),
        N_("(customers_at_end - new_customers) / customers_at_start"),
        "rate",
    ),
    Card(
        "repurchase_rate",
        N_("Repurchase rate"),
        N_("customers with >= 2 orders in the period / customers with >= 1 order in the period"),
        "rate",
    ),
    Card("revenue", N_("Revenue"), "", "money"),
    Card("aov", N_("Average order value"), N_("revenue / orders (counted orders in the period)"), "money"),
    Card(
        "cac",
        N_("Customer acquisition cost"),
        N_(
            "acquisition spend of the channel in the period / its new_customers (spend rows prorated by days "
            "of overlap; undefined without spend or without new customers)"
        ),
        "money",
        "down",
    ),
    Card(
        "nps",
        N_("NPS"),
        N_("% promoters (9-10) - % detractors (0-6) among NPS answers in the period"),
        "points",
    ),
    Card("csat", N_("CSAT"), N_("% of answers 4-5 among CSAT answers (1-5) in the period"), "percent"),
    Card(
        "historical_clv",
        N_("Historical CLV"),
        N_("margin to the period's end (revenue - product cost) / customers with an order by then"),
        "money",
    ),
)
REVENUE_FORMULA = N_("revenue of counted orders in the period (not cancelled, not refunded by its end)")


def weak_link(report: FunnelReport) -> FunnelStep | None:
    """The step that converts meaningfully worse than the others (see WEAK_LINK_SHARE), or None."""
    rated = [s for s in report.steps if s.conversion is not None]
    if len(rated) < 3:
        return None
    weakest = min(rated, key=lambda s: s.conversion or 0.0)
    others = [s.conversion or 0.0 for s in rated if s is not weakest]
    return weakest if (weakest.conversion or 0.0) < WEAK_LINK_SHARE * median(others) else None


def change(card: Card, now: float | None, before: float | None) -> float | None:
    """How far a figure moved since the previous period: for rates and scores the difference in
    percentage points, for counts and money the relative change (0.1 = +10%)."""
    if now is None or before is None:
        return None
    if card.kind == "rate":
        return (now - before) * 100
    if card.kind in ("percent", "points"):
        return now - before
    return None if before == 0 else (now - before) / abs(before)


def overview_data(
    console: Console, start: date, end: date, days: int, scope: CustomerScope | None = None
) -> dict[str, Any]:
    """Every figure of the overview for the period (and the one before it), of the customers in
    `scope` (all when None): the same service calls, with the same scope, as the API's."""
    engine = console.engine
    model = current_model(engine)
    (this_start, this_end), (prev_start, prev_end) = (
        (start, end),
        (
            start - timedelta(days=days),
            start - timedelta(days=1),
        ),
    )  # the previous period is as long as this one and ends the day before it starts
    by_channel = kpis(engine, this_start, this_end, group_by="channel", model=model.name, scope=scope)
    now: KpiRow = by_channel.overall
    before: KpiRow = kpis(engine, prev_start, prev_end, model=model.name, scope=scope).overall
    counts = dict(stage_distribution(engine, scope))
    zh = console.locale.startswith("zh")
    names = {s.key: (s.name_zh if zh else s.name_en) for s in model.stages}
    flow = funnel(engine, window_days=FUNNEL_WINDOW_DAYS, scope=scope)
    moves = stage_flows(engine, this_start, this_end, model.name, scope)
    retention = cohorts(engine, months=COHORT_MONTHS, scope=scope)
    risk = risk_summary(engine, scope)
    satisfaction = satisfaction_by_month(engine, this_end, scope)
    say = translations(console.locale).gettext
    weak = weak_link(flow)
    return {
        "model": model.name,
        "model_title": model.title_zh if zh else model.title_en,
        "period": {"from": this_start.isoformat(), "to": this_end.isoformat(), "days": days},
        "previous": {"from": prev_start.isoformat(), "to": prev_end.isoformat()},
        "kpi": {card.key: getattr(now, card.key) for card in CARDS},
        "kpi_previous": {card.key: getattr(before, card.key) for card in CARDS},
        "notes": now.notes,
        "stages": [
            {"stage": s.key, "name": names[s.key], "customers": counts.get(s.key, 0)} for s in model.stages
        ],
        "channels": [
            {
                "channel": g.group,
                "new_customers": g.new_customers,
                "revenue": g.revenue,
                "spend": g.spend,
                "cac": g.cac,
            }
            for g in sorted(by_channel.groups, key=lambda g: -g.revenue)
        ],
        "flows": [
            {
                "from": f.from_stage,
                "to": f.to_stage,
                "from_name": names.get(f.from_stage, f.from_stage) if f.from_stage else None,
                "to_name": names.get(f.to_stage, f.to_stage),
                "moves": f.moves,
                "customers": f.customers,
            }
            for f in moves.flows
        ],
        "risk": {
            "customers": risk["customers"],
            "scored_at": risk["scored_at"],
            "at_risk_reachable": risk["at_risk_reachable"],
            "bands": [
                {"band": band, "name": say(label), **risk["bands"].get(band, {"customers": 0, "share": 0.0})}
                for band, label in RISK_BANDS.items()
            ],
        },
        "satisfaction": satisfaction,
        "cohorts": [
            {"cohort": c.cohort, "customers": c.customers, "active": c.active, "partial": c.partial}
            for c in retention.cohorts
        ],
        "funnel": {
            "window_days": flow.window_days,
            "steps": [
                {
                    "from": s.from_stage,
                    "to": s.to_stage,
                    "from_name": names.get(s.from_stage, s.from_stage),
                    "to_name": names.get(s.to_stage, s.to_stage),
                    "reached": s.reached,
                    "converted": s.converted,
                    "conversion": s.conversion,
                    "weak": weak is not None and s.from_stage == weak.from_stage,
                }
                for s in flow.steps
            ],
        },
    }


def satisfaction_by_month(
    engine: Any, end: date, scope: CustomerScope | None = None, months: int = 12
) -> list[dict[str, Any]]:
    """NPS and CSAT of every survey of the kind, month by month, for the `months` calendar months
    up to the one holding `end` (the feedback domain's results service, grouped by month), of the
    customers in `scope` when given."""
    first = date(end.year, end.month, 1)
    for _ in range(months - 1):
        first = date(first.year - (first.month == 1), 12 if first.month == 1 else first.month - 1, 1)
    lower = datetime.combine(first, datetime.min.time(), UTC)
    upper = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)
    groups = None if scope is None else scope.ids.add_columns(literal("in scope"))
    nps, csat = (
        {
            g.label: g
            for g in survey_results(engine, kind, start=lower, end=upper, by="month", groups=groups).groups
        }
        for kind in ("nps", "csat")
    )
    return [
        {
            "month": month,
            "nps": nps[month].nps if month in nps else None,
            "nps_responses": nps[month].responses if month in nps else 0,
            "csat": csat[month].csat if month in csat else None,
            "csat_responses": csat[month].responses if month in csat else 0,
        }
        for month in sorted(set(nps) | set(csat))
    ]


def _period(
    days: int | None, start: date | None, end: date | None, today: date
) -> tuple[date, date, int, str]:
    if start is not None and end is not None and start <= end:
        end = min(end, today)
        start = min(start, end)
        return start, end, (end - start).days + 1, "custom"
    days = days if days in PERIODS else DEFAULT_PERIOD
    return today - timedelta(days=days - 1), today, days, str(days)


# The page's figures for one period and filter are kept when slow to compute (a large store);
# see clm.web.figures_cache. The filter's choices are read at most once a minute when slow.
FIGURES = {"slow_seconds": 0.25, "fresh_seconds": 300.0}
CHOICES = {"slow_seconds": 0.05, "fresh_seconds": 60.0}


_CACHE_LOCK = threading.Lock()


def _cache(console: Console, name: str, settings: dict[str, float]) -> FiguresCache:
    state = console.request.app.state
    with _CACHE_LOCK:
        if not hasattr(state, name):
            setattr(state, name, FiguresCache(**settings))
        cache: FiguresCache = getattr(state, name)
    return cache


@dataclass(frozen=True)
class Shown:
    """What the overview shows: the period, the filter, and the figures (maybe kept ones)."""

    start: date
    end: date
    days: int
    chosen: str
    channel: str | None
    segment: str | None
    figures: Figures
    problem: str | None  # a filter that could not be applied, in words

    @property
    def data(self) -> dict[str, Any]:
        value: dict[str, Any] = self.figures.value
        return value

    def query(self, **extra: str) -> str:
        """The URL query of this period and filter (for CSV links and shared addresses)."""
        params = {"from": self.start.isoformat(), "to": self.end.isoformat(), **self.filters(), **extra}
        return urlencode(params)

    def filters(self) -> dict[str, str]:
        return {k: v for k, v in (("channel", self.channel), ("segment", self.segment)) if v}


def shown(
    console: Console,
    period: int | None,
    start: date | None,
    end: date | None,
    channel: str | None,
    segment: str | None,
) -> Shown:
    """Read the overview's input and get its figures: one call for the page and its CSVs."""
    today = datetime.now(Formats(console.locale).tz).date()
    start, end, days, chosen = _period(period, start, end, today)
    channel, segment, problem = (channel or "").strip() or None, (segment or "").strip() or None, None
    try:
        scope = customer_scope(console.engine, channel, segment)
    except InvalidInput:  # an unknown segment (the lengths were checked with the query)
        say = translations(console.locale).gettext
        problem = say(N_("No segment named “%(name)s”: the figures below are for all customers.")) % {
            "name": segment
        }
        channel, segment, scope = None, None, None
    key = ("overview", console.locale, start, end, days, channel, segment)
    figures = _cache(console, "overview_figures", FIGURES).get(
        key, lambda: overview_data(console, start, end, days, scope)
    )
    return Shown(start, end, days, chosen, channel, segment, figures, problem)


Period = Annotated[int | None, Query(ge=1, le=3650)]
From = Annotated[date | None, Query(alias="from")]
To = Annotated[date | None, Query(alias="to")]
Channel = Annotated[str | None, Query(max_length=100, description="Only customers acquired through it.")]
Segment = Annotated[str | None, Query(max_length=100, description="Only the segment's members.")]


@router.get("/", response_class=HTMLResponse)
def overview(
    console: Annotated[Console, Depends(page("read", "overview"))],
    period: Period = None,
    start: From = None,
    end: To = None,
    channel: Channel = None,
    segment: Segment = None,
) -> Response:
    view = shown(console, period, start, end, channel, segment)
    data = view.data
    channels, segments = (
        _cache(console, "overview_choices", CHOICES)
        .get(("choices",), lambda: scope_choices(console.engine))
        .value
    )
    age = (datetime.now(UTC) - view.figures.computed_at).total_seconds()
    return console.render(
        "overview.html",
        data=data,
        cards=CARDS,
        # translated here: a formula's own % signs must not meet the template's % formatting
        formulas={c.key: translations(console.locale).gettext(c.formula or REVENUE_FORMULA) for c in CARDS},
        periods=PERIODS,
        chosen=view.chosen,
        start=view.start,
        end=view.end,
        delta={c.key: change(c, data["kpi"][c.key], data["kpi_previous"][c.key]) for c in CARDS},
        has_data=bool(data["kpi"]["customers_at_end"] or sum(s["customers"] for s in data["stages"])),
        query=view.query(),
        filters=view.filters(),
        filter_query=urlencode(view.filters()),
        filter_words=_filter_words(console, view),
        channel=view.channel,
        segment=view.segment,
        channels=channels if view.channel is None or view.channel in channels else [*channels, view.channel],
        segments=segments,
        problem=view.problem,
        # kept figures say how old they are (a whole minute or more: younger ones are as good as new)
        as_of=view.figures.computed_at if view.figures.cached and age >= 60 else None,
        as_of_minutes=int(age // 60),
        risk_scored_at=_instant(data["risk"]["scored_at"]),
    )


def _filter_words(console: Console, view: Shown) -> str:
    say = translations(console.locale).gettext
    words = []
    if view.channel:
        words.append(say(N_("customers acquired through %(channel)s")) % {"channel": view.channel})
    if view.segment:
        words.append(say(N_("members of the segment “%(segment)s”")) % {"segment": view.segment})
    if len(words) == 2:
        return say(N_("%(first)s and %(second)s")) % {"first": words[0], "second": words[1]}
    return words[0] if words else ""


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


CSV_PARTS = ("kpi", "stages", "funnel", "flows", "channels", "cohorts", "risk", "satisfaction")


def csv_rows(part: str, data: dict[str, Any]) -> list[list[Any]]:
    """The numbers behind one part of the overview as rows, headed by the API's field names."""
    if part == "kpi":
        rows: list[list[Any]] = [["kpi", "value", "previous_value"]]
        rows += [[c.key, data["kpi"][c.key], data["kpi_previous"][c.key]] for c in CARDS]
        return rows
    if part == "stages":
        return [["stage", "name", "customers"]] + [
            [s["stage"], s["name"], s["customers"]] for s in data["stages"]
        ]
    if part == "funnel":
        head = ["from_stage", "to_stage", "reached", "converted", "conversion", "weakest_link"]
        steps = data["funnel"]["steps"]
        return [head] + [
            [s["from"], s["to"], s["reached"], s["converted"], s["conversion"], s["weak"]] for s in steps
        ]
    if part == "flows":
        head = ["from_stage", "to_stage", "moves", "customers"]
        return [head] + [[f["from"] or "", f["to"], f["moves"], f["customers"]] for f in data["flows"]]
    if part == "satisfaction":
        head = ["month", "nps", "nps_responses", "csat", "csat_responses"]
        return [head] + [[m[k] for k in head] for m in data["satisfaction"]]
    if part == "risk":
        return [["band", "name", "customers", "share"]] + [
            [b["band"], b["name"], b["customers"], b["share"]] for b in data["risk"]["bands"]
        ]
    if part == "cohorts":
        head = ["cohort", "customers", "partial_month"] + [f"active_month_{k}" for k in range(COHORT_MONTHS)]
        return [head] + [[c["cohort"], c["customers"], c["partial"], *c["active"]] for c in data["cohorts"]]
    head = ["channel", "new_customers", "revenue", "spend", "cac"]
    return [head] + [
        [c["channel"], c["new_customers"], c["revenue"], c["spend"], c["cac"]] for c in data["channels"]
    ]


@router.get("/overview.csv")
def overview_csv(
    console: Annotated[Console, Depends(page("read", "overview"))],
    part: Annotated[
        Literal["kpi", "stages", "funnel", "flows", "channels", "cohorts", "risk", "satisfaction"], Query()
    ] = "kpi",
    period: Period = None,
    start: From = None,
    end: To = None,
    channel: Channel = None,
    segment: Segment = None,
    encoding: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """One chart's numbers as CSV that Excel opens with Chinese intact (clm.core.exports: UTF-8
    with a byte-order mark, or `?encoding=gb18030`); empty cells where a figure is undefined. The
    same period and filter as the page."""
    view = shown(console, period, start, end, channel, segment)
    if view.problem:
        return Response(view.problem, status_code=422, media_type="text/plain; charset=utf-8")
    encoding = export_encoding(encoding)
    tags = "".join(f"-{v}" for v in view.filters().values() if v.isascii() and v.replace("_", "").isalnum())
    name = f"clm-{part}-{view.start.isoformat()}-{view.end.isoformat()}{tags}.csv"
    return Response(
        csv_bytes(csv_rows(part, view.data), encoding),
        media_type=media_type(encoding),
        headers={"Content-Disposition": content_disposition(name), "Cache-Control": "no-store"},
    )


__all__ = ["CARDS", "FORMULAS", "router", "weak_link"]
