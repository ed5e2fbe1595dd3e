"""One journey's (or broadcast's) results as a campaign: what its messages did (sent, delivered,
opened, clicked, unsubscribed, bounced), who converted, the revenue credited to it and its ROI
(from `attribution.campaign_roi`, the figures `clm campaigns roi` prints), the incremental lift
against the holdout with intervals, each A/B/n experiment (`experiments.experiment_report`) and
the days of its life. The console's campaign page and its CSV files read this.

Incremental figures compare the randomised customers outside the holdout ("treated") with the
held-out ones, each over the goal window after entry:
- conversion lift = treated rate − holdout rate, with the two-proportion z-test of
  `experiments.two_proportion_test` (the interval excludes 0 exactly when p < 0.05);
- revenue per customer: difference of the two means with a 95% normal interval from the
  unpooled standard error sqrt(s²_t/n_t + s²_h/n_h) (Welch; the sample variances use n − 1);
  incremental revenue = that difference × treated customers (the same figure as
  `campaign_roi`), and incremental ROI = (incremental revenue − cost) / cost, both with the
  interval carried through (they are linear in the difference)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from scipy.stats import norm
from sqlalchemy import Connection, Engine, Float, Integer, and_, cast, exists, func, literal, select

from clm.commerce.tables import orders
from clm.core.errors import NotFound
from clm.core.timeutil import store_zone
from clm.customers.tables import consents
from clm.events.tables import events
from clm.journeys.attribution import CLICKS, CampaignRoi, campaign_roi, within
from clm.journeys.experiments import (
    ALPHA,
    ExperimentReport,
    experiment_report,
    small_sample,
    two_proportion_test,
)
from clm.journeys.store import current_version
from clm.journeys.tables import enrolments, journeys, outbox, suppressions
from clm.store.sql import json_text

ATTRIBUTION_RULE = (
    "last touch: each completed order is credited once, to the journey of the last message sent to "
    "or clicked by the customer before it, within that journey's goal window"
)
UNSUBSCRIBE_SOURCE = "unsubscribe link ("  # clm.journeys.pages records consent with this source
CHART_DAYS = 90  # the chart shows at most the last this many days of a campaign


@dataclass(frozen=True)
class Delivery:
    """What the journey's messages did: `sent` = handed to the provider, `delivered` = accepted by
    it and not reported undelivered by a delivery receipt, `bounced` = refused for good with the
    address suppressed, or reported undelivered (sent − delivered);
    `opened`/`clicked` count delivered messages with at least one open/click."""

    sent: int
    delivered: int
    opened: int
    clicked: int
    unsubscribed: int
    bounced: int
    failed: int
    held: int  # queued for later (quiet hours, a retry's back-off)
    not_sent: int  # skipped (consent, cap, no address), suppressed or cancelled


@dataclass(frozen=True)
class Incremental:
    """Treated (randomised, outside the holdout) against held-out customers (module docstring)."""

    treated: int
    holdout: int
    treated_conversions: int
    holdout_conversions: int
    treated_rate: float | None
    holdout_rate: float | None
    lift: float | None  # treated − holdout conversion rate
    lift_low: float | None
    lift_high: float | None
    p_value: float | None
    significant: bool
    revenue_per_treated: float | None
    revenue_per_holdout: float | None
    incremental_revenue: float | None  # (per treated − per held out) × treated
    incremental_revenue_low: float | None
    incremental_revenue_high: float | None
    incremental_roi: float | None  # (incremental revenue − cost) / cost
    incremental_roi_low: float | None
    incremental_roi_high: float | None
    warning: str | None  # too few customers for the normal approximation


@dataclass(frozen=True)
class Day:
    day: date  # in the store's time zone
    entered: int
    sent: int
    opened: int
    clicked: int
    converted: int  # of the customers who entered that day


@dataclass(frozen=True)
class CampaignReport:
    campaign: str
    title: str
    status: str
    version: int
    trigger: str
    goal: str | None
    window_days: float
    entered: int
    converted: int  # entries with the goal event within the window after entry
    delivery: Delivery
    roi: CampaignRoi
    attribution_rule: str
    incremental: Incremental | None
    experiments: list[ExperimentReport]
    days: list[Day]


@dataclass(frozen=True)
class CampaignRow:
    """A line of the campaign list: the journey and its ROI figures."""

    campaign: str
    title: str
    status: str
    trigger: str
    sent: int
    roi: CampaignRoi


def _journey_rows(conn: Connection) -> list[Any]:
    return list(conn.execute(select(journeys).order_by(journeys.c.name)))


def list_campaigns(engine: Engine) -> list[CampaignRow]:
    """Every journey and broadcast with its messages sent and its ROI (the same `campaign_roi`
    the API and `clm campaigns roi` answer with)."""
    rois = {r.campaign: r for r in campaign_roi(engine)}
    with engine.connect() as conn:
        rows = _journey_rows(conn)
        sent: dict[int, int] = dict(
            conn.execute(
                select(outbox.c.journey_id, func.count())
                .where(outbox.c.status == "sent", outbox.c.journey_id.is_not(None))
                .group_by(outbox.c.journey_id)
            ).all()
        )
        out = []
        for r in rows:
            _, d = current_version(conn, r.id)
            out.append(
                CampaignRow(r.name, d.title, r.status, d.trigger.kind, int(sent.get(r.id, 0)), rois[r.name])
            )
    return out


def _delivery(conn: Connection, journey_id: int) -> Delivery:
    mine = outbox.c.journey_id == journey_id
    sent_ok = outbox.c.status == "sent"

    def message_event(types: tuple[str, ...]) -> Any:
        return exists().where(
            events.c.customer_id == outbox.c.customer_id,
            events.c.type.in_(types),
            events.c.occurred_at >= outbox.c.created_at,
            json_text(events.c.properties, "message") == outbox.c.key,
        )

    bounced = and_(
        outbox.c.status == "failed",
        exists().where(
            suppressions.c.channel == outbox.c.channel, suppressions.c.address == outbox.c.to_address
        ),
    )
    unsubscribed = exists().where(
        consents.c.customer_id == outbox.c.customer_id,
        consents.c.channel == outbox.c.channel,
        consents.c.granted.is_(False),
        consents.c.source == literal(UNSUBSCRIBE_SOURCE) + outbox.c.key + literal(")"),
    )
    now = datetime.now(UTC)
    row = conn.execute(
        select(
            func.count().filter(sent_ok),
            func.count().filter(and_(sent_ok, outbox.c.delivery == "undelivered")),
            func.count().filter(and_(sent_ok, message_event(("email_open",)))),
            func.count().filter(and_(sent_ok, message_event(CLICKS))),
            func.count().filter(unsubscribed),
            func.count().filter(bounced),
            func.count().filter(outbox.c.status.in_(("failed", "unknown"))),
            func.count().filter(and_(outbox.c.status == "queued", outbox.c.not_before > now)),
            func.count().filter(outbox.c.status.in_(("skipped", "suppressed", "cancelled"))),
        ).where(mine)
    ).one()
    sent, undelivered, opened, clicked, unsub, refused, failed, held, not_sent = (int(x or 0) for x in row)
    # handed over: accepted (sent) or refused for good as a bounce; not delivered: those refused,
    # and those a delivery receipt (SMS) later said did not arrive
    return Delivery(
        sent + refused, sent - undelivered, opened, clicked, unsub, refused + undelivered, failed - refused,
        held, not_sent,
    )  # fmt: skip


def _goal_reached(conn: Connection, goal: str | None, days: float) -> Any:
    if not goal:
        return literal(False)
    return exists().where(
        events.c.customer_id == enrolments.c.customer_id,
        events.c.type == goal,
        events.c.occurred_at >= enrolments.c.entered_at,
        within(conn.dialect.name, events.c.occurred_at, enrolments.c.entered_at, days),
    )


def _arms(conn: Connection, journey_id: int, goal: str | None, days: float) -> dict[str, tuple[float, ...]]:
    """group (treated, holdout, other) → (customers, conversions, revenue, revenue²) over the
    goal window after entry: one statement over the journey's enrolments."""
    revenue = (
        select(func.coalesce(func.sum(cast(orders.c.total, Float)), 0.0))
        .where(
            orders.c.customer_id == enrolments.c.customer_id,
            orders.c.status == "completed",
            orders.c.ordered_at >= enrolments.c.entered_at,
            within(conn.dialect.name, orders.c.ordered_at, enrolments.c.entered_at, days),
        )
        .scalar_subquery()
    )
    per = (
        select(
            enrolments.c.variant.label("variant"),
            _goal_reached(conn, goal, days).label("converted"),
            revenue.label("revenue"),
        )
        .where(enrolments.c.journey_id == journey_id)
        .subquery()
    )
    group = func.coalesce(per.c.variant, literal("-"))
    rows = conn.execute(
        select(
            group,
            func.count(),
            func.count().filter(per.c.converted),
            func.coalesce(func.sum(per.c.revenue), 0.0),
            func.coalesce(func.sum(per.c.revenue * per.c.revenue), 0.0),
        ).group_by(group)
    ).all()
    out: dict[str, list[float]] = {
        "treated": [0, 0, 0.0, 0.0],
        "holdout": [0, 0, 0.0, 0.0],
        "other": [0, 0, 0.0, 0.0],
    }
    for variant, n, x, s, ss in rows:
        key = "holdout" if variant == "holdout" else ("other" if variant == "-" else "treated")
        for i, v in enumerate((n, x, s, ss)):
            out[key][i] += float(v or 0)
    return {k: tuple(v) for k, v in out.items()}


def _mean_var(n: float, s: float, ss: float) -> tuple[float, float]:
    mean = s / n
    var = max(ss - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
    return mean, var


def incremental(arms: dict[str, tuple[float, ...]], cost: float) -> Incremental | None:
    """The holdout comparison (module docstring), or None when the journey has no holdout."""
    nt, xt, st, sst = arms["treated"]
    nh, xh, sh, ssh = arms["holdout"]
    if not nh:
        return None
    nt_i, xt_i, nh_i, xh_i = int(nt), int(xt), int(nh), int(xh)
    lift = low = high = p = None
    significant = False
    if nt_i:
        diff, _, p, half = two_proportion_test(nt_i, xt_i, nh_i, xh_i)
        lift, low, high, significant = diff, diff - half, diff + half, p < ALPHA
    per_t = per_h = inc = inc_low = inc_high = roi = roi_low = roi_high = None
    if nt_i:
        (mt, vt), (mh, vh) = _mean_var(nt, st, sst), _mean_var(nh, sh, ssh)
        z = float(norm.ppf(1 - ALPHA / 2))
        half_rev = z * math.sqrt(vt / nt + vh / nh)
        per_t, per_h = mt, mh
        inc = (mt - mh) * nt
        inc_low, inc_high = (mt - mh - half_rev) * nt, (mt - mh + half_rev) * nt
        if cost:
            roi, roi_low, roi_high = ((v - cost) / cost for v in (inc, inc_low, inc_high))
    thin = [
        f"{name} has {x:,} conversions and {n - x:,} non-conversions"
        for name, n, x in (("treated", nt_i, xt_i), ("holdout", nh_i, xh_i))
        if small_sample(n, x)
    ]
    warning = (
        f"too few to judge: {'; '.join(thin)} (the z-test needs at least 10 of each in every group)"
        if thin
        else None
    )
    return Incremental(
        nt_i,
        nh_i,
        xt_i,
        xh_i,
        xt_i / nt_i if nt_i else None,
        xh_i / nh_i,
        lift,
        low,
        high,
        p,
        significant,
        per_t,
        per_h,
        inc,
        inc_low,
        inc_high,
        roi,
        roi_low,
        roi_high,
        warning,
    )


def _hour(conn: Connection, column: Any) -> Any:
    """SQL: whole hours since 1970 (UTC) of a timestamp, so days can be cut in the store's zone
    (SQLite: truncation, the same as floor for times after 1970)."""
    if conn.dialect.name == "sqlite":
        return cast((func.julianday(column) - 2440587.5) * 24, Integer)
    return cast(func.floor(func.extract("epoch", column) / 3600.0), Integer)


def _days(conn: Connection, journey_id: int, goal: str | None, window: float) -> list[Day]:
    """The last CHART_DAYS days of the campaign, in the store's time zone."""
    zone = store_zone()
    began, end = conn.execute(
        select(func.min(enrolments.c.entered_at), func.max(enrolments.c.entered_at)).where(
            enrolments.c.journey_id == journey_id
        )
    ).one()
    last_sent = conn.execute(
        select(func.max(outbox.c.sent_at)).where(outbox.c.journey_id == journey_id)
    ).scalar()
    moments = [m for m in (end, last_sent) if m is not None]
    if not moments:
        return []
    last = max(m if m.tzinfo else m.replace(tzinfo=UTC) for m in moments)
    first_day = last.astimezone(zone).date() - timedelta(days=CHART_DAYS - 1)
    if began is not None:
        first_day = max(
            first_day, (began if began.tzinfo else began.replace(tzinfo=UTC)).astimezone(zone).date()
        )
    since = datetime.combine(first_day, datetime.min.time(), zone).astimezone(UTC)
    counts: dict[str, dict[date, int]] = {}

    def hourly(name: str, column: Any, where: Any, extra: Any = None) -> None:
        hour = _hour(conn, column).label("h")
        query = select(hour, func.count()).where(where, column >= since)
        if extra is not None:
            query = query.select_from(extra)
        per: dict[date, int] = {}
        for h, n in conn.execute(query.group_by(hour)):
            day = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=int(h))).astimezone(zone).date()
            per[day] = per.get(day, 0) + int(n)
        counts[name] = per

    mine = outbox.c.journey_id == journey_id
    hourly("entered", enrolments.c.entered_at, enrolments.c.journey_id == journey_id)
    hourly("converted", enrolments.c.entered_at,
           and_(enrolments.c.journey_id == journey_id, _goal_reached(conn, goal, window)))  # fmt: skip
    hourly("sent", outbox.c.sent_at, and_(mine, outbox.c.status == "sent"))
    by_message = events.join(
        outbox,
        and_(
            outbox.c.customer_id == events.c.customer_id,
            outbox.c.key == json_text(events.c.properties, "message"),
        ),
    )
    for name, types in (("opened", ("email_open",)), ("clicked", CLICKS)):
        hourly(name, events.c.occurred_at, and_(mine, events.c.type.in_(types)), by_message)
    out = []
    day = first_day
    last_day = last.astimezone(zone).date()
    while day <= last_day:
        out.append(
            Day(day, *(counts[k].get(day, 0) for k in ("entered", "sent", "opened", "clicked", "converted")))
        )
        day += timedelta(days=1)
    return out


def campaign_report(engine: Engine, name: str) -> CampaignReport:
    """Everything the campaign page shows for one journey (module docstring)."""
    rois = {r.campaign: r for r in campaign_roi(engine)}
    with engine.connect() as conn:
        row = conn.execute(select(journeys).where(journeys.c.name == name)).first()
        if row is None:
            raise NotFound(f"no journey or broadcast named {name!r}")
        _, d = current_version(conn, row.id)
        roi = rois[name]
        arms = _arms(conn, row.id, d.goal_event, d.goal_days)
        delivery = _delivery(conn, row.id)
        days = _days(conn, row.id, d.goal_event, d.goal_days)
    entered = int(sum(arms[k][0] for k in arms))
    converted = int(sum(arms[k][1] for k in arms))
    experiments = [experiment_report(engine, experiment) for experiment, _ in d.experiments]
    return CampaignReport(
        name,
        d.title,
        row.status,
        row.version,
        d.trigger.kind,
        d.goal_event,
        d.goal_days,
        entered,
        converted,
        delivery,
        roi,
        ATTRIBUTION_RULE,
        incremental(arms, roi.cost),
        experiments,
        days,
    )
