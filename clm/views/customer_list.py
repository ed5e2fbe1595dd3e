"""The customer list: customers narrowed by search text and filters (stage, segment, tier, churn
band, acquisition channel, city, consent), sorted and read one page at a time in one set-based
query, or every match in id order for an export."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, String, and_, exists, func, literal, or_, select

from clm.analytics.tables import churn_scores
from clm.core.places import place_names
from clm.customers.search import search_customer_ids
from clm.customers.tables import consents, customers
from clm.lifecycle.service import current_model
from clm.lifecycle.tables import customer_stages
from clm.loyalty.service import programme
from clm.loyalty.tables import customer_tiers
from clm.segments.tables import segment_members, segments

# search text narrows the list to at most this many matches (the search box's own limit)
SEARCH_MATCHES = 500
EXPORT_BATCH = 2_000
SORTS = ("id", "name", "city", "channel", "stage", "risk", "created")


@dataclass(frozen=True)
class CustomerFilter:
    """What the list is narrowed to; empty strings and None mean "any"."""

    q: str = ""
    stage: str = ""
    segment: str = ""
    tier: str = ""
    band: str = ""  # churn band: high, medium, low or lost
    channel: str = ""  # acquisition channel
    city: str = ""
    consent: str = ""  # a channel the customer granted marketing consent for

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


@dataclass(frozen=True)
class ListRow:
    id: int
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    external_id: str | None
    city: str | None
    channel: str | None
    stage: str | None
    tier: str | None
    band: str | None
    churn_probability: float | None
    created_at: datetime


@dataclass(frozen=True)
class CustomerPage:
    total: int
    rows: list[ListRow]
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _conditions(engine: Engine, wanted: CustomerFilter, model: str) -> tuple[list[Any], set[str]]:
    """The WHERE clauses of `wanted` and which of the joined tables (stage, tier, churn) they
    read. A customer without a tier row is in the programme's lowest tier."""
    stage = customer_stages
    where: list[Any] = [customers.c.merged_into.is_(None)]
    joins: set[str] = set()
    if wanted.q.strip():
        ids = search_customer_ids(engine, wanted.q, limit=SEARCH_MATCHES)
        where.append(customers.c.id.in_(ids or [-1]))
    if wanted.stage:
        where.append(stage.c.stage == wanted.stage)
        joins.add("stage")
    if wanted.segment:
        where.append(
            exists().where(
                segment_members.c.customer_id == customers.c.id,
                segment_members.c.segment_id == segments.c.id,
                segments.c.name == wanted.segment,
            )
        )
    if wanted.tier:
        if wanted.tier == programme(engine).lowest.name:
            where.append(or_(customer_tiers.c.tier == wanted.tier, customer_tiers.c.tier.is_(None)))
            joins.add("tier?")
        else:
            where.append(customer_tiers.c.tier == wanted.tier)
            joins.add("tier")
    if wanted.band:
        where.append(churn_scores.c.band == wanted.band)
        joins.add("churn")
    if wanted.channel:
        where.append(customers.c.acquisition_channel == wanted.channel)
    if wanted.city:
        where.append(customers.c.city.in_(place_names(wanted.city)))  # 上海 = 上海市 = Shanghai
    if wanted.consent:
        where.append(
            exists().where(
                consents.c.customer_id == customers.c.id,
                consents.c.channel == wanted.consent,
                consents.c.granted.is_(True),
            )
        )
    return where, joins


def _joined(model: str, joins: set[str] | None = None) -> Any:
    """customers with its stage (in `model`), tier and churn score: outer joins for a page, and
    for a count only the tables a filter reads (inner joins: the filter needs a row anyway)."""
    table: Any = customers
    on = {
        "stage": (
            customer_stages,
            and_(customer_stages.c.customer_id == customers.c.id, customer_stages.c.model == model),
        ),
        "tier": (customer_tiers, customer_tiers.c.customer_id == customers.c.id),
        "churn": (churn_scores, churn_scores.c.customer_id == customers.c.id),
    }
    for key, (other, condition) in on.items():
        if joins is None or f"{key}?" in joins:  # "?": the filter keeps customers without a row
            table = table.outerjoin(other, condition)
        elif key in joins:
            table = table.join(other, condition)
    return table


def _query(where: list[Any], model: str, lowest_tier: str) -> Select[Any]:
    return (
        select(
            customers.c.id,
            customers.c.first_name,
            customers.c.last_name,
            customers.c.email,
            customers.c.phone,
            customers.c.external_id,
            customers.c.city,
            customers.c.acquisition_channel.label("channel"),
            customer_stages.c.stage,
            func.coalesce(customer_tiers.c.tier, literal(lowest_tier, String)).label("tier"),
            churn_scores.c.band,
            churn_scores.c.probability.label("churn_probability"),
            customers.c.created_at,
        )
        .select_from(_joined(model))
        .where(*where)
    )


def _count(where: list[Any], joins: set[str], model: str) -> Select[Any]:
    return select(func.count()).select_from(_joined(model, joins)).where(*where)


def _order(sort: str, query: Select[Any]) -> Select[Any]:
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    columns: dict[str, list[Any]] = {
        "id": [],
        "name": [customers.c.last_name, customers.c.first_name],
        "city": [customers.c.city],
        "channel": [customers.c.acquisition_channel],
        "stage": [customer_stages.c.stage],
        "risk": [churn_scores.c.probability],
        "created": [customers.c.created_at],
    }
    chosen = columns.get(key, [])
    ordered = [(c.desc() if descending else c.asc()).nulls_last() for c in chosen]
    tie = customers.c.id.desc() if descending and key == "id" else customers.c.id.asc()
    return query.order_by(*ordered, tie)


def customer_page(
    engine: Engine, wanted: CustomerFilter, sort: str = "id", page: int = 1, per_page: int = 50
) -> CustomerPage:
    """One page of the customers that match `wanted`, sorted by `sort` (one of SORTS, "-" in
    front for descending), with how many match in all."""
    model = current_model(engine).name
    where, joins = _conditions(engine, wanted, model)
    query, counted = _query(where, model, programme(engine).lowest.name), _count(where, joins, model)
    page = max(1, page)
    with engine.connect() as conn:
        total = int(conn.execute(counted).scalar_one())
        rows = conn.execute(_order(sort, query).limit(per_page).offset((page - 1) * per_page)).all()
    return CustomerPage(total, [ListRow(**r._mapping) for r in rows], page, per_page)


def matching_rows(engine: Engine, wanted: CustomerFilter) -> Iterator[ListRow]:
    """Every customer that matches `wanted`, in id order, read in batches by id (keyset), so an
    export of a million customers never holds them all."""
    model = current_model(engine).name
    where, _ = _conditions(engine, wanted, model)
    query = _query(where, model, programme(engine).lowest.name).order_by(customers.c.id).limit(EXPORT_BATCH)
    after = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(query.where(customers.c.id > after)).all()
        yield from (ListRow(**r._mapping) for r in rows)
        if len(rows) < EXPORT_BATCH:
            return
        after = rows[-1].id


# the drop-downs' values are read at most this often: over a million customers the distinct cities
# are a scan, and a new city or segment may well take a minute to be offered
CHOICES_SECONDS = 60.0
_choices: dict[tuple[str, str], tuple[float, dict[str, list[str]]]] = {}


def filter_choices(engine: Engine) -> dict[str, list[str]]:
    """The values each filter can take in this store (for the list's drop-downs), at most
    CHOICES_SECONDS old."""
    model = current_model(engine)
    key = (str(engine.url), model.name)
    cached = _choices.get(key)
    if cached is not None and time.monotonic() - cached[0] < CHOICES_SECONDS:
        return cached[1]

    def distinct(column: Any) -> Select[Any]:
        return select(column).where(column.is_not(None)).distinct().order_by(column)

    with engine.connect() as conn:
        choices = {
            "stage": list(model.keys),
            "segment": list(conn.execute(select(segments.c.name).order_by(segments.c.name)).scalars()),
            "tier": [t.name for t in programme(engine).tiers],
            "band": ["high", "medium", "low", "lost"],
            "channel": list(conn.execute(distinct(customers.c.acquisition_channel)).scalars()),
            "city": list(conn.execute(distinct(customers.c.city).limit(500)).scalars()),
            "consent": list(conn.execute(distinct(consents.c.channel)).scalars()),
        }
    _choices[key] = (time.monotonic(), choices)
    return choices
