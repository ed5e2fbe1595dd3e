"""Which channel a message goes on, and why not the others.

A message names one channel, or a preference list (`channels: [wechat, sms, email]`: WeChat if we
have an OpenID and consent, else SMS, else email). At send time each channel in order is checked
against the same guardrails, shared by every channel that reaches a person (email, SMS, WeChat,
WeCom): an address (email and phone from the profile; WeChat the customer's OpenID for the
configured Official Account, CLM_WECHAT_APP_ID; WeCom their external_userid), the suppression
list, and for marketing messages consent for that channel and the frequency cap — per channel
(`email=3/7d`, `*` for each channel alike) and over all channels together (`total=5/7d`). The first
channel that passes is used; the reasons the others were passed over go to the journey's trace.
Quiet hours are the customer's whichever channel is chosen (see `outbox.dispatch`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from clm.channels.base import PERSONAL_CHANNELS
from clm.core.settings import Settings
from clm.customers.tables import consents, customer_identities
from clm.journeys.tables import suppressions

TOTAL = "total"  # the key of the cap over all channels together in CLM_FREQUENCY_CAP


@dataclass
class Guardrails:
    """What one dispatch batch knows about its customers, read in a few queries."""

    granted: dict[tuple[int, str], bool]
    blocked: set[tuple[str, str]]
    identities: dict[tuple[int, str], str]  # (customer, wechat | wecom) -> address
    caps: dict[str, tuple[int, float]]
    per_window: dict[float, dict[tuple[int, str], int]]  # days -> (customer, channel) -> sent
    wechat_app_id: str | None
    sent_now: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class Choice:
    channel: str | None  # None: no channel passed
    template: str | None
    address: str | None
    passed_over: list[str]  # "wechat: no OpenID for wx…", in the order tried
    suppressed: bool = False  # the (only) channel's address is suppressed

    def why(self) -> str:
        """The trace's account: '… → sms', or why nothing could be sent."""
        skipped = "; ".join(self.passed_over)
        if self.channel is None:
            return skipped
        return f"{skipped} → {self.channel}" if skipped else self.channel


def candidates(row: Any) -> tuple[list[str], dict[str, str]]:
    """The channels to try for an outbox row, in order, and the template for each."""
    context = row.context or {}
    channels = list(context.get("channels") or [row.channel])
    templates = dict(context.get("templates") or {row.channel: row.template})
    return channels, templates


def load(
    conn: Connection,
    rows: Iterable[Any],
    people: dict[int, Any],
    caps: dict[str, tuple[int, float]],
    per_window: dict[float, dict[tuple[int, str], int]],
    cfg: Settings,
) -> Guardrails:
    ids = sorted(people)
    wanted = {ch for r in rows for ch in candidates(r)[0]}
    granted = {
        (cid, ch): ok
        for cid, ch, ok in conn.execute(
            select(consents.c.customer_id, consents.c.channel, consents.c.granted).where(
                consents.c.customer_id.in_(ids)
            )
        )
    }
    identities: dict[tuple[int, str], str] = {}
    kinds = {"wechat": "wechat_openid", "wecom": "wecom_external_userid"}
    asked = [kinds[ch] for ch in ("wechat", "wecom") if ch in wanted]
    if asked:
        prefix = f"{cfg.wechat_app_id}:"
        for cid, kind, value in conn.execute(
            select(customer_identities.c.customer_id, customer_identities.c.kind, customer_identities.c.value)
            .where(customer_identities.c.customer_id.in_(ids), customer_identities.c.kind.in_(asked))
            .order_by(customer_identities.c.id)
        ):
            if kind == "wechat_openid" and cfg.wechat_app_id and value.startswith(prefix):
                identities.setdefault((cid, "wechat"), value)
            elif kind == "wecom_external_userid":
                identities.setdefault((cid, "wecom"), value)
    addresses = [p.email for p in people.values() if p.email] + [p.phone for p in people.values() if p.phone]
    addresses += list(identities.values())
    blocked = {
        (ch, addr)
        for ch, addr in conn.execute(
            select(suppressions.c.channel, suppressions.c.address).where(
                suppressions.c.address.in_(addresses)
            )
        )
    }
    return Guardrails(granted, blocked, identities, caps, per_window, cfg.wechat_app_id)


def address(
    channel: str, profile: Any, context: dict[str, Any], g: Guardrails, webhook_url: str | None
) -> str | None:
    if channel == "email":
        return str(profile.email or "") or None
    if channel == "sms":
        return str(profile.phone or "") or None
    if channel in ("wechat", "wecom"):
        return g.identities.get((profile.id, channel))
    return str(context.get("url") or webhook_url or "") or None


def _no_address(channel: str, g: Guardrails) -> str:
    if channel == "wechat":
        if not g.wechat_app_id:
            return "no Official Account configured (CLM_WECHAT_APP_ID)"
        return f"no OpenID for the Official Account {g.wechat_app_id} on the profile"
    if channel == "wecom":
        return "no WeCom external_userid on the profile"
    return f"no {channel} address on the profile"


def _capped(cid: int, channel: str, g: Guardrails) -> str | None:
    """Why the cap stops one more marketing message on this channel, or None."""
    rule = g.caps.get(channel) or g.caps.get("*")
    if rule is not None:
        limit, days = rule
        used = g.per_window[days].get((cid, channel), 0) + g.sent_now[(cid, channel)]
        if used >= limit:
            return f"frequency cap: {used} {channel} messages in {days:g} days (limit {limit})"
    total = g.caps.get(TOTAL)
    if total is not None:
        limit, days = total
        used = sum(g.per_window[days].get((cid, ch), 0) + g.sent_now[(cid, ch)] for ch in PERSONAL_CHANNELS)
        if used >= limit:
            return f"frequency cap: {used} messages on all channels in {days:g} days (limit {limit})"
    return None


def choose(row: Any, profile: Any, g: Guardrails, webhook_url: str | None) -> Choice:
    """The first channel of the row's list that passes the guardrails (counted against the cap
    of this batch at once), or None with every channel's reason."""
    channels, templates = candidates(row)
    marketing = row._mapping["class"] == "marketing"
    one = len(channels) == 1
    passed_over: list[str] = []
    suppressed = False
    for channel in channels:
        addr = address(channel, profile, row.context or {}, g, webhook_url)
        why = None
        if not addr:
            why = _no_address(channel, g)
        elif (channel, addr) in g.blocked:
            why, suppressed = f"{addr} is suppressed (bounced)", True
        elif marketing and channel in PERSONAL_CHANNELS:
            if not g.granted.get((row.customer_id, channel), False):
                why = f"no {channel} marketing consent"
            else:
                why = _capped(row.customer_id, channel, g)
        if why is None:
            if marketing and channel in PERSONAL_CHANNELS:
                g.sent_now[(row.customer_id, channel)] += 1
            return Choice(channel, templates.get(channel, row.template), addr, passed_over)
        passed_over.append(why if one else f"{channel} skipped: {why}")
    return Choice(None, None, None, passed_over, suppressed=suppressed and one)


class ChosenRow:
    """An outbox row as it goes out: the row, with the channel and template chosen for it."""

    def __init__(self, row: Any, channel: str, template: str) -> None:
        self._row, self.channel, self.template = row, channel, template
        self._mapping = {**row._mapping, "channel": channel, "template": template}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def remaining(row: Any) -> list[str]:
    """The channels after this row's in its preference list (where a failure falls back to)."""
    channels, _ = candidates(row)
    return channels[channels.index(row.channel) + 1 :] if row.channel in channels else []
