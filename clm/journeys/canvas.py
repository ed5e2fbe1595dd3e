"""A journey as a graph of its trigger and steps, and the numbers on each node and edge over a
period: the read model of the console's canvas and journey list.

Numbers come from the durable records, never from counters kept on the side:
- a node's **entered** is the journey log's rows for that step in the period (each step a
  customer takes is one log row; for a wait for an event, the row written when the wait began);
- an edge's count is the log rows of its outcome (`then`/`else` of a branch, `event`/`timeout` of
  a wait for an event, the arm of a split, the next step otherwise);
- **here now** is the enrolments at that step (active or waiting) at the moment of asking; a
  customer in a timed wait sits at the wait's next step with a due time in the future, and is
  counted on the wait;
- **messages** are the outbox rows a send step queued in the period, by status: sent, held (queued
  but not out yet: quiet hours, the dispatcher, a paused journey), skipped (consent, frequency
  cap, no address, suppressed) and failed;
- **converted** counts the customers passing the node in the period whose goal event came within
  the goal's window after they entered (the same rule as the experiment report);
- split nodes carry the experiment report (clm.journeys.experiments: conversion per arm, lift
  against the holdout with its 95% interval and p-value from one z-test) and revenue per arm:
  completed orders within the goal window after entry, incremental revenue against the holdout
  ((revenue per arm customer − per held-out customer) × arm customers) and incremental ROI, with
  the journey's cost shared by the arms in proportion to their customers (the rule of
  clm.journeys.attribution, per arm). Splits cover the whole experiment, not only the period.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, exists, func, literal, select

from clm.commerce.tables import marketing_spend, orders
from clm.events.tables import events
from clm.journeys.attribution import within
from clm.journeys.definition import JourneyDefinition, Step
from clm.journeys.experiments import ExperimentReport, experiment_report
from clm.journeys.store import current_version, get_journey, list_journeys
from clm.journeys.tables import enrolments, journey_log, outbox

END = "__end__"  # the target of an edge that leaves the journey
TRIGGER = "__trigger__"
HELD = ("queued", "claimed", "sending")
SKIPPED = ("skipped", "suppressed")
FAILED = ("failed", "unknown")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str  # a step id, or END
    outcome: str  # the journey log's outcome that takes this edge ("" for the trigger's edge)
    label: str  # then, else, event, timeout, an arm's name, holdout; "" for the plain next step


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # trigger, send, wait, branch, split, update, task, exit
    summary: str  # one line: what the step does ("email cart-reminder", "4 h", "if orders >= 1")


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]


def _hours(days: float) -> str:
    if days >= 1 and float(days).is_integer():
        return f"{days:g} d"
    return f"{days * 24:g} h"


def _summary(step: Step) -> str:
    a = step.args
    if step.action == "send":
        extra = f" + {a['coupon']}" if a.get("coupon") else ""
        return f"{a['channel']} {a['template']}{extra}"
    if step.action == "wait":
        if "event" in a:
            return f"{a['event']} ≤ {_hours(a['timeout_days'])}"
        if "until_local" in a:
            return f"→ {a['until_local']}"
        return _hours(a["days"])
    if step.action == "branch":
        return str(a["if"])
    if step.action == "split":
        shares = [f"{k} {v:g}" for k, v in a["arms"].items()]
        if a.get("holdout"):
            shares.append(f"holdout {a['holdout']:g}")
        return " / ".join(shares)
    if step.action == "update":
        return f"{a['attribute']} = {a.get('value')!r}"
    if step.action == "task":
        return str(a["title"])
    return str(a.get("reason") or "")


def _trigger_summary(d: JourneyDefinition) -> str:
    t = d.trigger
    if t.kind == "event":
        where = ", ".join(f"{k}={v}" for k, v in t.where.items())
        return f"{t.event}" + (f" ({where})" if where else "")
    if t.kind == "date":
        return f"{t.date_field} {t.offset_days:+d} d" if t.offset_days else str(t.date_field)
    return str(t.condition or "")


def step_edges(step: Step) -> list[Edge]:
    """The ways out of a step, each with the log outcome that takes it."""
    a, nxt = step.args, step.next or END
    if step.action == "exit":
        return []
    if step.action == "wait" and "event" in a:
        return [
            Edge(step.id, a.get("then") or nxt, "event", "event"),
            Edge(step.id, a.get("timeout") or nxt, "timeout", "timeout"),
        ]
    if step.action == "branch":
        return [
            Edge(step.id, a.get("then") or nxt, "then", "then"),
            Edge(step.id, a.get("else") or nxt, "else", "else"),
        ]
    if step.action == "split":
        out = [Edge(step.id, a["goto"].get(arm) or nxt, arm, arm) for arm in a["arms"]]
        if a.get("holdout"):
            out.append(Edge(step.id, END, "holdout", "holdout"))
        return out
    outcome = {"send": "queued", "wait": "scheduled", "update": "set", "task": "created"}[step.action]
    return [Edge(step.id, nxt, outcome, "")]


def journey_graph(d: JourneyDefinition) -> Graph:
    """The trigger and every step as nodes; each way from one to the next as an edge."""
    nodes = [Node(TRIGGER, "trigger", _trigger_summary(d))]
    nodes += [Node(s.id, s.action, _summary(s)) for s in d.steps]
    edges = [Edge(TRIGGER, d.first_step, "", "")]
    for s in d.steps:
        edges += step_edges(s)
    return Graph(nodes, edges)


@dataclass
class NodeNumbers:
    entered: int = 0
    here_now: int = 0  # in the step now (active, waiting for an event, or in a timed wait)
    converted: int = 0
    left: int = 0  # left the journey here because the exit event happened (exit_when)
    sent: int = 0
    held: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass(frozen=True)
class ArmResult:
    arm: str
    customers: int
    conversions: int
    rate: float | None
    lift: float | None  # against the control (the holdout when there is one)
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool
    warning: str | None
    revenue: float  # completed orders within the goal window after entry
    incremental_revenue: float | None  # against the holdout
    cost: float  # the journey's cost shared by customers
    incremental_roi: float | None  # (incremental revenue − cost) / cost


@dataclass(frozen=True)
class SplitResult:
    experiment: str
    control: str | None
    method: str
    arms: list[ArmResult]


@dataclass(frozen=True)
class CanvasNumbers:
    journey: str
    start: datetime
    end: datetime
    entered: int  # enrolments that began in the period
    nodes: dict[str, NodeNumbers]
    edges: dict[tuple[str, str], int]  # (step, outcome) → customers who took that way
    splits: dict[str, SplitResult]  # split step id → results
    cost: float


def _converted(dialect: str, goal: str, days: float) -> Any:
    """SQL, per enrolment row: its customer's goal event came within `days` after entering."""
    return exists().where(
        events.c.customer_id == enrolments.c.customer_id,
        events.c.type == goal,
        events.c.occurred_at >= enrolments.c.entered_at,
        within(dialect, events.c.occurred_at, enrolments.c.entered_at, days),
    )


def canvas_numbers(engine: Engine, name: str, start: datetime, end: datetime, now: datetime) -> CanvasNumbers:
    """The numbers on every node and edge of the journey's current version over [start, end)."""
    journey, d = get_journey(engine, name)
    nodes = {TRIGGER: NodeNumbers(), **{s.id: NodeNumbers() for s in d.steps}}
    edges: dict[tuple[str, str], int] = {}
    entry_outcome = {s.id: ("waiting" if s.action == "wait" and "event" in s.args else None) for s in d.steps}
    dialect = engine.dialect.name
    converted: Any = literal(False)
    if d.goal_event:
        converted = _converted(dialect, d.goal_event, d.goal_days)
    in_period = and_(enrolments.c.entered_at >= start, enrolments.c.entered_at < end)
    # the converted enrolments once (a semi-join per enrolment), not a look-up per log row
    won = (
        select(enrolments.c.id)
        .where(enrolments.c.journey_id == journey.id, converted)
        .cte("converted_enrolments")
    )
    with ThreadPoolExecutor(max_workers=4) as pool, engine.connect() as conn:
        # the slow reads do not depend on each other: each on its own connection, at the same time
        entering = pool.submit(
            _all,
            engine,
            select(func.count(), func.count().filter(converted)).where(
                enrolments.c.journey_id == journey.id, in_period
            ),
        )
        logging = pool.submit(
            _all,
            engine,
            select(journey_log.c.step, journey_log.c.outcome, func.count(), func.count(won.c.id))
            .select_from(journey_log.outerjoin(won, won.c.id == journey_log.c.enrolment_id))
            .where(journey_log.c.journey_id == journey.id, journey_log.c.at >= start, journey_log.c.at < end)
            .group_by(journey_log.c.step, journey_log.c.outcome),
        )
        revenues = pool.submit(_arm_revenue_of, engine, journey.id, d.goal_days) if d.experiments else None
        reports = {
            step.id: pool.submit(experiment_report, engine, experiment) for experiment, step in d.experiments
        }
        entered, entered_conv = entering.result()[0]
        nodes[TRIGGER].entered, nodes[TRIGGER].converted = int(entered), int(entered_conv)
        edges[(TRIGGER, "")] = int(entered)
        logged = logging.result()
        for step_id, outcome, n, conv in logged:
            numbers = nodes.get(step_id)
            if numbers is None:  # a step of an older version only
                continue
            if outcome == "exited":
                numbers.left += int(n)
                continue
            edges[(step_id, outcome)] = edges.get((step_id, outcome), 0) + int(n)
            wanted = entry_outcome[step_id]
            if wanted is None or outcome == wanted:
                numbers.entered += int(n)
                numbers.converted += int(conv)
        _here_now(conn, journey.id, d, nodes, now)
        for step_id, status, n in conn.execute(
            select(outbox.c.step, outbox.c.status, func.count())
            .where(outbox.c.journey_id == journey.id, outbox.c.created_at >= start, outbox.c.created_at < end)
            .group_by(outbox.c.step, outbox.c.status)
        ):
            numbers = nodes.get(step_id or "")
            if numbers is None:
                continue
            if status == "sent":
                numbers.sent += int(n)
            elif status in HELD:
                numbers.held += int(n)
            elif status in SKIPPED:
                numbers.skipped += int(n)
            elif status in FAILED:
                numbers.failed += int(n)
        cost = float(
            conn.execute(
                select(func.coalesce(func.sum(marketing_spend.c.amount), 0)).where(
                    marketing_spend.c.campaign == name
                )
            ).scalar_one()
        )
        revenue = revenues.result() if revenues is not None else {}
        splits = {sid: _split_result(report.result(), revenue, cost) for sid, report in reports.items()}
    return CanvasNumbers(name, start, end, int(entered), nodes, edges, splits, cost)


def _all(engine: Engine, statement: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(statement).all())


def _arm_revenue_of(engine: Engine, journey_id: int, days: float) -> dict[str, tuple[int, float]]:
    with engine.connect() as conn:
        return _arm_revenue(conn, journey_id, days)


def _here_now(
    conn: Any, journey_id: int, d: JourneyDefinition, nodes: dict[str, NodeNumbers], now: datetime
) -> None:
    timed_wait_before: dict[str, str] = {}
    for s in d.steps:
        if s.action == "wait" and "event" not in s.args and s.next:
            timed_wait_before.setdefault(s.next, s.id)
    rows = conn.execute(
        select(
            enrolments.c.step,
            enrolments.c.state,
            func.count(),
            func.count().filter(enrolments.c.due_at > now),
        )
        .where(enrolments.c.journey_id == journey_id, enrolments.c.state.in_(("active", "waiting")))
        .group_by(enrolments.c.step, enrolments.c.state)
    ).all()
    for step_id, state, n, later in rows:
        waiting = int(later) if state == "active" and step_id in timed_wait_before else 0
        if waiting and timed_wait_before[step_id] in nodes:
            nodes[timed_wait_before[step_id]].here_now += waiting
        if step_id in nodes:
            nodes[step_id].here_now += int(n) - waiting


def _arm_revenue(conn: Any, journey_id: int, days: float) -> dict[str, tuple[int, float]]:
    """variant → (customers, revenue of completed orders within `days` after entry)."""
    revenue = (
        select(func.coalesce(func.sum(orders.c.total), 0))
        .where(
            orders.c.customer_id == enrolments.c.customer_id,
            orders.c.status == "completed",
            orders.c.ordered_at >= enrolments.c.entered_at,
            within(conn.dialect.name, orders.c.ordered_at, enrolments.c.entered_at, days),
        )
        .scalar_subquery()
    )
    per = (
        select(enrolments.c.variant, revenue.label("revenue"))
        .where(enrolments.c.journey_id == journey_id, enrolments.c.variant.is_not(None))
        .subquery()
    )
    rows = conn.execute(select(per.c.variant, func.count(), func.sum(per.c.revenue)).group_by(per.c.variant))
    return {str(v): (int(n), float(total or 0)) for v, n, total in rows}


def _split_result(
    report: ExperimentReport, revenue: dict[str, tuple[int, float]], cost: float
) -> SplitResult:
    by_arm = {c.arm: c for c in report.comparisons}
    held_n, held_rev = revenue.get("holdout", (0, 0.0))
    per_held = held_rev / held_n if held_n else None
    treated = sum(
        n for arm, (n, _) in revenue.items() if arm != "holdout" and arm in {a.name for a in report.arms}
    )
    arms = []
    for a in report.arms:
        n, rev = revenue.get(a.name, (0, 0.0))
        c = by_arm.get(a.name)
        is_held = a.name == "holdout"
        incremental = None
        if not is_held and per_held is not None and n:
            incremental = round((rev / n - per_held) * n, 2)
        arm_cost = 0.0 if is_held or not treated else cost * n / treated
        roi = (incremental - arm_cost) / arm_cost if incremental is not None and arm_cost else None
        arms.append(
            ArmResult(
                a.name,
                a.customers,
                a.conversions,
                a.rate,
                c.lift if c else None,
                c.ci_low if c else None,
                c.ci_high if c else None,
                c.p_value if c else None,
                bool(c and c.significant),
                c.warning if c else None,
                round(rev, 2),
                incremental,
                round(arm_cost, 2),
                roi,
            )
        )
    return SplitResult(report.experiment, report.control, report.method, arms)


@dataclass(frozen=True)
class JourneySummary:
    name: str
    title: str
    status: str
    version: int
    trigger: str
    active: int  # customers in it now
    entered: int  # entered in the period
    converted: int  # of those, reached the goal within its window
    revenue: float  # of those, completed orders within the goal window after entry
    updated_at: datetime
    goal: str | None = None
    goal_days: float = 7.0
    problems: list[str] = field(default_factory=list)


def journey_summaries(engine: Engine, start: datetime, end: datetime) -> list[JourneySummary]:
    """Every journey with its status, version, customers in it now, and over [start, end): the
    customers who entered, how many reached the goal within its window, and their revenue in that
    window (completed orders after entry). One statement per journey (their goals differ)."""
    out = []
    listed = list_journeys(engine)
    with engine.connect() as conn:
        dialect = conn.dialect.name
        for j in listed:
            d = current_version(conn, j.id)[1]
            revenue = (
                select(func.coalesce(func.sum(orders.c.total), 0))
                .where(
                    orders.c.customer_id == enrolments.c.customer_id,
                    orders.c.status == "completed",
                    orders.c.ordered_at >= enrolments.c.entered_at,
                    within(dialect, orders.c.ordered_at, enrolments.c.entered_at, d.goal_days),
                )
                .scalar_subquery()
            )
            converted: Any = literal(False)
            if d.goal_event:
                converted = _converted(dialect, d.goal_event, d.goal_days)
            per = (
                select(converted.label("converted"), revenue.label("revenue"))
                .where(
                    enrolments.c.journey_id == j.id,
                    enrolments.c.entered_at >= start,
                    enrolments.c.entered_at < end,
                )
                .subquery()
            )
            n, conv, total = conn.execute(
                select(func.count(), func.count().filter(per.c.converted), func.sum(per.c.revenue))
            ).one()
            out.append(
                JourneySummary(
                    j.name,
                    j.title,
                    j.status,
                    j.version,
                    j.trigger,
                    j.active,
                    int(n),
                    int(conv),
                    round(float(total or 0), 2),
                    j.updated_at,
                    d.goal_event,
                    d.goal_days,
                )
            )
    return out
