"""The outbox: every message a journey (or a person) sends is a row here first, with an
idempotency key; dispatchers claim due rows, apply the guardrails, render and hand them to the
channel's transport, recording each result.

Guardrails, checked at send time for the whole batch at once: consent for the channel
(marketing only), suppressed addresses (hard bounces), the frequency cap (marketing only), and
quiet hours in the customer's time zone (marketing only: the message waits, it is not dropped).
Transactional messages skip the cap, consent and quiet hours, never the suppression list.

Never twice: a row goes queued → claimed → sending → sent. Messages are handed over in groups
(`HANDOVER_GROUP`): one transaction records the previous group's outcomes and moves the next
group to `sending`, so a dispatcher that dies leaves `claimed` rows (never handed over: they are
queued again when the lease runs out) and at most one group of `sending` rows, which may or may
not have reached the server. Those are marked `unknown` for a person to check (`clm outbox list
--status unknown`) and are not resent, so no customer gets a message twice. (On PostgreSQL these
writes do not wait for the disk; after a restart of the database, rows claimed before it are
`unknown` too: see `_Handover`.)

One bad message stops nothing: whatever goes wrong with one message (its template, its context,
rendering, a transport that raises) fails that attempt alone; it is queued again after 2, 4, …
minutes, and failed for good after `CLM_SEND_ATTEMPTS` attempts (also when its dispatcher died
each time), with the reason. A person queues it again with `retry_message`."""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, update

from clm.auth.service import record_audit
from clm.channels.base import PERSONAL_CHANNELS, OutboundMessage, SendResult, Transport, transport
from clm.channels.templates import MessageTemplate, get_template, render
from clm.core.errors import ClmError, Conflict, InvalidInput, NotFound
from clm.core.settings import Settings, settings
from clm.core.timeutil import utcnow
from clm.core.tokens import token_digest
from clm.customers.service import set_consent
from clm.journeys import channel_choice
from clm.journeys.context import build_contexts, language, profiles, tracker
from clm.journeys.links import link_key
from clm.journeys.outbox_admin import was_released
from clm.journeys.steps import zone
from clm.journeys.tables import journey_log, journeys, outbox, suppressions
from clm.store.schema import UTCDateTime, to_db_timestamp

LEASE = timedelta(minutes=10)
# Messages handed over per transaction: the outcomes of one group are written with the next
# group's move to `sending`. A dispatcher killed mid-group leaves at most this many `sending`
# rows (marked `unknown`, never resent).
HANDOVER_GROUP = 10


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
    """After a dispatcher died: claimed rows go back to the queue (failed for good when they
    have used their attempts: a message that kills its dispatcher cannot stop all sending), an
    interrupted send becomes `unknown`. Returns (queued again, unknown)."""
    cap = settings().send_attempts
    with engine.begin() as conn:
        expired = and_(outbox.c.status == "claimed", outbox.c.lease_until < now)
        lost = 0
        if conn.dialect.name == "postgresql":
            # hand-overs are recorded without waiting for the disk: a restart of the database may
            # have lost the record of some, so what was claimed before it may have gone out
            lost = conn.execute(
                update(outbox)
                .where(expired, outbox.c.claimed_at < func.pg_postmaster_start_time())
                .values(status="unknown", lease_until=None, reason=_RESTARTED)
            ).rowcount
        conn.execute(
            update(outbox)
            .where(expired, outbox.c.attempts >= cap)
            .values(
                status="failed",
                lease_until=None,
                reason=f"gave up after {cap} attempts: the dispatcher stopped each time while it had it",
            )
        )
        back = conn.execute(update(outbox).where(expired).values(status="queued", lease_until=None)).rowcount
        unknown = conn.execute(
            update(outbox)
            .where(outbox.c.status == "sending", outbox.c.lease_until < now)
            .values(status="unknown", reason="the dispatcher stopped while the transport had it; not resent")
        ).rowcount
    return int(back or 0), int(unknown or 0) + int(lost or 0)


_RESTARTED = "the database restarted while this message was being sent; it may have gone out: not resent"
RETRYABLE = ("failed", "unknown")


def retry_message(engine: Engine, message_id: int, *, actor: str) -> dict[str, Any]:
    """Queue a failed (or unknown) message again with fresh attempts, as a person decides after
    fixing its cause; audited. Returns the message's id, status and reason."""
    with engine.begin() as conn:
        row = conn.execute(select(outbox.c.status, outbox.c.reason).where(outbox.c.id == message_id)).first()
        if row is None:
            raise NotFound(f"no message with id {message_id} in the outbox")
        reason = f"queued again by {actor} (was {row.status}: {row.reason or 'no reason recorded'})"
        done = conn.execute(
            update(outbox)
            .where(outbox.c.id == message_id, outbox.c.status.in_(RETRYABLE))
            .values(status="queued", attempts=0, not_before=utcnow(), lease_until=None, reason=reason[:2000])
        ).rowcount
        if not done:
            raise Conflict(
                f"message {message_id} is {row.status}: only failed or unknown messages can be retried"
            )
        record_audit(
            conn, actor, "outbox.retry", "outbox", str(message_id), {"was": row.status, "reason": row.reason}
        )
    return {"id": message_id, "status": "queued", "reason": reason}


def _claim(conn: Connection, now: datetime, limit: int, channel: str | None) -> list[Any]:
    # a journey's messages go out only while it is live: pausing it stops its sends at once
    live = select(journeys.c.id).where(journeys.c.status == "live")
    query = select(outbox).where(
        outbox.c.status == "queued",
        outbox.c.not_before <= now,
        or_(outbox.c.journey_id.is_(None), outbox.c.journey_id.in_(live)),
    )
    if channel:
        query = query.where(outbox.c.channel == channel)
    query = query.order_by(outbox.c.not_before, outbox.c.id).limit(limit)
    values: dict[str, Any] = {
        "status": "claimed",
        "lease_until": now + LEASE,
        "attempts": outbox.c.attempts + 1,
    }
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
        values["claimed_at"] = func.now()  # the server's clock, compared with its start by recover()
    rows = list(conn.execute(query))
    if rows:
        conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(**values))
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


def _choice_log(r: Any, outcome: str, detail: str, now: datetime) -> dict[str, Any]:
    """The trace line of a preference list's choice: the channel used and why not the others."""
    return {
        "enrolment_id": r.enrolment_id or 0,
        "journey_id": r.journey_id or 0,
        "customer_id": r.customer_id,
        "step": r.step or "",
        "action": "channel",
        "outcome": outcome[:32],
        "detail": detail,
        "at": now,
    }


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
        # the cap counts per window: one query per distinct window length
        per_window = {
            days: _sent_counts(conn, ids, now - timedelta(days=days))
            for days in {d for _, d in caps.values()}
        }
        guard = channel_choice.load(conn, rows, people, caps, per_window, cfg)

    decided: list[tuple[Any, Any, str]] = []  # (row, profile, address) to send
    later: list[dict[str, Any]] = []
    closed: list[dict[str, Any]] = []
    traced: list[dict[str, Any]] = []  # a preference list's choice, for the journey's trace
    for r in rows:
        p = people.get(r.customer_id)
        marketing = r._mapping["class"] == "marketing"
        if p is None or p.merged_into is not None:
            closed.append({"rid": r.id, "status": "skipped", "reason": "the profile was merged into another"})
            continue
        choice = channel_choice.choose(r, p, guard, cfg.webhook_url)
        # a journey's preference list: its choice goes to the journey's trace
        listed = bool((r.context or {}).get("channels")) and r.enrolment_id is not None
        if choice.channel is None or choice.address is None or choice.template is None:
            status = "suppressed" if choice.suppressed else "skipped"
            closed.append({"rid": r.id, "status": status, "reason": choice.why()})
            if listed:
                traced.append(_choice_log(r, "no channel", choice.why(), now))
            continue
        if marketing and choice.channel in PERSONAL_CHANNELS:
            # a message a person released goes out now, quiet hours or not (outbox_admin)
            until = None if was_released(r.reason) else quiet_until(now, p.timezone, quiet)
            if until is not None:
                guard.sent_now[(r.customer_id, choice.channel)] -= 1  # not sent in this batch
                later.append({"rid": r.id, "not_before": until})
                continue
        if listed:
            traced.append(_choice_log(r, f"via {choice.channel}", choice.why(), now))
        if (choice.channel, choice.template) != (r.channel, r.template):
            r = channel_choice.ChosenRow(r, choice.channel, choice.template)
        decided.append((r, p, choice.address))

    with engine.begin() as conn:
        if traced:
            conn.execute(insert(journey_log), traced)
        for r, _, _ in decided:
            if isinstance(r, channel_choice.ChosenRow):  # the row records the channel it went on
                conn.execute(
                    update(outbox).where(outbox.c.id == r.id).values(channel=r.channel, template=r.template)
                )
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


def _why(exc: BaseException) -> str:
    """The reason recorded for a message that could not be prepared or sent."""
    text = exc.message if isinstance(exc, ClmError) else f"{type(exc).__name__}: {exc}"
    return text[:1000]


def _contexts(
    engine: Engine, decided: list[tuple[Any, Any, str]], now: datetime, with_recommendations: bool
) -> list[dict[str, Any] | str]:
    """Each message's template context, or why it cannot be built: built for the whole batch at
    once, and only when that fails one by one, so one bad message (a survey that does not exist,
    say) fails alone."""
    items = [(r.customer_id, {**(r.context or {}), "key": r.key}) for r, _, _ in decided]
    people = {r.customer_id: p for r, p, _ in decided}
    try:
        built = build_contexts(engine, items, now, with_recommendations=with_recommendations, people=people)
        return [built[i] for i in range(len(items))]
    except Exception:
        out: list[dict[str, Any] | str] = []
        for item in items:
            try:
                out.append(
                    build_contexts(
                        engine, [item], now, with_recommendations=with_recommendations, people=people
                    )[0]
                )
            except Exception as exc:
                out.append(_why(exc))
        return out


def _compose(
    r: Any,
    address: str,
    template: MessageTemplate,
    context: dict[str, Any],
    lang: str,
    signing: bytes,
    cfg: Settings,
) -> tuple[OutboundMessage, str]:
    """The message for one row, rendered, with its unsubscribe and tracking links; and its token."""
    base = cfg.public_url
    marketing = r._mapping["class"] == "marketing"
    token = secrets.token_urlsafe(24)
    context["unsubscribe_url"] = f"{base}/u/{token}" if marketing else ""
    context["track"] = tracker(token, signing, base)
    rendered = render(template, context, lang, max_bytes=cfg.template_max_bytes)
    headers = {}
    if marketing and r.channel == "email":
        headers = {
            "List-Unsubscribe": f"<{base}/u/{token}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    html = rendered.html
    if html and r.channel == "email":  # the open pixel, inside the body where there is one
        pixel = f'<img src="{base}/t/o/{token}" width="1" height="1" alt="" style="display:block;border:0">'
        at = html.lower().rfind("</body>")
        html = html[:at] + pixel + html[at:] if at >= 0 else html + pixel
    data = {"customer_id": r.customer_id, "journey": context.get("journey")}
    if r.channel == "wecom":  # the staff member who sends: the step's, else the customer's own
        sender = (r.context or {}).get("sender") or (context.get("customer") or {}).get("attr", {}).get(
            "wecom_sender"
        )
        if sender:
            data["sender"] = str(sender)
    message = OutboundMessage(r.key, r.channel, address, rendered.subject, rendered.text, html, headers, data)
    return message, token


def _deliver(
    engine: Engine,
    decided: list[tuple[Any, Any, str]],
    now: datetime,
    report: DispatchReport,
    transports: dict[str, Transport],
    stop_after: int | None,
) -> None:
    """Render and hand over each message. Anything that goes wrong with one message (its
    template, its context, rendering, the transport raising) fails that message alone: it is
    queued again with a back-off until it has used its attempts, then failed for good."""
    templates: dict[str, MessageTemplate | str] = {}  # the template, or why it cannot be used
    for r, _, _ in decided:
        if r.template not in templates:
            try:
                templates[r.template] = get_template(engine, r.template)
            except Exception as exc:
                templates[r.template] = _why(exc)
    wants_recs = any(
        isinstance(t, MessageTemplate) and "recommendations" in str(t.as_dict()) for t in templates.values()
    )
    contexts = _contexts(engine, decided, now, wants_recs)
    opened: dict[str, Transport] = {}
    signing = link_key(engine)  # tracked links are signed, so /t/c/ is no open redirect
    cfg = settings()  # read once: reading the environment for every message cost 0.15 ms each
    unsendable: list[tuple[Any, str]] = []  # (row, why): recorded with the batch's last outcomes
    group: list[tuple[Any, str, OutboundMessage, Transport, dict[str, Any]]] = []  # ready to hand over
    # outcomes not recorded yet: written in the same transaction as the next group's move to
    # `sending`, so at most one group is ever in `sending`
    pending: list[tuple[Any, str, SendResult]] = []
    handover = _Handover(engine)

    withdrawn: list[tuple[Any, str]] = []  # (row, why): consent withdrawn once recorded

    def record(marks: list[dict[str, Any]]) -> None:
        failed = [p for p in pending if not p[2].ok]
        if failed:
            with engine.begin() as conn:
                for p in failed:
                    _record(conn, *p, now, report)
            withdrawn.extend((p[0], p[2].detail) for p in failed if p[2].withdrawn)
        done = [p[0].id for p in pending if p[2].ok]
        refs = [{"rid": p[0].id, "ref": p[2].ref[:100]} for p in pending if p[2].ok and p[2].ref]
        handover.write(done, now, marks, refs)
        report.sent += len(done)
        pending.clear()

    try:
        for i, (r, p, address) in enumerate(decided):
            try:
                template, context = templates[r.template], contexts[i]
                if isinstance(template, str) or isinstance(context, str):
                    raise InvalidInput(template if isinstance(template, str) else str(context))
                message, token = _compose(r, address, template, context, language(p), signing, cfg)
                sender = opened.get(r.channel) or transports.get(r.channel) or transport(r.channel)
            except Exception as exc:  # this message alone: the others go on
                unsendable.append((r, _why(exc)))
            else:
                opened[r.channel] = sender
                marks = {"rid": r.id, "lease": now + LEASE, "to": address, "subject": message.subject,
                         "uh": token_digest(token)}  # fmt: skip
                group.append((r, address, message, sender, marks))
            if group and (len(group) == HANDOVER_GROUP or i == len(decided) - 1):
                record([g[4] for g in group])
                for r_, address_, message_, sender_, _ in group:
                    try:
                        result = sender_.send(message_)
                    except Exception as exc:  # a transport that raises: this attempt failed
                        result = SendResult(False, detail=f"the {r_.channel} transport failed: {_why(exc)}")
                        _close_quietly(sender_)
                    pending.append((r_, address_, result))
                    sent_so_far = report.sent + sum(1 for p in pending if p[2].ok)
                    if stop_after is not None and result.ok and sent_so_far >= stop_after:
                        # a crash at the worst moment: the server has it, the outbox does not know
                        import os
                        import signal

                        os.kill(os.getpid(), signal.SIGKILL)
                group = []
        if pending:
            record([])
    finally:
        handover.close()
        if pending or unsendable:
            with engine.begin() as conn:
                for p in pending:
                    _record(conn, *p, now, report)
                for r, why in unsendable:
                    _attempt_failed(conn, r, why, now, report)
            withdrawn.extend((p[0], p[2].detail) for p in pending if not p[2].ok and p[2].withdrawn)
        for sender in opened.values():
            _close_quietly(sender)
        for r, why in withdrawn:  # the provider says the person refused: as an unsubscribe would
            set_consent(engine, r.customer_id, r.channel, False, source=f"{r.channel}: {why}"[:200])


def _close_quietly(sender: Transport) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection: nothing more to do with it
        sender.close()


class _Handover:
    """The hand-over writes, straight to the driver: one transaction per group of messages
    holding the previous group's outcomes and this group's move to `sending` (at a thousand
    messages a second, SQLAlchemy's per-statement work and a transaction per message cost more
    than sending). On PostgreSQL they do not wait for the disk (synchronous_commit off): a
    dispatcher that dies loses none of them (the server has them); a database that restarts may
    lose the last few, so recover() makes every message claimed before its restart `unknown`,
    never resent."""

    _SENDING = (
        "UPDATE outbox SET status = 'sending', lease_until = {lease}, to_address = {to}, "
        "subject = {subject}, unsubscribe_hash = {uh} WHERE id = {rid}"
    )
    _SENT = (
        "UPDATE outbox SET status = 'sent', sent_at = {at}, reason = NULL, lease_until = NULL "
        "WHERE id IN ({ids})"
    )

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        self.raw = engine.raw_connection()
        self.postgres = self.dialect == "postgresql"
        if self.postgres:
            self.raw.rollback()
            self.raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        self.cursor = self.raw.cursor()
        if self.postgres:
            self.cursor.execute("SET synchronous_commit TO off")
        self.style = "%({})s" if self.postgres else ":{}"
        names = ("rid", "lease", "to", "subject", "uh")
        self.sending_sql = self._SENDING.format(**{k: self.style.format(k) for k in names})

    def _value(self, v: Any) -> Any:
        return to_db_timestamp(v, self.dialect) if isinstance(v, datetime) else v

    def write(
        self,
        sent: list[int],
        at: datetime,
        sending: list[dict[str, Any]],
        refs: list[dict[str, Any]] | None = None,
    ) -> None:
        """In one transaction: these messages were sent (with the provider's id of those that
        have one, `refs`: rid, ref); these are being handed over now."""
        if not sent and not sending:
            return
        self.cursor.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
        try:
            if sent:
                params = {f"i{n}": row_id for n, row_id in enumerate(sent)} | {"at": self._value(at)}
                ids = ", ".join(self.style.format(f"i{n}") for n in range(len(sent)))
                self.cursor.execute(self._SENT.format(at=self.style.format("at"), ids=ids), params)
            if refs:
                ref_sql = "UPDATE outbox SET provider_ref = {ref} WHERE id = {rid}"
                self.cursor.executemany(
                    ref_sql.format(ref=self.style.format("ref"), rid=self.style.format("rid")), refs
                )
            if sending:
                rows = [{k: self._value(v) for k, v in marks.items()} for marks in sending]
                self.cursor.executemany(self.sending_sql, rows)
            self.cursor.execute("COMMIT")
        except BaseException:
            self.cursor.execute("ROLLBACK")
            raise

    def close(self) -> None:
        try:
            if self.postgres:
                self.cursor.execute("RESET synchronous_commit")
                self.raw.driver_connection.autocommit = False  # type: ignore[union-attr]
            self.cursor.close()
        finally:
            self.raw.close()


def _backoff(tried: int) -> timedelta:
    """Wait before the next attempt: 2, 4, 8 … minutes."""
    return timedelta(minutes=2**tried)


def _attempt_failed(conn: Connection, r: Any, why: str, now: datetime, report: DispatchReport) -> None:
    """One attempt of this message failed: again later, or failed for good after its last."""
    tried = r.attempts + 1  # the claim counted this attempt
    cap = settings().send_attempts
    if tried >= cap:
        _finish(conn, r.id, status="failed", reason=f"gave up after {tried} attempts: {why}"[:2000])
        report.failed += 1
        report.note("failed")
    else:
        _finish(
            conn,
            r.id,
            status="queued",
            not_before=now + _backoff(tried),
            reason=f"attempt {tried} of {cap} failed: {why}"[:2000],
        )
        report.retried += 1


def _record(
    conn: Connection, r: Any, address: str, result: SendResult, now: datetime, report: DispatchReport
) -> None:
    if result.ok:
        _finish(conn, r.id, status="sent", sent_at=now, reason=None, provider_ref=result.ref[:100] or None)
        report.sent += 1
    elif result.permanent:
        rest = channel_choice.remaining(r)
        if rest:  # a preference list falls back to its next channel at once
            _, templates = channel_choice.candidates(r)
            why = f"{r.channel} failed: {result.detail}; trying {', '.join(rest)}"[:2000]
            context = {**(r.context or {}), "channels": rest, "templates": {c: templates[c] for c in rest}}
            _finish(conn, r.id, status="queued", attempts=0, not_before=now, reason=why, context=context,
                    channel=rest[0], template=templates[rest[0]])  # fmt: skip
            if r.enrolment_id:
                conn.execute(insert(journey_log).values(_choice_log(r, f"{r.channel} failed", why, now)))
            report.retried += 1
        else:
            _finish(conn, r.id, status="failed", reason=result.detail)
            report.failed += 1
        if result.bounce and r.channel in PERSONAL_CHANNELS:
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
    else:
        _attempt_failed(conn, r, result.detail, now, report)
