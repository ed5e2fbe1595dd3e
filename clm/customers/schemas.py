"""What goes in (validated input) and what comes out (plain frozen values) of the customers domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clm.core.errors import InvalidInput
from clm.core.payloads import IsoDate, IsoDateTime
from clm.core.timeutil import check_activity_time, check_birthday, from_store_time
from clm.customers.identities import (
    normalize_email,
    normalize_phone,
    normalize_plain_id,
    normalize_wechat_openid,
    normalize_wechat_unionid,
    normalize_wecom_external_userid,
)

PROFILE_FIELDS = (
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birthday",
    "gender",
    "city",
    "region",
    "country",
    "timezone",
    "occupation",
    "acquisition_channel",
    "acquisition_campaign",
    "first_seen_at",
)

CONSENT_CHANNELS = ("email", "sms", "push", "phone", "whatsapp", "post", "wechat", "wecom")


def _pydantic_error(exc: InvalidInput) -> ValueError:
    return ValueError(exc.reason)


class CustomerIn(BaseModel):
    """A profile to create or update; matched to an existing customer by any identity."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: str | None = Field(None, max_length=200, description="Your system's customer id.")
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40, description="Any format; stored as E.164.")
    anonymous_id: str | None = Field(None, max_length=200, description="Device or cookie id.")
    wechat_openid: str | None = Field(
        None, max_length=200, description="WeChat OpenID with the app id that issued it: appid:openid."
    )
    wechat_unionid: str | None = Field(None, max_length=64, description="WeChat UnionID.")
    wecom_external_userid: str | None = Field(
        None, max_length=64, description="WeCom (企业微信) external_userid of the customer."
    )
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    birthday: IsoDate | None = None
    gender: str | None = Field(None, max_length=20)
    city: str | None = Field(None, max_length=200)
    region: str | None = Field(None, max_length=200)
    country: str | None = Field(None, description="ISO 3166-1 alpha-2 code, e.g. CN.")
    timezone: str | None = Field(None, description="IANA time zone, e.g. Asia/Shanghai.")
    occupation: str | None = Field(None, max_length=200)
    acquisition_channel: str | None = Field(None, max_length=64)
    acquisition_campaign: str | None = Field(None, max_length=200)
    first_seen_at: IsoDateTime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict, description="Custom attributes.")
    consents: dict[str, bool] = Field(
        default_factory=dict, description='Consent per channel, e.g. {"email": true, "sms": false}.'
    )
    consent_source: str | None = Field(None, max_length=200, description="Where consent was given.")

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        try:
            return normalize_email(v) if v else None
        except InvalidInput as exc:
            raise _pydantic_error(exc)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        try:
            return normalize_phone(v) if v else None
        except InvalidInput as exc:
            raise _pydantic_error(exc)

    @field_validator("external_id", "anonymous_id")
    @classmethod
    def _plain_id(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            return normalize_plain_id(v, "id")
        except InvalidInput as exc:
            raise _pydantic_error(exc)

    @field_validator("wechat_openid")
    @classmethod
    def _openid(cls, v: str | None) -> str | None:
        try:
            return normalize_wechat_openid(v) if v else None
        except InvalidInput as exc:
            raise _pydantic_error(exc)

    @field_validator("wechat_unionid")
    @classmethod
    def _unionid(cls, v: str | None) -> str | None:
        try:
            return normalize_wechat_unionid(v) if v else None
        except InvalidInput as exc:
            raise _pydantic_error(exc)

    @field_validator("wecom_external_userid")
    @classmethod
    def _wecom(cls, v: str | None) -> str | None:
        try:
            return normalize_wecom_external_userid(v) if v else None
        except InvalidInput as exc:
            raise _pydantic_error(exc)

    @field_validator("country")
    @classmethod
    def _country(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if len(v) != 2 or not v.isalpha() or not v.isascii():
            raise ValueError(f"{v!r} is not a two-letter country code")
        return v.upper()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone")
        return v

    @field_validator("gender")
    @classmethod
    def _gender(cls, v: str | None) -> str | None:
        return v.lower() if v else None

    @field_validator("first_seen_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        try:
            return check_activity_time(from_store_time(v), "first_seen_at") if v else None
        except InvalidInput as exc:
            raise _pydantic_error(exc)

    @field_validator("birthday")
    @classmethod
    def _birthday(cls, v: date | None) -> date | None:
        try:
            return check_birthday(v) if v else None
        except InvalidInput as exc:
            raise _pydantic_error(exc)

    @field_validator("consents")
    @classmethod
    def _consents(cls, v: dict[str, bool]) -> dict[str, bool]:
        unknown = set(v) - set(CONSENT_CHANNELS)
        if unknown:
            raise ValueError(
                f"unknown consent channel(s) {sorted(unknown)}; use {', '.join(CONSENT_CHANNELS)}"
            )
        return v

    @model_validator(mode="after")
    def _has_identity(self) -> CustomerIn:
        if not any(self.identities().values()):
            raise ValueError(
                "a customer needs at least one identity: external_id, email, phone, anonymous_id,"
                " wechat_openid, wechat_unionid or wecom_external_userid"
            )
        return self

    def identities(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("external_id", self.external_id),
                ("email", self.email),
                ("phone", self.phone),
                ("anonymous_id", self.anonymous_id),
                ("wechat_openid", self.wechat_openid),
                ("wechat_unionid", self.wechat_unionid),
                ("wecom_external_userid", self.wecom_external_userid),
            )
            if v
        }


@dataclass(frozen=True)
class Identity:
    kind: str
    value: str


@dataclass(frozen=True)
class Consent:
    channel: str
    granted: bool
    updated_at: datetime
    source: str | None


@dataclass(frozen=True)
class Customer:
    """The unified profile of one person."""

    id: int
    external_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    birthday: date | None
    gender: str | None
    city: str | None
    region: str | None
    country: str | None
    timezone: str | None
    occupation: str | None
    acquisition_channel: str | None
    acquisition_campaign: str | None
    first_seen_at: datetime | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    identities: list[Identity] = field(default_factory=list)
    consents: list[Consent] = field(default_factory=list)
    merged_from: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ProfileSeed:
    """What a brand-new profile starts with when an event or order creates it."""

    first_seen_at: datetime | None = None
    acquisition_channel: str | None = None
    acquisition_campaign: str | None = None


@dataclass(frozen=True)
class SeedColumns:
    """The seeds of many records at once, one array per field (a bulk import's chunk): new
    profiles are then made column by column, not from a `ProfileSeed` per record. Called with
    a record's index it is that record's `ProfileSeed`, so it serves wherever one is asked for."""

    first_seen_at: np.ndarray  # datetime64[us], UTC; NaT when unknown
    acquisition_channel: np.ndarray  # object: str or None
    acquisition_campaign: np.ndarray  # object: str or None

    def take(self, index: np.ndarray) -> SeedColumns:
        """The seeds of the records at `index`, in that order."""
        return SeedColumns(
            self.first_seen_at[index], self.acquisition_channel[index], self.acquisition_campaign[index]
        )

    def __call__(self, i: int) -> ProfileSeed | None:
        at = self.first_seen_at[i]
        if np.isnat(at):
            return None
        return ProfileSeed(
            at.astype(datetime).replace(tzinfo=UTC), self.acquisition_channel[i], self.acquisition_campaign[i]
        )


@dataclass(frozen=True)
class Resolution:
    """Outcome of matching a batch of records to profiles."""

    customer_ids: list[int]
    created: frozenset[int]
    merges: list[tuple[int, int]]  # (survivor, merged)


@dataclass(frozen=True)
class DuplicatePair:
    customer_id: int
    other_id: int
    reason: str
    name: str
