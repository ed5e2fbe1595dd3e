"""Find customers from one line of text, as a search box gets it: an id, an email, a phone
number, an external id, a WeChat OpenID (appid:openid) or UnionID, or (the start of) a name.

Every kind of match is an index read, so a search costs the same at a thousand customers or a
million: ids and identities are unique keys, and a name is matched by the start of its indexed
keys (clm.customers.names.name_keys: family name first and given name first, case folded,
without spaces), each a range of one index read in key order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Select, select

from clm.core.errors import InvalidInput
from clm.customers.identities import normalize_identity
from clm.customers.names import search_key
from clm.customers.schemas import Customer
from clm.customers.service import get_customers
from clm.customers.tables import customer_identities, customers

MAX_QUERY = 200
_KINDS = ("email", "phone", "external_id", "wechat_openid", "wechat_unionid")


def search_customers(engine: Engine, text: str, limit: int = 20) -> list[Customer]:
    """The profiles `search_customer_ids` finds, whole (for a short list of results)."""
    return get_customers(engine, search_customer_ids(engine, text, limit))


def search_customer_ids(engine: Engine, text: str, limit: int = 20) -> list[int]:
    """Ids of the live profiles whose id, email, phone, external id or WeChat id equals `text`
    (normalised as on import), then of those whose name starts with it, family name first or
    given name first (张伟, 张, 伟, Ann Lee, Lee Ann, ann l), in name order. Exact matches come
    first; a merged profile leads to its survivor."""
    text = " ".join(text.split())[:MAX_QUERY]
    if not text or limit < 1:
        return []
    with engine.connect() as conn:
        found = dict.fromkeys(_exact(conn, text))
        if len(found) < limit:
            for customer_id in _by_name(conn, text, limit):
                found.setdefault(customer_id)
    return list(found)[:limit]


def _exact(conn: Connection, text: str) -> list[int]:
    ids: list[int] = []
    if text.isdigit() and len(text) <= 18:
        ids.append(int(text))
    wanted = []
    for kind in _KINDS:
        try:
            wanted.append((kind, normalize_identity(kind, text)))
        except InvalidInput:
            continue
    for kind, value in wanted:
        ids.extend(
            conn.execute(
                select(customer_identities.c.customer_id).where(
                    customer_identities.c.kind == kind, customer_identities.c.value == value
                )
            ).scalars()
        )
    if not ids:
        return []
    # follow merges to the survivor (a tombstone's merged_into is always a live profile)
    rows = conn.execute(select(customers.c.id, customers.c.merged_into).where(customers.c.id.in_(ids))).all()
    live = {r.id: r.merged_into or r.id for r in rows}
    return list(dict.fromkeys(live[i] for i in ids if i in live))


def _after(prefix: str) -> str | None:
    """The smallest text greater than every text that starts with `prefix` (in code point order,
    which is UTF-8 byte order, the keys' collation on both stores); None when there is none."""
    last = ord(prefix[-1]) + 1
    if last > 0x10FFFF:
        return None
    if 0xD800 <= last <= 0xDFFF:  # surrogates are not characters; the next one is
        last = 0xE000
    return prefix[:-1] + chr(last)


def name_queries(text: str, limit: int) -> list[Select[Any]]:
    """The range reads that find names starting with `text`: one per name key, each in its
    index's order (empty when `text` has nothing a name could start with)."""
    key = search_key(text)
    if not key:
        return []
    upper = _after(key)
    queries = []
    for column in (customers.c.name_key, customers.c.given_name_key):
        query = (
            select(column, customers.c.id)
            .where(column >= key, customers.c.merged_into.is_(None))
            .order_by(column, customers.c.id)
            .limit(limit)
        )
        queries.append(query if upper is None else query.where(column < upper))
    return queries


def _by_name(conn: Connection, text: str, limit: int) -> list[int]:
    found = sorted((k, i) for query in name_queries(text, limit) for k, i in conn.execute(query))
    return list(dict.fromkeys(i for _, i in found))[:limit]
