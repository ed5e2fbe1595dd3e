"""Event vocabulary and validation, shared by the HTTP API and bulk file imports."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clm.core.errors import InvalidInput
from clm.core.timeutil import check_activity_time, parse_timestamp, utcnow
from clm.customers.identities import IDENTITY_KINDS, identities_from

EVENT_TYPES = (
    "page_view",
    "product_view",
    "add_to_cart",
    "checkout_started",
    "purchase",
    "refund",
    "signup",
    "trial_started",
    "inquiry",
    "email_open",
    "email_click",
    "sms_click",
    "social_interaction",
    "offline_visit",
    "sales_call",
    "ticket_opened",
    "ticket_resolved",
    "survey_response",
)
CHANNELS = (
    "web",
    "app",
    "email",
    "sms",
    "social",
    "ads",
    "search",
    "referral",
    "offline",
    "sales",
    "support",
    "push",
)
DEFAULT_CHANNEL = "web"
MAX_EVENT_ID = 128
# Events CLM derives itself (stage changes, later segment entries) use this channel and id prefix;
# they are not customer activity and cannot be sent from outside.
SYSTEM_CHANNEL = "system"
SYSTEM_ID_PREFIX = "clm:"

# Custom types and channels are allowed; they only need to be tidy identifiers.
_NAME = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
_IDENTITY_LIST = ", ".join(IDENTITY_KINDS[:-1]) + " or " + IDENTITY_KINDS[-1]
RESERVED_FIELDS = {"event_id", "type", "timestamp", "channel", "properties", *IDENTITY_KINDS}


@dataclass(frozen=True, slots=True)
class ValidEvent:
    event_id: str
    type: str
    channel: str
    occurred_at: datetime
    identities: dict[str, str]
    properties: dict[str, Any]


@dataclass(frozen=True)
class Event:
    """An event as stored, for timelines."""

    id: int
    event_id: str
    customer_id: int
    type: str
    channel: str
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any]


@lru_cache(maxsize=4096)  # types and channels repeat endlessly in a file
def tidy_name(value: object, field: str) -> str:
    text = str(value).strip().lower()
    if not _NAME.match(text):
        raise InvalidInput(
            f"{value!r} is not a valid name (lower-case letters, digits and _ . : -, up to 64 characters)",
            field,
        )
    return text


def _timestamp(value: object, now: datetime) -> datetime:
    return check_activity_time(parse_timestamp(value, "timestamp"), "timestamp", now)


def content_event_id(
    kind: str, occurred_at: datetime, identities: dict[str, str], properties: dict[str, Any]
) -> str:
    """A deterministic id for events sent without one, so re-sending the same file stores it once."""
    payload = orjson.dumps(
        [kind, occurred_at.isoformat(), sorted(identities.items()), properties],
        option=orjson.OPT_SORT_KEYS,
    )
    return "h:" + hashlib.blake2b(payload, digest_size=16).hexdigest()


def validate_event(fields: dict[str, Any], now: datetime | None = None) -> ValidEvent:
    """Check one raw event (a JSON object or a CSV row) and bring it to its stored form.

    Columns that are not event fields become properties, so a flat CSV can carry them.
    """
    if "type" not in fields:
        raise InvalidInput("is required", "type")
    if "timestamp" not in fields:
        raise InvalidInput("is required", "timestamp")
    kind = tidy_name(fields["type"], "type")
    channel = tidy_name(fields.get("channel") or DEFAULT_CHANNEL, "channel")
    if channel == SYSTEM_CHANNEL:
        raise InvalidInput("is reserved for events CLM derives itself", "channel")
    occurred_at = _timestamp(fields["timestamp"], now or utcnow())
    identities = identities_from(fields)
    if not identities:
        raise InvalidInput(f"an event needs at least one identity: {_IDENTITY_LIST}", "identity")
    properties = fields.get("properties") or {}
    if isinstance(properties, str):
        try:
            properties = orjson.loads(properties)
        except orjson.JSONDecodeError:
            raise InvalidInput("is not valid JSON", "properties")
    if not isinstance(properties, dict):
        raise InvalidInput("must be a JSON object", "properties")
    extra = {k.removeprefix("properties."): v for k, v in fields.items() if k not in RESERVED_FIELDS}
    if extra:
        properties = {**properties, **extra}
    event_id = fields.get("event_id")
    if event_id is None:
        event_id = content_event_id(kind, occurred_at, identities, properties)
    else:
        event_id = str(event_id).strip()
        if not event_id or len(event_id) > MAX_EVENT_ID:
            raise InvalidInput(f"must be 1 to {MAX_EVENT_ID} characters", "event_id")
        if event_id.startswith(SYSTEM_ID_PREFIX):
            raise InvalidInput(
                f"ids starting with {SYSTEM_ID_PREFIX!r} are reserved for CLM's own events", "event_id"
            )
    return ValidEvent(event_id, kind, channel, occurred_at, identities, properties)


class EventIn(BaseModel):
    """One customer event. At least one identity is required; `event_id` makes sending it twice safe."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_EVENT_ID,
        description="Your unique id for this event (idempotency key).",
    )
    type: str = Field(
        ...,
        min_length=1,
        max_length=64,
        description=f"One of {', '.join(EVENT_TYPES)}, or a custom type.",
    )
    # ISO 8601 text or Unix seconds / milliseconds (what trackers send), as files allow too; a
    # number before 1990 (0, 0.5) is refused by the activity-time check
    timestamp: datetime = Field(
        ...,
        description="When it happened: ISO 8601 (without a zone: in the store's time zone, "
        "CLM_DEFAULT_TIMEZONE) or Unix seconds / milliseconds.",
    )
    channel: str | None = Field(
        None,
        max_length=32,
        description=f"Where it happened: {', '.join(CHANNELS)}, or custom. Default web.",
    )
    external_id: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    anonymous_id: str | None = Field(None, max_length=200)
    wechat_openid: str | None = Field(None, max_length=200, description="appid:openid")
    wechat_unionid: str | None = Field(None, max_length=64)
    wecom_external_userid: str | None = Field(None, max_length=64, description="WeCom external_userid")
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type", "channel")
    @classmethod
    def _tidy(cls, v: str | None) -> str | None:
        if v is not None and not _NAME.match(v.strip().lower()):
            raise ValueError("use lower-case letters, digits and _ . : - (up to 64 characters)")
        return v

    @model_validator(mode="after")
    def _check(self) -> EventIn:
        if not any(getattr(self, kind) for kind in IDENTITY_KINDS):
            raise ValueError(f"an event needs at least one identity: {_IDENTITY_LIST}")
        return self

    def to_valid(self, now: datetime | None = None) -> ValidEvent:
        return validate_event(self.model_dump(exclude_none=True), now)
