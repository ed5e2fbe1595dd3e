"""What a message template can use, built for a whole batch of recipients at once: the profile,
loyalty standing and perks, recommendations, a coupon code, a survey link, the unsubscribe link
and tracked links."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, tuple_

from clm.core.errors import ClmError
from clm.core.settings import settings
from clm.customers.tables import customers
from clm.feedback.service import invite
from clm.journeys.links import tracked_url
from clm.journeys.tables import coupons
from clm.loyalty.service import standings

PROFILE = (
    "first_name", "last_name", "email", "phone", "city", "region", "country", "timezone", "gender",
    "occupation", "birthday", "acquisition_channel",
)  # fmt: skip


def language(row: Any) -> str:
    """The customer's language: attribute `language` (zh/en), else Chinese for CN, else English."""
    wanted = str((row.attributes or {}).get("language", "")).lower()
    if wanted.startswith("zh"):
        return "zh"
    if wanted.startswith("en"):
        return "en"
    return "zh" if (row.country or "").upper() == "CN" else "en"


def profiles(engine: Engine, customer_ids: Sequence[int]) -> dict[int, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(customers).where(customers.c.id.in_(sorted(set(customer_ids))))).all()
    return {r.id: r for r in rows}


def issue_coupons(
    engine: Engine, wanted: Sequence[tuple[int, str]], now: datetime
) -> dict[tuple[int, str], str]:
    """One code per customer and campaign (asking again returns the same code)."""
    pairs = sorted(set(wanted))
    if not pairs:
        return {}
    with engine.begin() as conn:
        have = {
            (r.customer_id, r.campaign): r.code
            for r in conn.execute(
                select(coupons).where(tuple_(coupons.c.customer_id, coupons.c.campaign).in_(pairs))
            )
        }
        new = [
            {"code": f"{campaign}-{secrets.token_hex(4).upper()}", "customer_id": cid, "campaign": campaign,
             "issued_at": now}
            for cid, campaign in pairs
            if (cid, campaign) not in have
        ]  # fmt: skip
        if new:
            conn.execute(insert(coupons), new)
            have.update({(c["customer_id"], c["campaign"]): c["code"] for c in new})
    return have


def tracker(token: str, key: bytes, base: str | None = None) -> Callable[[str], str]:
    """`track(url)` for one message; `key` is `links.link_key(engine)`, read once per batch (and
    `base` the public URL, when the caller has it)."""
    base = base or settings().public_url

    def track(url: str) -> str:
        """A link that records an email_click on the profile, then goes on to `url` (signed)."""
        return tracked_url(base, key, token, str(url))

    return track


def build_contexts(
    engine: Engine,
    items: Sequence[tuple[int, dict[str, Any]]],
    now: datetime,
    *,
    with_recommendations: bool = False,
    people: dict[int, Any] | None = None,
) -> dict[int, dict[str, Any]]:
    """Template contexts for (customer id, message context) pairs, keyed by position;
    `people` are the profiles when the caller has read them already."""
    ids = [cid for cid, _ in items]
    rows = people if people is not None else profiles(engine, ids)
    loyalty = standings(engine, ids, now)
    coupon_codes = issue_coupons(
        engine, [(cid, str(c["coupon_campaign"])) for cid, c in items if c.get("coupon_campaign")], now
    )
    shop = {"name": settings().shop_name, "url": settings().public_url}
    picks = {}
    if with_recommendations:
        try:
            from clm.analytics.recommend_store import recommend_many  # SciPy: loaded when used

            picks = recommend_many(engine, ids, 3)
        except ClmError:
            picks = {}
    out: dict[int, dict[str, Any]] = {}
    for i, (cid, extra) in enumerate(items):
        row = rows.get(cid)
        customer = {k: getattr(row, k, None) for k in PROFILE} if row is not None else {}
        customer["id"] = cid
        customer["attr"] = (row.attributes or {}) if row is not None else {}
        context: dict[str, Any] = {
            "customer": customer,
            "loyalty": loyalty.get(cid, {}),
            "shop": shop,
            "event": extra.get("event") or {},
            "variant": extra.get("variant"),
            "journey": extra.get("journey"),
            "coupon": coupon_codes.get((cid, str(extra.get("coupon_campaign"))))
            if extra.get("coupon_campaign")
            else None,
            "recommendations": [],
            "survey_link": None,
        }
        if with_recommendations:
            context["recommendations"] = [r.__dict__ for r in picks.get(cid, [])]
        if extra.get("survey"):
            link = invite(engine, str(extra["survey"]), cid, reference=f"message:{extra.get('key', i)}").link
            context["survey_link"] = link
        out[i] = context
    return out
