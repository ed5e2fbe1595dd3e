"""Running journeys: due steps claimed and run in batches, grouped by (journey version, step) so
each group is a handful of statements; waits for an event resolved and exit conditions applied
set-based. A batch is one transaction: its steps, their messages in the outbox, tasks and
attribute changes commit together or not at all, so a worker killed mid-batch leaves nothing
half done and the next worker runs the batch again. On PostgreSQL the batch's rows are claimed
with FOR UPDATE SKIP LOCKED, so workers on several machines never run the same step."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, and_, bindparam, exists, insert, literal, select, update

from clm.core.settings import settings
from clm.customers.service import set_attributes
from clm.customers.tables import customers
from clm.events.tables import events
from clm.feedback.tasks import create_task_in
from clm.journeys.definition import JourneyDefinition, Step
from clm.journeys.store import current_version, version_definition
from clm.journeys.tables import enrolments, journey_log, journeys, outbox
from clm.segments.service import customers_matching
from clm.store.schema import UTCDateTime

BATCH = 2_000
LIVE = ("active", "waiting")


@dataclass
class _Batch:
    """What one batch of steps does, written at the end in a few statements."""

    moves: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    attributes: dict[int, dict[str, Any]] = field(default_factory=dict)
    journeys: set[str] = field(default_factory=set)  # those that set attributes (the audit's actor)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or settings().default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings().default_timezone)


def next_local(now: datetime, hhmm: str, tz: ZoneInfo) -> datetime:
    """The next moment (after now) the customer's clock shows hh:mm, in UTC."""
    hh, mm = (int(x) for x in hhmm.split(":"))
    local = now.astimezone(tz)
    target = datetime.combine(local.date(), time(hh, mm), tz)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), time(hh, mm), tz)
    return target.astimezone(now.tzinfo)


def arm_of(experiment: str, customer_id: int, arms: dict[str, float], holdout: float) -> str:
    """A sticky random arm: the same customer lands in the same arm of an experiment every time."""
    digest = hashlib.sha256(f"{experiment}:{customer_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    total = sum(arms.values()) + holdout
    point = u * total
    for name, share in arms.items():
        if point < share:
            return name
        point -= share
    return "holdout"


def _move(row: Any, now: datetime, target: str | None, **changes: Any) -> dict[str, Any]:
    done = target is None
    return {
        "eid": row.id,
        "state": changes.get("state", "done" if done else "active"),
        "step": changes.get("step", target),
        "due_at": changes.get("due_at", None if done else now),
        "since": now,
        "visits": row.visits + 1,
        "variant": changes.get("variant", row.variant),
        "wait_event": changes.get("wait_event"),
        "finished_at": now if done or changes.get("state") == "done" else None,
        "exit_reason": changes.get("exit_reason", "completed" if done else None),
    }


def _log(row: Any, step: str, action: str, outcome: str, detail: str, now: datetime) -> dict[str, Any]:
    return {
        "enrolment_id": row.id,
        "journey_id": row.journey_id,
        "customer_id": row.customer_id,
        "step": step,
        "action": action,
        "outcome": outcome,
        "detail": detail,
        "at": now,
    }


def _run_group(
    conn: Connection, d: JourneyDefinition, step: Step, rows: list[Any], now: datetime, out: _Batch
) -> None:
    a = step.args
    if step.action == "send":
        for r in rows:
            out.messages.append(
                {
                    "key": f"j{r.journey_id}:e{r.id}:{r.visits}",
                    "customer_id": r.customer_id,
                    "journey_id": r.journey_id,
                    "enrolment_id": r.id,
                    "step": step.id,
                    "channel": a["channel"],
                    "class": a["class"],
                    "template": a["template"],
                    "context": {
                        "event": r.context or {},
                        "journey": d.name,
                        "coupon_campaign": a.get("coupon"),
                        "survey": a.get("survey"),
                        "variant": r.variant,
                        # a preference list: the dispatcher picks the channel at send time
                        **{k: a[k] for k in ("channels", "templates", "sender") if a.get(k)},
                    },
                    "status": "queued",
                    "not_before": now,
                    "attempts": 0,
                    "created_at": now,
                }
            )
            out.moves.append(_move(r, now, step.next))
            how = " › ".join(a["channels"]) if "channels" in a else f"{a['channel']} {a['template']}"
            out.logs.append(_log(r, step.id, "send", "queued", how, now))
    elif step.action == "wait" and "event" in a:
        for r in rows:
            until = now + timedelta(days=a["timeout_days"])
            out.moves.append(_move(r, now, step.id, state="waiting", due_at=until, wait_event=a["event"]))
            out.logs.append(
                _log(r, step.id, "wait", "waiting", f"for {a['event']} until {until:%Y-%m-%d %H:%M}", now)
            )
    elif step.action == "wait":
        zones = {}
        if "until_local" in a:
            ids = [r.customer_id for r in rows]
            zones = dict(
                conn.execute(
                    select(customers.c.id, customers.c.timezone).where(customers.c.id.in_(ids))
                ).all()
            )
        for r in rows:
            due = (
                next_local(now, a["until_local"], zone(zones.get(r.customer_id)))
                if zones
                else now + timedelta(days=a["days"])
            )
            if step.next is None:
                out.moves.append(_move(r, now, None))
            else:
                out.moves.append(_move(r, now, step.next, due_at=due))
            out.logs.append(
                _log(r, step.id, "wait", "scheduled", f"next step at {due:%Y-%m-%d %H:%M} UTC", now)
            )
    elif step.action == "branch":
        matched = set(customers_matching(conn, a["if"], [r.customer_id for r in rows], as_of=now))
        for r in rows:
            yes = r.customer_id in matched
            target = a.get("then", step.next) if yes else a.get("else", step.next)
            out.moves.append(_move(r, now, target))
            out.logs.append(_log(r, step.id, "branch", "then" if yes else "else", a["if"], now))
    elif step.action == "split":
        for r in rows:
            arm = arm_of(a["name"], r.customer_id, a["arms"], a["holdout"])
            if arm == "holdout":
                out.moves.append(_move(r, now, None, variant="holdout", exit_reason="holdout"))
                out.logs.append(
                    _log(r, step.id, "split", "holdout", f"{a['name']}: holdout, receives nothing", now)
                )
            else:
                out.moves.append(_move(r, now, a["goto"].get(arm, step.next), variant=arm))
                out.logs.append(_log(r, step.id, "split", arm, f"{a['name']}: arm {arm}", now))
    elif step.action == "update":
        out.journeys.add(d.name)
        for r in rows:
            out.attributes.setdefault(r.customer_id, {})[a["attribute"]] = a.get("value")
            out.moves.append(_move(r, now, step.next))
            out.logs.append(_log(r, step.id, "update", "set", f"{a['attribute']} = {a.get('value')!r}", now))
    elif step.action == "task":
        for r in rows:
            task_id = create_task_in(
                conn,
                r.customer_id,
                a["title"],
                due_at=now + timedelta(days=float(a.get("due_days", 2))),
                notes=str(a.get("notes", "")),
                assignee=a.get("assignee"),
                source="journey",
                reference=f"journey:e{r.id}:{r.visits}",
                created_by=f"journey:{d.name}",
            )
            out.moves.append(_move(r, now, step.next))
            out.logs.append(_log(r, step.id, "task", "created", f"task {task_id}: {a['title']}", now))
    else:  # exit
        for r in rows:
            out.moves.append(_move(r, now, None, exit_reason=str(a.get("reason", "exit step"))))
            out.logs.append(_log(r, step.id, "exit", "done", str(a.get("reason", "exit step")), now))


def _claim(conn: Connection, now: datetime, limit: int) -> list[Any]:
    query = (
        select(enrolments)
        .where(
            enrolments.c.state == "active",
            enrolments.c.due_at <= now,
            enrolments.c.journey_id.in_(select(journeys.c.id).where(journeys.c.status == "live")),
        )
        .order_by(enrolments.c.due_at, enrolments.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=enrolments)
    return list(conn.execute(query))


def _write(conn: Connection, out: _Batch) -> None:
    if out.messages:
        conn.execute(insert(outbox), out.messages)
    if out.moves:
        conn.execute(
            update(enrolments)
            .where(enrolments.c.id == bindparam("eid"))
            .values(
                state=bindparam("state"),
                step=bindparam("step"),
                due_at=bindparam("due_at", type_=UTCDateTime),
                since=bindparam("since", type_=UTCDateTime),
                visits=bindparam("visits"),
                variant=bindparam("variant"),
                wait_event=bindparam("wait_event"),
                finished_at=bindparam("finished_at", type_=UTCDateTime),
                exit_reason=bindparam("exit_reason"),
            ),
            out.moves,
        )
    if out.logs:
        conn.execute(insert(journey_log), out.logs)
    if out.attributes:  # the customers domain writes its table: it locks the profiles first
        set_attributes(conn, out.attributes, actor=f"journeys:{','.join(sorted(out.journeys))}"[:200])


def run_steps(engine: Engine, now: datetime, batch: int = BATCH, rounds: int = 50) -> int:
    """Run every due step (and the steps they make due at once), batch by batch; returns steps run."""
    done = 0
    for _ in range(rounds):
        with engine.begin() as conn:
            rows = _claim(conn, now, batch)
            if not rows:
                break
            groups: dict[tuple[int, str], list[Any]] = defaultdict(list)
            for r in rows:
                groups[(r.version_id, r.step)].append(r)
            out = _Batch()
            for (version_id, step_id), members in groups.items():
                d = version_definition(conn, version_id)
                _run_group(conn, d, d.step(step_id), members, now, out)
            _write(conn, out)
            done += len(rows)
    return done


def resolve_waits(engine: Engine, now: datetime) -> int:
    """Customers waiting for an event: on to `then` when it happened, to `timeout` when time ran out."""
    moved = 0
    with engine.begin() as conn:
        pairs = conn.execute(
            select(enrolments.c.version_id, enrolments.c.step)
            .where(enrolments.c.state == "waiting")
            .distinct()
        ).all()
        for version_id, step_id in pairs:
            step = version_definition(conn, version_id).step(step_id)
            waiting = and_(
                enrolments.c.state == "waiting",
                enrolments.c.version_id == version_id,
                enrolments.c.step == step_id,
            )
            happened = exists().where(
                events.c.customer_id == enrolments.c.customer_id,
                events.c.type == enrolments.c.wait_event,
                events.c.occurred_at >= enrolments.c.since,
            )
            for condition, target, outcome in (
                (happened, step.args.get("then", step.next), "event"),
                (enrolments.c.due_at <= now, step.args.get("timeout", step.next), "timeout"),
            ):
                moved += _resolve(conn, and_(waiting, condition), step_id, target, outcome, now)
    return moved


def _resolve(
    conn: Connection, where: Any, step_id: str, target: str | None, outcome: str, now: datetime
) -> int:
    conn.execute(
        insert(journey_log).from_select(
            ["enrolment_id", "journey_id", "customer_id", "step", "action", "outcome", "detail", "at"],
            select(
                enrolments.c.id,
                enrolments.c.journey_id,
                enrolments.c.customer_id,
                literal(step_id),
                literal("wait"),
                literal(outcome),
                literal(f"→ {target or 'end'}"),
                literal(now, UTCDateTime),
            ).where(where),
        )
    )
    values: dict[str, Any] = {"wait_event": None, "since": now, "visits": enrolments.c.visits + 1}
    if target is None:
        values.update(state="done", step=None, due_at=None, finished_at=now, exit_reason="completed")
    else:
        values.update(state="active", step=target, due_at=now)
    return conn.execute(update(enrolments).where(where).values(**values)).rowcount or 0


def apply_exits(engine: Engine, now: datetime) -> int:
    """Customers who did what ends a journey (e.g. bought) leave it, and their queued messages are dropped."""
    left = 0
    with engine.begin() as conn:
        live = conn.execute(select(journeys.c.id).where(journeys.c.status == "live")).scalars().all()
        for journey_id in live:
            exit_event = _exit_event(conn, journey_id)
            if not exit_event:
                continue
            reason = f"exit: {exit_event}"
            where = and_(
                enrolments.c.journey_id == journey_id,
                enrolments.c.state.in_(LIVE),
                exists().where(
                    events.c.customer_id == enrolments.c.customer_id,
                    events.c.type == exit_event,
                    events.c.occurred_at >= enrolments.c.entered_at,
                ),
            )
            conn.execute(
                insert(journey_log).from_select(
                    [
                        "enrolment_id",
                        "journey_id",
                        "customer_id",
                        "step",
                        "action",
                        "outcome",
                        "detail",
                        "at",
                    ],
                    select(
                        enrolments.c.id,
                        enrolments.c.journey_id,
                        enrolments.c.customer_id,
                        enrolments.c.step,
                        literal("exit"),
                        literal("exited"),
                        literal(f"{exit_event} happened: the customer leaves the journey"),
                        literal(now, UTCDateTime),
                    ).where(where),
                )
            )
            ids = select(enrolments.c.id).where(where).scalar_subquery()
            conn.execute(
                update(outbox)
                .where(outbox.c.status == "queued", outbox.c.enrolment_id.in_(ids))
                .values(status="skipped", reason=f"the customer left the journey ({exit_event})")
            )
            left += (
                conn.execute(
                    update(enrolments)
                    .where(where)
                    .values(state="exited", exit_reason=reason, finished_at=now, due_at=None, wait_event=None)
                ).rowcount
                or 0
            )
    return left


def _exit_event(conn: Connection, journey_id: int) -> str | None:
    return current_version(conn, journey_id)[1].exit_event
