"""The segment compiler against a plain-Python evaluation of the same conditions over the same
small shop: hypothesis builds random and/or/not trees of atoms, each atom with its own Python
meaning written from the raw data below (not from the database)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from clm.analytics.tables import churn_models, churn_scores, clv_scores
from clm.commerce.schemas import OrderIn, ProductIn
from clm.commerce.service import ingest_order_batch, upsert_products
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.events.schemas import EventIn
from clm.events.service import ingest
from clm.lifecycle.service import assign_stages
from clm.segments.evaluate import compile_segment, matching
from clm.segments.service import create_segment, list_segments, parse_definition, preview

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@dataclass
class Person:
    ext: str
    city: str | None = None
    vip: str | None = None
    email_ok: bool = False
    birthday: date | None = None
    orders: list[tuple[float, float, str, str]] = field(default_factory=list)  # days ago, total, sku, status
    views: list[tuple[float, str]] = field(default_factory=list)  # days ago, category
    clicks: list[float] = field(default_factory=list)
    rfm: str | None = None
    risk: float | None = None
    clv: float | None = None
    listed: bool = False
    id: int = 0

    def counted(
        self, within: float | None = None, category: str | None = None
    ) -> list[tuple[float, float, str, str]]:
        return [
            o
            for o in self.orders
            if o[3] == "completed"
            and (within is None or o[0] < within)
            and (category is None or CATEGORY[o[2]] == category)
        ]


CATEGORY = {"SH-1": "shoes", "SH-2": "shoes", "BG-1": "bags"}
POINTS = {"p1": 120, "p2": 30, "p5": 300}  # custom numeric attribute; p3 has a non-number
PEOPLE = [
    Person(
        "p1",
        "Shanghai",
        "yes",
        True,
        date(1990, 5, 1),
        [(5, 100, "SH-1", "completed"), (40, 50, "BG-1", "completed")],
        [(1, "shoes"), (3, "shoes"), (10, "bags")],
        [2],
        "champions",
        0.1,
        900.0,
        True,
    ),
    Person(
        "p2",
        "Beijing",
        None,
        False,
        date(2001, 1, 1),
        [(100, 300, "BG-1", "completed")],
        [(2, "shoes")],
        [],
        "at risk",
        0.7,
        120.0,
    ),
    Person("p3", None, "no", True, None, [], [(1, "bags"), (2, "bags"), (4, "shoes"), (20, "shoes")], [1, 5]),
    Person(
        "p4",
        "Shanghai",
        None,
        False,
        date(1970, 3, 3),
        [(200, 80, "SH-2", "completed"), (10, 60, "SH-2", "cancelled")],
        [],
        [],
        "hibernating",
        0.9,
        10.0,
        True,
    ),
    Person(
        "p5",
        "Chengdu",
        "yes",
        True,
        date(1985, 7, 7),
        [(1, 20, "BG-1", "completed"), (2, 30, "SH-1", "completed"), (3, 40, "SH-2", "completed")],
        [(1, "shoes")],
        [1, 2, 3],
        "champions",
        0.05,
        500.0,
    ),
    Person("p6", "Beijing", None, False, None, [], [], []),
    Person(
        "p7",
        "Chengdu",
        "no",
        False,
        date(1999, 12, 31),
        [(60, 500, "SH-1", "completed")],
        [(30, "bags"), (59, "shoes")],
        [70],
        "loyal",
        0.3,
        300.0,
        True,
    ),
]


def _build(engine: Any) -> None:
    with engine.begin() as conn:
        upsert_products(
            conn, [ProductIn(sku=s, name=s, category=c, price=10, cost=5) for s, c in CATEGORY.items()]
        )
    for p in PEOPLE:
        item = CustomerIn(
            external_id=p.ext,
            first_seen_at=ago(400),
            city=p.city,
            birthday=p.birthday,
            attributes={
                **({"vip": p.vip} if p.vip else {}),
                **({"points": POINTS[p.ext]} if p.ext in POINTS else {}),
                **({"points": "lots"} if p.ext == "p3" else {}),
            },
            consents={"email": True} if p.email_ok else {},
        )
        p.id = upsert_customer(engine, item, actor="test")[0].id
        for n, (days, total, sku, status) in enumerate(p.orders):
            order = OrderIn(
                order_id=f"{p.ext}-{n}",
                external_id=p.ext,
                ordered_at=ago(days),
                status=status,
                total=total,
                items=[{"sku": sku, "unit_price": total}],
            )
            ingest_order_batch(engine, [order], actor="test")
        batch = [
            EventIn(
                type="product_view",
                timestamp=ago(d),
                channel="web",
                external_id=p.ext,
                properties={"category": c},
            )
            for d, c in p.views
        ] + [
            EventIn(type="email_click", timestamp=ago(d), channel="email", external_id=p.ext)
            for d in p.clicks
        ]
        if batch:
            ingest(engine, [e.to_valid(NOW) for e in batch], actor="test")
    assign_stages(engine, as_of=NOW)
    with engine.begin() as conn:
        model_id = conn.execute(
            insert(churn_models).values(trained_at=NOW, source="store", name="t", card={}, model=b"x")
        ).inserted_primary_key[0]
        for p in PEOPLE:
            if p.rfm is not None:
                conn.execute(
                    insert(clv_scores).values(
                        customer_id=p.id,
                        scored_at=NOW,
                        model="bgnbd",
                        horizon_days=365,
                        p_alive=0.5,
                        expected_purchases=1,
                        expected_spend=10,
                        clv=p.clv,
                        rfm_segment=p.rfm,
                    )
                )
            if p.risk is not None:
                band = "high" if p.risk >= 0.6 else "medium" if p.risk >= 0.3 else "low"
                conn.execute(
                    insert(churn_scores).values(
                        customer_id=p.id,
                        model_id=model_id,
                        scored_at=NOW,
                        probability=p.risk,
                        band=band,
                        reasons=[],
                    )
                )
    create_segment(engine, "listed", static=True, customer_ids=[p.id for p in PEOPLE if p.listed])


def _age(p: Person) -> int | None:
    if p.birthday is None:
        return None
    return int((NOW.date() - p.birthday).days / 365.25)


def _stage(p: Person) -> str:
    # clm5: acquisition without orders; the demo people all have recent touches
    return "acquisition" if not p.counted() else ""


Truth = Callable[[Person], bool | None]


def _cmp(value: float | None, op: str, k: float) -> bool | None:
    if value is None:
        return None
    return {">=": value >= k, ">": value > k, "<": value < k, "=": value == k}[op]


def atoms() -> st.SearchStrategy[tuple[str, Truth]]:
    k = st.integers(0, 3)
    days = st.sampled_from([3, 7, 14, 45, 90])
    op = st.sampled_from([">=", ">", "<", "="])
    city = st.sampled_from(["Shanghai", "Beijing", "Chengdu", "Wuhan"])
    return st.one_of(
        st.builds(lambda o, n: (f"orders {o} {n}", lambda p: _cmp(len(p.counted()), o, n)), op, k),
        st.builds(
            lambda o, x: (f"revenue {o} {x}", lambda p: _cmp(sum(t for _, t, _, _ in p.counted()), o, x)),
            op,
            st.sampled_from([0, 60, 100, 300]),
        ),
        st.builds(
            lambda o, d: (
                f"days_since_last_purchase {o} {d}",
                lambda p: _cmp(min((a for a, *_ in p.counted()), default=None), o, d),
            ),
            op,
            days,
        ),
        st.builds(lambda c: (f'city = "{c}"', lambda p: None if p.city is None else p.city == c), city),
        st.builds(
            lambda a, b: (f'city in ["{a}", "{b}"]', lambda p: None if p.city is None else p.city in (a, b)),
            city,
            city,
        ),
        st.just(("city is null", lambda p: p.city is None)),
        st.just(('attr.vip = "yes"', lambda p: None if p.vip is None else p.vip == "yes")),
        st.builds(
            lambda x: (f"number(attr.points) > {x}", lambda p: _cmp(POINTS.get(p.ext), ">", x)),
            st.sampled_from([0, 50, 150]),
        ),
        st.just(("consent.email", lambda p: p.email_ok)),
        st.builds(lambda a: (f"age >= {a}", lambda p: _cmp(_age(p), ">=", a)), st.sampled_from([18, 30, 50])),
        st.just(('stage = "acquisition"', lambda p: _stage(p) == "acquisition")),
        st.builds(
            lambda o, d, n: (
                f"events(product_view, last {d}d) {o} {n}",
                lambda p: _cmp(sum(1 for a, _ in p.views if a < d), o, n),
            ),
            op,
            days,
            k,
        ),
        st.builds(lambda n: (f"{n} < events(email_click)", lambda p: n < len(p.clicks)), k),
        st.builds(
            lambda o, d, n: (f"orders(last {d}d) {o} {n}", lambda p: _cmp(len(p.counted(d)), o, n)),
            op,
            days,
            k,
        ),
        st.builds(
            lambda d, c: (
                f'events(product_view, last {d}d, category = "{c}") >= 1',
                lambda p: any(a < d and cat == c for a, cat in p.views),
            ),
            days,
            st.sampled_from(["shoes", "bags"]),
        ),
        st.builds(lambda n: (f"events(email_click) >= {n}", lambda p: len(p.clicks) >= n), k),
        st.builds(lambda d: (f"purchased(last {d}d)", lambda p: bool(p.counted(d))), days),
        st.builds(
            lambda c: (f'purchased(category = "{c}")', lambda p: bool(p.counted(category=c))),
            st.sampled_from(["shoes", "bags"]),
        ),
        st.builds(lambda d, n: (f"orders(last {d}d) >= {n}", lambda p: len(p.counted(d)) >= n), days, k),
        st.builds(
            lambda d, x: (f"spent(last {d}d) > {x}", lambda p: sum(t for _, t, _, _ in p.counted(d)) > x),
            days,
            st.sampled_from([0, 25, 100]),
        ),
        st.just(('rfm_segment = "champions"', lambda p: None if p.rfm is None else p.rfm == "champions")),
        st.builds(
            lambda x: (f"churn_risk > {x}", lambda p: _cmp(p.risk, ">", x)), st.sampled_from([0.1, 0.5])
        ),
        st.just(("clv >= 300", lambda p: _cmp(p.clv, ">=", 300))),
        st.just(('in_segment("listed")', lambda p: p.listed)),
        st.just(
            (
                "revenue / orders > 60",
                lambda p: (
                    None if not p.counted() else sum(t for _, t, _, _ in p.counted()) / len(p.counted()) > 60
                ),
            )
        ),
    )


def _and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def trees() -> st.SearchStrategy[tuple[str, Truth]]:
    def extend(inner: st.SearchStrategy[tuple[str, Truth]]) -> st.SearchStrategy[tuple[str, Truth]]:
        both = st.tuples(inner, inner)
        return st.one_of(
            both.map(lambda ab: (f"({ab[0][0]}) and ({ab[1][0]})", lambda p: _and(ab[0][1](p), ab[1][1](p)))),
            both.map(lambda ab: (f"({ab[0][0]}) or ({ab[1][0]})", lambda p: _or(ab[0][1](p), ab[1][1](p)))),
            # `not` means "not true" (docs/segments.md): unknown counts as not matching
            inner.map(lambda a: (f"not ({a[0]})", lambda p: a[1](p) is not True)),
        )

    return st.recursive(atoms(), extend, max_leaves=6)


@pytest.fixture
def small_shop(engine: Any) -> Any:
    _build(engine)
    return engine


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trees())
def test_compiled_segments_match_plain_python(small_shop: Any, tree: tuple[str, Truth]) -> None:
    text, truth = tree
    expected = sorted(p.ext for p in PEOPLE if truth(p) is True)
    # set-based, as a full evaluation or a preview runs it
    result = preview(small_shop, text, sample=100, as_of=NOW)
    assert sorted(m.external_id for m in result.sample) == expected, text
    assert result.count == len(expected)
    # per customer, as the re-check after an event runs it
    compiled = compile_segment(parse_definition(text), {s.name: s.id for s in list_segments(small_shop)}.get)
    params = {**compiled.params(NOW), "scope": [p.id for p in PEOPLE]}
    with small_shop.connect() as conn:
        found = {row[0] for row in conn.execute(matching(compiled, scoped=True), params)}
    assert sorted(p.ext for p in PEOPLE if p.id in found) == expected, text
