"""Identity kinds and their normalisation, so the same person is recognised whatever the spelling."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import phonenumbers

from clm.core.errors import InvalidInput
from clm.core.settings import settings

# New kinds go at the end: bulk imports key records by their identities in this order.
IDENTITY_KINDS = (
    "external_id",
    "email",
    "phone",
    "anonymous_id",
    "wechat_openid",
    "wechat_unionid",
    "wecom_external_userid",
)
MAX_PLAIN_ID = 200  # characters of an external or anonymous id

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A WeChat app id (Official Account, Mini Program, mobile or web app) is "wx" and 16 letters or
# digits. OpenIDs and UnionIDs are opaque, case-sensitive tokens of URL-safe characters (28 in
# practice); the bound leaves room for other lengths without taking arbitrary text.
_WECHAT_APP_ID = re.compile(r"^wx[0-9A-Za-z]{16}$")
_WECHAT_TOKEN = re.compile(r"^[0-9A-Za-z_-]{8,64}$")


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidInput(f"{value!r} is not an email address", "email")
    return email


@lru_cache(maxsize=65536)
def normalize_phone(value: str, region: str | None = None) -> str:
    """E.164 form (+8613812345678); numbers without a country code use the default region."""
    text = value.strip()
    try:
        parsed = phonenumbers.parse(
            text, None if text.startswith("+") else (region or settings().default_phone_region)
        )
    except phonenumbers.NumberParseException:
        raise InvalidInput(f"{value!r} is not a phone number", "phone")
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidInput(f"{value!r} is not a possible phone number", "phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_plain_id(value: object, field: str) -> str:
    text = str(value).strip()
    if not text:
        raise InvalidInput("must not be empty", field)
    if len(text) > MAX_PLAIN_ID:
        raise InvalidInput(f"is longer than {MAX_PLAIN_ID} characters", field)
    return text


def normalize_wechat_openid(value: object) -> str:
    """`appid:openid`: an OpenID is only unique within the app that issued it, so the same
    OpenID under two app ids is two identities. Case is kept (WeChat ids are case-sensitive)."""
    text = str(value).strip()
    app_id, sep, open_id = text.partition(":")
    app_id, open_id = app_id.strip(), open_id.strip()
    if not sep:
        raise InvalidInput(
            f"{_shown(text)} has no app id: write it as appid:openid (e.g. wx1234567890abcdef:oUpF8u…)",
            "wechat_openid",
        )
    if not _WECHAT_APP_ID.match(app_id):
        raise InvalidInput(
            f"{_shown(app_id)} is not a WeChat app id (wx followed by 16 letters or digits)", "wechat_openid"
        )
    if not _WECHAT_TOKEN.match(open_id):
        raise InvalidInput(
            f"{_shown(open_id)} is not a WeChat OpenID (8 to 64 letters, digits, _ or -)", "wechat_openid"
        )
    return f"{app_id}:{open_id}"


def normalize_wechat_unionid(value: object) -> str:
    """A UnionID names one person across all apps of one WeChat Open Platform account."""
    text = str(value).strip()
    if not _WECHAT_TOKEN.match(text):
        raise InvalidInput(
            f"{_shown(text)} is not a WeChat UnionID (8 to 64 letters, digits, _ or -)", "wechat_unionid"
        )
    return text


def normalize_wecom_external_userid(value: object) -> str:
    """A WeCom (企业微信) external_userid: the customer as an external contact of the configured
    corp's staff (wm… / wo…), the same for every staff member of that corp. Case is kept."""
    text = str(value).strip()
    if not _WECHAT_TOKEN.match(text):
        raise InvalidInput(
            f"{_shown(text)} is not a WeCom external_userid (8 to 64 letters, digits, _ or -)",
            "wecom_external_userid",
        )
    return text


def _shown(text: str) -> str:
    """A refused value quoted in an error, cut short so a stray paragraph stays readable."""
    return repr(text if len(text) <= 80 else text[:80] + "…")


def normalize_identity(kind: str, value: object) -> str:
    if kind == "email":
        return normalize_email(str(value))
    if kind == "phone":
        return normalize_phone(str(value))
    if kind == "wechat_openid":
        return normalize_wechat_openid(value)
    if kind == "wechat_unionid":
        return normalize_wechat_unionid(value)
    if kind == "wecom_external_userid":
        return normalize_wecom_external_userid(value)
    if kind in IDENTITY_KINDS:
        return normalize_plain_id(value, kind)
    raise InvalidInput(f"unknown identity kind {kind!r}", "identity")


def identities_from(fields: dict[str, object]) -> dict[str, str]:
    """The normalised identities found among a record's fields (raises on a malformed one)."""
    return {
        kind: normalize_identity(kind, fields[kind])
        for kind in IDENTITY_KINDS
        if fields.get(kind) not in (None, "")
    }


def identity_key(pairs: Iterable[tuple[str, str]]) -> str:
    """A record's (kind, value) identities as one string, a dictionary key that hashes fast.
    NUL separates the parts: no stored identity can hold one (imports and PostgreSQL refuse it)."""
    return "\x00".join(f"{kind}\x00{value}" for kind, value in pairs)


def identity_pairs(key: str) -> dict[str, str]:
    """The identities behind an `identity_key`."""
    parts = key.split("\x00")
    return dict(zip(parts[::2], parts[1::2], strict=True))
