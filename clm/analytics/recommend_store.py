"""Recommendations over the store: build the association rules from every counted order, answer
one customer's top-N with a reason each, and evaluate offline on each customer's last order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, and_, delete, select

from clm.analytics.recommend import AssociationRecommender, hit_rate
from clm.analytics.tables import product_associations, product_buyers
from clm.commerce.tables import order_items, orders, products
from clm.core.errors import InvalidInput
from clm.core.timeutil import utcnow
from clm.customers.service import get_customer
from clm.features import counted_order
from clm.store.bulk import insert_many
from clm.store.schema import to_db_timestamp


@dataclass(frozen=True)
class Recommendation:
    """A product for a customer: cross-sell (bought together), upsell (a step up in a category
    they buy) or popular (no rule applies), with the reason in words."""

    sku: str
    name: str
    category: str | None
    price: float
    kind: str
    score: float
    reason: str
    because_of: str | None = None


def _lines(engine: Engine) -> pd.DataFrame:
    """Every counted order line: customer_id, order_pk, ordered_at, sku."""
    query = (
        select(orders.c.customer_id, orders.c.id.label("order_pk"), orders.c.ordered_at, order_items.c.sku)
        .select_from(order_items.join(orders, orders.c.id == order_items.c.order_pk))
        .where(counted_order(utcnow()))
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=["customer_id", "order_pk", "ordered_at", "sku"])


def _catalog(engine: Engine) -> pd.DataFrame:
    query = select(
        products.c.sku,
        products.c.name,
        products.c.category,
        products.c.price,
        and_(products.c.active, products.c.in_stock).label("available"),
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=["sku", "name", "category", "price", "available"])
    frame["available"] = frame["available"].astype(bool)
    frame["price"] = frame["price"].astype(float)
    return frame


def build_recommendations(engine: Engine, *, min_together: int | None = None) -> dict[str, Any]:
    """Count the association rules and product popularity over every customer's purchases and
    store them (replacing the previous build)."""
    lines = _lines(engine)
    if lines.empty:
        raise InvalidInput("no orders in the store to learn from", "orders")
    catalog = _catalog(engine)
    model = AssociationRecommender(min_together=min_together).fit(lines, catalog)
    now = utcnow()
    with engine.begin() as conn:
        stamp = to_db_timestamp(now, conn.dialect.name)
        conn.execute(delete(product_associations))
        conn.execute(delete(product_buyers))
        r = model.rules_
        insert_many(
            conn,
            product_associations,
            ("antecedent", "consequent", "together", "support", "confidence", "lift", "built_at"),
            list(
                zip(
                    r["antecedent"],
                    r["consequent"],
                    r["together"].astype(int).tolist(),
                    r["support"].tolist(),
                    r["confidence"].tolist(),
                    r["lift"].tolist(),
                    [stamp] * len(r),
                    strict=True,
                )
            ),
        )
        insert_many(
            conn,
            product_buyers,
            ("sku", "buyers", "customers", "built_at"),
            [(s, int(b), model.customers_, stamp) for s, b in zip(model.skus_, model.buyers_, strict=True)],
        )
    return {"customers": model.customers_, "products": len(model.skus_), "rules": len(r), "built_at": now}


def rules(engine: Engine, sku: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The stored rules, strongest first (optionally those from one product)."""
    t = product_associations
    query = select(t).order_by(t.c.lift.desc(), t.c.confidence.desc()).limit(limit)
    if sku:
        query = query.where(t.c.antecedent == sku)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def _stored_model(engine: Engine, catalog: pd.DataFrame) -> AssociationRecommender:
    with engine.connect() as conn:
        stored = pd.DataFrame(
            conn.execute(select(product_associations)).all(),
            columns=[c.name for c in product_associations.columns],
        )
        popularity = conn.execute(
            select(product_buyers.c.sku, product_buyers.c.buyers, product_buyers.c.customers)
        ).all()
    if not popularity:
        build_recommendations(engine)
        return _stored_model(engine, catalog)
    buyers = pd.Series({s: b for s, b, _ in popularity})
    return AssociationRecommender.from_rules(stored, buyers, int(popularity[0][2]), catalog)


def recommend(engine: Engine, customer_id: int, n: int = 10) -> list[Recommendation]:
    """The customer's top-n products they do not own yet, each with a short reason. Uses the
    stored rules (`clm recommend build`; built on first use)."""
    customer_id = get_customer(engine, customer_id).id
    return recommend_many(engine, [customer_id], n)[customer_id]


def recommend_many(engine: Engine, customer_ids: list[int], n: int = 10) -> dict[int, list[Recommendation]]:
    """Top-n products for many customers at once (message batches): the rules and the catalog
    are loaded once and the scores computed for all of them in one matrix product."""
    ids = sorted(set(customer_ids))
    catalog = _catalog(engine)
    model = _stored_model(engine, catalog)
    query = (
        select(orders.c.customer_id, order_items.c.sku)
        .select_from(order_items.join(orders, orders.c.id == order_items.c.order_pk))
        .where(orders.c.customer_id.in_(ids), counted_order(utcnow()))
        .distinct()
    )
    with engine.connect() as conn:
        bought = pd.DataFrame(conn.execute(query).all(), columns=["customer_id", "sku"])
    owned = model.matrix(bought, ids)
    cross, up = model.scores(owned)
    combined = model.combined(owned)
    best = model.top(owned, n)
    info = catalog.set_index("sku")
    skus_of = bought.groupby("customer_id")["sku"].apply(list).to_dict()
    out: dict[int, list[Recommendation]] = {}
    for i, cid in enumerate(ids):
        mine = [model.index_[s] for s in skus_of.get(cid, []) if s in model.index_]
        items = []
        for j in best[i][best[i] >= 0]:
            sku = model.skus_[j]
            row = info.loc[sku] if sku in info.index else None
            name = str(row["name"]) if row is not None else sku
            category = None if row is None or pd.isna(row["category"]) else str(row["category"])
            price = float(row["price"]) if row is not None else 0.0
            kind, reason, because = _reason(model, info, mine, j, float(cross[i, j]), float(up[i, j]))
            items.append(
                Recommendation(
                    sku, name, category, price, kind, round(float(combined[i, j]), 4), reason, because
                )
            )
        out[cid] = items
    return out


def _reason(
    model: AssociationRecommender, info: pd.DataFrame, mine: list[int], j: int, cross: float, up: float
) -> tuple[str, str, str | None]:
    def label(k: int) -> str:
        sku = model.skus_[k]
        return str(info.loc[sku, "name"]) if sku in info.index else sku

    base = model.buyers_[j] / max(model.customers_, 1)
    if up > 0 and up >= 1 - (1 - cross) * (1 - base):
        below = [k for k in mine if model.step_up_[k, j]]
        k = max(below, key=lambda k: float(info.loc[model.skus_[k], "price"]))
        was, now = float(info.loc[model.skus_[k], "price"]), float(info.loc[model.skus_[j], "price"])
        category = info.loc[model.skus_[j], "category"]
        return "upsell", f"a step up from {label(k)} in {category} ({now:,.0f} vs {was:,.0f})", model.skus_[k]
    if cross > 0:
        k = max(mine, key=lambda k: float(model.confidence_[k, j]))
        confidence = float(model.confidence_[k, j])
        return "cross-sell", f"bought with {label(k)} by {confidence:.0%} of its buyers", model.skus_[k]
    return "popular", f"popular: bought by {base:.0%} of customers", None


def evaluate_recommendations(
    engine: Engine, n: int = 10, *, max_customers: int = 50_000, seed: int = 7
) -> dict[str, Any]:
    """Hit-rate@n on each repeat customer's held-out last order: rules learnt from every order
    except those held out, against recommending the most popular products."""
    lines = _lines(engine)
    if lines.empty:
        raise InvalidInput("no orders in the store to evaluate on", "orders")
    lines["ordered_at"] = pd.to_datetime(lines["ordered_at"], utc=True)
    last = lines.groupby("customer_id")["ordered_at"].transform("max")
    first = lines.groupby("customer_id")["ordered_at"].transform("min")
    held = (lines["ordered_at"] == last) & (first < last)
    train = lines[~held]
    test = lines[held]
    catalog = _catalog(engine)
    model = AssociationRecommender().fit(train, catalog, skus=sorted(set(lines["sku"])))
    owned_sets = train.groupby("customer_id")["sku"].agg(set)
    targets = test.groupby("customer_id")["sku"].agg(set)
    targets = pd.Series({c: t - owned_sets.get(c, set()) for c, t in targets.items()}, dtype=object)
    targets = targets[targets.map(len) > 0]
    if targets.empty:
        raise InvalidInput("no customer has a second order with a new product to hold out", "orders")
    customers = targets.index.to_numpy()
    if len(customers) > max_customers:
        customers = np.sort(np.random.default_rng(seed).choice(customers, size=max_customers, replace=False))
    truth = [{model.index_[s] for s in targets[c]} for c in customers]
    model_hits: list[np.ndarray] = []
    popular_hits: list[np.ndarray] = []
    for start in range(0, len(customers), 5_000):
        part = customers[start : start + 5_000].tolist()
        owned = model.matrix(train[train["customer_id"].isin(part)], part)
        model_hits.append(model.top(owned, n))
        popular_hits.append(model.popular(owned, n))
    top_model, top_popular = np.vstack(model_hits), np.vstack(popular_hits)
    ours, baseline = hit_rate(top_model, truth), hit_rate(top_popular, truth)
    return {
        "n": n,
        "customers": len(customers),
        "rules": len(model.rules_),
        "hit_rate": ours,
        "popularity_hit_rate": baseline,
        "lift_over_popularity": ours / baseline if baseline > 0 else None,
        "evaluated_at": utcnow(),
    }


__all__ = ["Recommendation", "build_recommendations", "evaluate_recommendations", "recommend", "rules"]
