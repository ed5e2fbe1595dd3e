"""The outbox: every message a journey (or a person) sends is a row here first, with an
idempotency key; dispatchers claim due rows, apply the guardrails, render and hand them to the
channel's transport, recording each result.

Guardrails, checked at send time for the whole batch at once: consent for the channel
(marketing only), suppressed addresses (hard bounces), the frequency cap (marketing only), and
quiet hours in the customer's time zone (marketing only: the message waits, it is not dropped).
Transactional messages skip the cap, consent and quiet hours, never the suppression list.

Never twice: a row goes queued → claimed → sending → sent. Each message's outcome is committed
together with the next message's move to `sending` (one commit per message), so a dispatcher
that dies leaves `claimed` rows (never handed over: they are queued again when the lease runs
out) and at most one `sending` row, which may or may not have reached the server. That one is
marked `unknown` for a person to check (`clm outbox list --status unknown`) and is not resent, so
no customer gets a message twice."""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, select, update

from clm.channels.base import OutboundMessage, SendResult, Transport, transport
from clm.channels.templates import MessageTemplate, get_template, render
from clm.core.errors import ClmError, InvalidInput
from clm.core.settings import settings
from clm.core.timeutil import utcnow
from clm.core.tokens import token_digest
from clm.customers.tables import consents
from clm.journeys.context import build_contexts, language, profiles, tracker
from clm.journeys.links import link_key
from clm.journeys.steps import zone
from clm.journeys.tables import outbox, suppressions
from clm.store.schema import UTCDateTime, to_db_timestamp

LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 5
CAPPED_CHANNELS = ("email", "sms")


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    suppressed: int = 0
    deferred: int = 0
    failed: int = 0
    retried: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def note(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def parse_cap(text: str) -> dict[str, tuple[int, float]]:
    """'3/7d' or 'email=3/7d,sms=1/7d' → channel → (messages, days); '*' for every channel."""
    if text.strip().lower() in ("", "off", "none"):
        return {}
    out = {}
    for part in text.split(","):
        channel, _, rule = part.strip().rpartition("=")
        m = re.fullmatch(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*d", rule.strip())
        if not m:
            raise InvalidInput(f"{part!r} is not N/Dd (e.g. 3/7d)", "CLM_FREQUENCY_CAP")
        out[channel.strip() or "*"] = (int(m.group(1)), float(m.group(2)))
    return out


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    if text.strip().lower() in ("", "off", "none"):
        return None
    m = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text.strip())
    if not m:
        raise InvalidInput(f"{text!r} is not HH:MM-HH:MM", "CLM_QUIET_HOURS")
    a, b, c, d = (int(x) for x in m.groups())
    return time(a, b), time(c, d)


def quiet_until(now: datetime, tz_name: str | None, quiet: tuple[time, time] | None) -> datetime | None:
    """When the quiet hours the customer is in end (UTC), or None when it is not quiet there."""
    if quiet is None:
        return None
    start, end = quiet
    tz = zone(tz_name)
    local = now.astimezone(tz)
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tz).astimezone(now.tzinfo)


def queue_message(
    engine: Engine,
    customer_id: int,
    template: str,
    *,
    key: str,
    channel: str = "email",
    kind: str = "transactional",
    context: dict[str, Any] | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Put one message in the outbox outside a journey (an order confirmation, a survey);
    returns False when a message with this key was queued before."""
    now = utcnow()
    with engine.begin() as conn:
        if conn.execute(select(outbox.c.id).where(outbox.c.key == key)).first():
            return False
        conn.execute(
            insert(outbox).values(
                key=key,
                customer_id=customer_id,
                channel=channel,
                **{"class": kind},
                template=template,
                context=context or {},
                status="queued",
                not_before=not_before or now,
                attempts=0,
                created_at=now,
            )
        )
    return True


def recover(engine: Engine, now: datetime) -> tuple[int, int]:
    """After a dispatcher died: claimed rows go back to the queue, an interrupted send becomes `unknown`."""
    with engine.begin() as conn:
        expired = outbox.c.lease_until < now
        back = conn.execute(
            update(outbox)
            .where(outbox.c.status == "claimed", expired)
            .values(status="queued", lease_until=None)
        ).rowcount
        unknown = conn.execute(
            update(outbox)
            .where(outbox.c.status == "sending", expired)
            .values(status="unknown", reason="the dispatcher stopped while the transport had it; not resent")
        ).rowcount
    return int(back or 0), int(unknown or 0)


def _claim(conn: Connection, now: datetime, limit: int, channel: str | None) -> list[Any]:
    query = select(outbox).where(outbox.c.status == "queued", outbox.c.not_before <= now)
    if channel:
        query = query.where(outbox.c.channel == channel)
    query = query.order_by(outbox.c.not_before, outbox.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(conn.execute(query))
    if rows:
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_([r.id for r in rows]))
            .values(status="claimed", lease_until=now + LEASE, attempts=outbox.c.attempts + 1)
        )
    return rows


def _sent_counts(conn: Connection, customer_ids: list[int], since: datetime) -> dict[tuple[int, str], int]:
    query = (
        select(outbox.c.customer_id, outbox.c.channel, func.count())
        .where(
            outbox.c.customer_id.in_(customer_ids),
            outbox.c.status.in_(("sent", "sending", "unknown")),
            outbox.c["class"] == "marketing",
            outbox.c.sent_at > since,
        )
        .group_by(outbox.c.customer_id, outbox.c.channel)
    )
    return {(cid, ch): int(n) for cid, ch, n in conn.execute(query)}


def _address(channel: str, profile: Any, context: dict[str, Any]) -> str | None:
    if channel == "email":
        return profile.email
    if channel == "sms":
        return profile.phone
    return str(context.get("url") or settings().webhook_url or "") or None


def _finish(conn: Connection, row_id: int, **values: Any) -> None:
    conn.execute(update(outbox).where(outbox.c.id == row_id).values(**{"lease_until": None, **values}))


def dispatch(
    engine: Engine,
    now: datetime,
    *,
    batch: int = 500,
    channel: str | None = None,
    transports: dict[str, Transport] | None = None,
    stop_after: int | None = None,
) -> DispatchReport:
    """Deliver one batch of due messages; returns what happened to them. `stop_after` ends the
    process (as a crash would) after that many sends: the test of "killed mid-batch"."""
    report = DispatchReport()
    with engine.begin() as conn:
        rows = _claim(conn, now, batch, channel)
    report.claimed = len(rows)
    if not rows:
        return report
    cfg = settings()
    caps = parse_cap(cfg.frequency_cap)
    quiet = parse_quiet_hours(cfg.quiet_hours)
    people = profiles(engine, [r.customer_id for r in rows])
    ids = sorted(people)
    with engine.connect() as conn:
        granted = {
            (cid, ch): ok
            for cid, ch, ok in conn.execute(
                select(consents.c.customer_id, consents.c.channel, consents.c.granted).where(
                    consents.c.customer_id.in_(ids)
                )
            )
        }
        blocked = {
            (ch, addr)
            for ch, addr in conn.execute(
                select(suppressions.c.channel, suppressions.c.address).where(
                    suppressions.c.address.in_(
                        [p.email for p in people.values() if p.email]
                        + [p.phone for p in people.values() if p.phone]
                    )
                )
            )
        }
        # the cap counts per window: one query per distinct window length
        per_window = {
            days: _sent_counts(conn, ids, now - timedelta(days=days))
            for days in {d for _, d in caps.values()}
        }

    decided: list[tuple[Any, Any, str]] = []  # (row, profile, address) to send
    later: list[dict[str, Any]] = []
    closed: list[dict[str, Any]] = []
    sent_now: dict[tuple[int, str], int] = defaultdict(int)
    for r in rows:
        p = people.get(r.customer_id)
        marketing = r._mapping["class"] == "marketing"
        if p is None or p.merged_into is not None:
            closed.append({"rid": r.id, "status": "skipped", "reason": "the profile was merged into another"})
            continue
        address = _address(r.channel, p, r.context or {})
        if not address:
            closed.append(
                {"rid": r.id, "status": "skipped", "reason": f"no {r.channel} address on the profile"}
            )
            continue
        if (r.channel, address) in blocked:
            closed.append(
                {"rid": r.id, "status": "suppressed", "reason": f"{address} is suppressed (bounced)"}
            )
            continue
        if marketing and r.channel in CAPPED_CHANNELS:
            if not granted.get((r.customer_id, r.channel), False):
                closed.append(
                    {"rid": r.id, "status": "skipped", "reason": f"no {r.channel} marketing consent"}
                )
                continue
            rule = caps.get(r.channel) or caps.get("*")
            if rule is not None:
                limit, days = rule
                used = (
                    per_window[days].get((r.customer_id, r.channel), 0) + sent_now[(r.customer_id, r.channel)]
                )
                if used >= limit:
                    why = f"frequency cap: {used} {r.channel} messages in {days:g} days (limit {limit})"
                    closed.append({"rid": r.id, "status": "skipped", "reason": why})
                    continue
            until = quiet_until(now, p.timezone, quiet)
            if until is not None:
                later.append({"rid": r.id, "not_before": until})
                continue
            sent_now[(r.customer_id, r.channel)] += 1
        decided.append((r, p, address))

    with engine.begin() as conn:
        for c in closed:
            _finish(conn, c["rid"], status=c["status"], reason=c["reason"])
            report.note(c["reason"].split(":")[0])
            if c["status"] == "suppressed":
                report.suppressed += 1
            else:
                report.skipped += 1
        if later:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == bindparam("rid"))
                .values(
                    status="queued",
                    lease_until=None,
                    attempts=outbox.c.attempts - 1,
                    not_before=bindparam("not_before", type_=UTCDateTime),
                    reason="quiet hours in the customer's time zone",
                ),
                later,
            )
            report.deferred = len(later)
    if decided:
        _deliver(engine, decided, now, report, transports or {}, stop_after)
    return report


def _deliver(
    engine: Engine,
    decided: list[tuple[Any, Any, str]],
    now: datetime,
    report: DispatchReport,
    transports: dict[str, Transport],
    stop_after: int | None,
) -> None:
    templates: dict[str, MessageTemplate | None] = {}
    for r, _, _ in decided:
        if r.template not in templates:
            try:
                templates[r.template] = get_template(engine, r.template)
            except ClmError:
                templates[r.template] = None
    wants_recs = any(t is not None and "recommendations" in str(t.as_dict()) for t in templates.values())
    contexts = build_contexts(
        engine,
        [(r.customer_id, {**(r.context or {}), "key": r.key}) for r, _, _ in decided],
        now,
        with_recommendations=wants_recs,
        people={r.customer_id: p for r, p, _ in decided},
    )
    opened: dict[str, Transport] = {}
    base = settings().public_url
    signing = link_key(engine)  # tracked links are signed, so /t/c/ is no open redirect
    conn = engine.connect()  # one connection for the one small commit each message makes
    # The outcome of the message just sent is committed together with the mark of the next one
    # as `sending`: one commit per message, and still never more than one row in `sending`.
    pending: tuple[Any, str, SendResult] | None = None

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            _record(conn, *pending, now, report)
            pending = None

    try:
        for i, (r, p, address) in enumerate(decided):
            template = templates[r.template]
            if template is None:
                with conn.begin():
                    flush()
                    _finish(conn, r.id, status="failed", reason=f"no template named {r.template!r}")
                report.failed += 1
                continue
            marketing = r._mapping["class"] == "marketing"
            token = secrets.token_urlsafe(24)
            context = contexts[i]
            context["unsubscribe_url"] = f"{base}/u/{token}" if marketing else ""
            context["track"] = tracker(token, signing)
            try:
                rendered = render(template, context, language(p))
            except InvalidInput as exc:
                with conn.begin():
                    flush()
                    _finish(conn, r.id, status="failed", reason=exc.message)
                report.failed += 1
                continue
            headers = {}
            if marketing and r.channel == "email":
                headers = {
                    "List-Unsubscribe": f"<{base}/u/{token}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                }
            html = rendered.html
            if html and r.channel == "email":
                html += f'<img src="{base}/t/o/{token}" width="1" height="1" alt="">'
            message = OutboundMessage(
                r.key,
                r.channel,
                address,
                rendered.subject,
                rendered.text,
                html,
                headers,
                {"customer_id": r.customer_id, "journey": context.get("journey")},
            )
            sender = opened.get(r.channel) or transports.get(r.channel)
            if sender is None:
                sender = transport(r.channel)
            if r.channel not in opened:
                opened[r.channel] = sender
            marks = {
                "rid": r.id,
                "lease": now + LEASE,
                "to": address,
                "subject": rendered.subject,
                "uh": token_digest(token),
            }
            with conn.begin():
                flush()
                _mark(conn, _SENDING_SQL, marks)
            result: SendResult = sender.send(message)
            pending = (r, address, result)
            if stop_after is not None and result.ok and report.sent + 1 >= stop_after:
                # a crash at the worst moment: the server has the message, the outbox does not know
                import os
                import signal

                os.kill(os.getpid(), signal.SIGKILL)
        with conn.begin():
            flush()
    finally:
        if pending is not None:
            with conn.begin():
                flush()
        conn.close()
        for sender in opened.values():
            sender.close()


# The two statements every message runs, as plain SQL straight to the driver: at a thousand
# messages a second, SQLAlchemy's per-statement work was a fifth of the cost of sending.
_SENDING_SQL = (
    "UPDATE outbox SET status = 'sending', lease_until = {lease}, to_address = {to}, subject = {subject}, "
    "unsubscribe_hash = {uh} WHERE id = {rid}"
)
_SENT_SQL = (
    "UPDATE outbox SET status = 'sent', sent_at = {at}, reason = NULL, lease_until = NULL WHERE id = {rid}"
)


def _mark(conn: Connection, sql: str, params: dict[str, Any]) -> None:
    dialect = conn.dialect.name
    style = "%({})s" if dialect == "postgresql" else ":{}"
    values = {k: to_db_timestamp(v, dialect) if isinstance(v, datetime) else v for k, v in params.items()}
    conn.exec_driver_sql(sql.format(**{k: style.format(k) for k in params}), values)


def _record(
    conn: Connection, r: Any, address: str, result: SendResult, now: datetime, report: DispatchReport
) -> None:
    if result.ok:
        _mark(conn, _SENT_SQL, {"rid": r.id, "at": now})
        report.sent += 1
    elif result.permanent:
        _finish(conn, r.id, status="failed", reason=result.detail)
        report.failed += 1
        if result.bounce and r.channel in CAPPED_CHANNELS:
            exists_ = conn.execute(
                select(suppressions.c.address).where(
                    and_(suppressions.c.channel == r.channel, suppressions.c.address == address)
                )
            ).first()
            if exists_ is None:
                conn.execute(
                    insert(suppressions).values(
                        channel=r.channel, address=address, reason=result.detail, at=now
                    )
                )
    elif r.attempts >= MAX_ATTEMPTS:
        _finish(conn, r.id, status="failed", reason=f"gave up after {r.attempts} attempts: {result.detail}")
        report.failed += 1
    else:
        backoff = timedelta(minutes=2 ** max(0, r.attempts))
        _finish(conn, r.id, status="queued", not_before=now + backoff, reason=result.detail)
        report.retried += 1
