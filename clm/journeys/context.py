"""What a message template can use, built for a whole batch of recipients at once: the profile,
loyalty standing and perks, recommendations, a coupon code, a survey link, the unsubscribe link
and tracked links."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, tuple_

from clm.commerce.tables import products
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


def _cart_skus(event: dict[str, Any]) -> list[str]:
    """The SKUs a cart event names: `sku`, or `skus` / `items` (each a SKU or {sku: …})."""
    found: list[str] = []
    for item in [event.get("sku"), *(event.get("skus") or []), *(event.get("items") or [])]:
        sku = item.get("sku") if isinstance(item, dict) else item
        if isinstance(sku, str | int) and str(sku) and str(sku) not in found:
            found.append(str(sku))
    return found[:20]


def product_cards(engine: Engine, skus: set[str]) -> dict[str, dict[str, Any]]:
    """sku → what a product card in a message shows: name, price, category, and the product's
    `image_url` and `url` attributes when the catalogue has them."""
    if not skus:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                products.c.sku, products.c.name, products.c.price, products.c.category, products.c.attributes
            ).where(products.c.sku.in_(sorted(skus)))
        ).all()
    base = settings().public_url
    return {
        r.sku: {
            "sku": r.sku,
            "name": r.name,
            "price": float(r.price),
            "category": r.category,
            "image_url": str(
                (r.attributes or {}).get("image_url") or (r.attributes or {}).get("image") or ""
            ),
            "url": str((r.attributes or {}).get("url") or f"{base}/p/{r.sku}"),
        }
        for r in rows
    }


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
    shop = {"name": settings().shop_name, "url": settings().public_url, "currency": settings().currency}
    picks = {}
    if with_recommendations:
        try:
            from clm.analytics.recommend_store import recommend_many  # SciPy: loaded when used

            picks = recommend_many(engine, ids, 3)
        except ClmError:
            picks = {}
    cart_skus = {i: _cart_skus(extra.get("event") or {}) for i, (_, extra) in enumerate(items)}
    wanted_skus = {s for skus in cart_skus.values() for s in skus}
    wanted_skus |= {r.sku for recs in picks.values() for r in recs}
    cards = product_cards(engine, wanted_skus)
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
            "cart": [cards[s] for s in cart_skus[i] if s in cards],
            "survey_link": None,
        }
        if with_recommendations:
            context["recommendations"] = [
                {**r.__dict__, **{k: v for k, v in cards.get(r.sku, {}).items() if k in ("image_url", "url")}}
                for r in picks.get(cid, [])
            ]
        if extra.get("survey"):
            link = invite(engine, str(extra["survey"]), cid, reference=f"message:{extra.get('key', i)}").link
            context["survey_link"] = link
        out[i] = context
    return out
