"""Find customers from one line of text, as a search box gets it: an id, an email, a phone
number, an external id, a WeChat OpenID (appid:openid) or UnionID, or (part of) a name."""

from __future__ import annotations

from sqlalchemy import Engine, String, func, or_, select

from clm.core.errors import InvalidInput, NotFound
from clm.customers.identities import normalize_identity
from clm.customers.schemas import Customer
from clm.customers.service import find_customers, get_customer
from clm.customers.tables import customers

MAX_QUERY = 200


def search_customers(engine: Engine, text: str, limit: int = 20) -> list[Customer]:
    """Profiles whose id, email, phone or external id equals `text` (normalised as on import),
    then profiles whose name starts with it (family name first or given name first). Exact
    matches come first; merged profiles lead to their survivor."""
    text = " ".join(text.split())[:MAX_QUERY]
    if not text:
        return []
    found: dict[int, Customer] = {}
    if text.isdigit() and len(text) <= 18:
        try:
            customer = get_customer(engine, int(text))
            found[customer.id] = customer
        except NotFound:
            pass
    identities: dict[str, str] = {}
    for kind in ("email", "phone", "external_id", "wechat_openid", "wechat_unionid"):
        try:
            identities[kind] = normalize_identity(kind, text)
        except InvalidInput:
            continue
    for customer in find_customers(engine, identities, limit) if identities else []:
        found.setdefault(customer.id, customer)
    if len(found) < limit:
        for customer_id in _by_name(engine, text, limit - len(found)):
            if customer_id not in found:
                found[customer_id] = get_customer(engine, customer_id)
    return list(found.values())[:limit]


def _by_name(engine: Engine, text: str, limit: int) -> list[int]:
    pattern = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    # typed as text, so that + concatenates (an untyped function result would be added as numbers)
    first = func.lower(func.coalesce(customers.c.first_name, ""), type_=String)
    last = func.lower(func.coalesce(customers.c.last_name, ""), type_=String)
    written = [
        last + first,  # 张伟
        first + " " + last,  # Ann Lee
        last + " " + first,  # Lee Ann
        first,
        last,
    ]
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(customers.c.id)
                .where(
                    customers.c.merged_into.is_(None), or_(*(w.like(pattern, escape="\\") for w in written))
                )
                .order_by(customers.c.id)
                .limit(limit)
            ).scalars()
        )
