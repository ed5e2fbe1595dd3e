"""Churn early warning on the store: features at a cut-off, labels after it, a time-split
evaluation against baselines, and scores with reasons for every recently active customer.

The label of a customer at a cut-off c with horizon H: churned when they have no activity
event and no order in (c, c + H]. Features only see what happened up to c, so nothing leaks.
Time split (with `end` the last moment the data covers):

    train: features at end - 2H, labels in (end - 2H, end - H]
    test:  features at end - H,  labels in (end - H, end]      <- the report's held-out period
    final: refit on the test window, score features at `end`

The population is the customers active in the `active_within_days` before the cut-off.
Scoring splits it in two: customers the stage model already calls lapsed (its rule for the stage
outside the funnel: clm5's win-back, the churn stage of funnel5 and classic4; by default 3x the
customer's own gap between purchases, the shop's median gap if they bought once, never under 90
days) are "already lost" (band `lost`), the others are "at risk" in a calibrated band. A customer
who never bought, whom those rules leave out, is lost past the same threshold of inactivity with
the shop's gap.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sqlalchemy import Engine, String, and_, case, delete, exists, func, insert, literal, or_, select, union
from sqlalchemy.engine import Connection

from clm.analytics.churn import BANDS, ChurnModel, bands, evaluate
from clm.analytics.clv import BetaGeoNBD, p_alive_defined
from clm.analytics.frames import read_frame
from clm.analytics.rfm import store_summary
from clm.analytics.tables import churn_models, churn_scores, clv_scores
from clm.commerce.tables import orders
from clm.conditions import compile_condition, parse_condition
from clm.core.errors import InvalidInput, NotFound
from clm.core.timeutil import as_utc, utcnow
from clm.customers.scope import CustomerScope, in_scope
from clm.customers.service import get_customer
from clm.customers.tables import consents, customers
from clm.events.tables import events
from clm.features import SYSTEM_CHANNEL, CustomerSpace, feature_params, feature_query, purchase_gaps_query
from clm.store.bulk import insert_ignore_many
from clm.store.schema import to_db_timestamp

_SLICE = 50_000  # customers scored at a time
# Examples one fit learns from, at most: past ~400,000 the held-out AUC stops moving (0.8077 at
# 400,000 against 0.8080 at 2.1M on the 1M-customer bench) while the time grows with the rows.
MAX_EXAMPLES = 600_000
_SAMPLE_MODULUS = 1000
LOST = "lost"  # the band of customers already lost (past the stage model's lapse threshold)
# clm5's win-back rule (clm/lifecycle/presets/clm5.yaml): the lapse threshold when the caller
# does not pass the selected stage model's (`clm.lifecycle.service.lapsed_rule`)
DEFAULT_LAPSED_RULE = (
    "orders >= 1 and days_since_last_purchase > "
    "max(3 * coalesce(purchase_gap_days, shop_purchase_gap_days, 30), 90)"
)
# who never bought: the same threshold on inactivity, with the shop's gap
_NEVER_BOUGHT_LOST = (
    "orders = 0 and days_since_last_activity > max(3 * coalesce(shop_purchase_gap_days, 30), 90)"
)

NUMERIC = (
    "days_since_first_seen",
    "days_since_last_activity",
    "days_since_last_purchase",
    "orders",
    "refunds",
    "revenue",
    "aov",
    "purchase_gap_days",
    "orders_90d",
    "revenue_365d",
    "categories",
    "views_30d",
    "carts_30d",
    "email_opens_30d",
    "email_clicks_30d",
    "events_30d",
    "inquiries",
    "last_nps",
    "last_csat",
    "open_tickets",
    "overdue_ratio",
)
CATEGORICAL = ("acquisition_channel",)
# How each feature reads in a reason ("days since last activity: 143 (customers who stay: 12)").
WORDS = {
    "days_since_first_seen": "days as a customer",
    "days_since_last_activity": "days since last activity",
    "days_since_last_purchase": "days since last purchase",
    "orders": "orders",
    "refunds": "refunded orders",
    "revenue": "revenue to date",
    "aov": "average order value",
    "purchase_gap_days": "usual days between purchases",
    "orders_90d": "orders in the last 90 days",
    "revenue_365d": "revenue in the last 365 days",
    "categories": "product categories bought",
    "views_30d": "page and product views in the last 30 days",
    "carts_30d": "items added to a cart in the last 30 days",
    "email_opens_30d": "emails opened in the last 30 days",
    "email_clicks_30d": "email clicks in the last 30 days",
    "events_30d": "actions in the last 30 days",
    "inquiries": "inquiries, trials and sales calls",
    "last_nps": "latest NPS answer",
    "last_csat": "latest CSAT answer",
    "open_tickets": "open support tickets",
    "overdue_ratio": "days since last purchase / usual gap",
    "acquisition_channel": "acquisition channel",
}


def data_end(conn: Connection) -> datetime | None:
    """The last moment the store's activity covers: the latest activity event or order."""
    last_event = conn.execute(
        select(func.max(events.c.occurred_at)).where(events.c.channel != SYSTEM_CHANNEL)
    ).scalar()
    last_order = conn.execute(select(func.max(orders.c.ordered_at))).scalar()
    known = [as_utc(t) for t in (last_event, last_order) if t is not None]
    return max(known) if known else None


def shop_purchase_gap(conn: Connection, as_of: datetime) -> float | None:
    """Median over repeat buyers of their typical gap between purchases, in days (as the
    lifecycle's stage runs compute it)."""
    gaps = np.array([g for (g,) in conn.execute(purchase_gaps_query(), {"as_of": as_of}) if g is not None])
    return float(np.median(gaps.astype(float))) if gaps.size else None


def store_features(
    conn: Connection,
    as_of: datetime,
    active_within_days: int,
    *,
    lapsed_rule: str | None = None,
    sample: int | None = None,
) -> pd.DataFrame:
    """Model features of every customer active in the `active_within_days` before `as_of`,
    indexed by customer id; one set-based query. With `lapsed_rule` (a stage rule), a column
    `lost` too: 1 for a customer the rule calls lapsed, or who never bought and has been inactive
    past the same default threshold. With `sample` (1-999), only the customers whose id modulo
    1,000 is below it."""
    row = feature_query(sampled=sample is not None).subquery("f")
    columns: list[Any] = [row.c[name] for name in ("customer_id", *NUMERIC[:-1])]
    params = {**feature_params(as_of, None), **_sample_params(sample)}
    if lapsed_rule is not None:
        space = CustomerSpace(row.c)
        lost = or_(
            compile_condition(parse_condition(lapsed_rule), space, text=lapsed_rule),
            compile_condition(parse_condition(_NEVER_BOUGHT_LOST), space),
        )
        columns.append(case((lost, 1), else_=0).label("lost"))
        params = {
            **feature_params(as_of, shop_purchase_gap(conn, as_of)),
            **space.window_params(as_of),
            **_sample_params(sample),
        }
    query = (
        select(*columns, customers.c.acquisition_channel)
        .join(customers, customers.c.id == row.c.customer_id)
        .where(row.c.days_since_last_activity <= active_within_days)
    )
    numeric = [*NUMERIC[:-1], *(["lost"] if lapsed_rule is not None else [])]
    frame = read_frame(conn, query, params, numeric=numeric).set_index("customer_id")
    shop_gap = frame["purchase_gap_days"].median()
    gap = frame["purchase_gap_days"].fillna(shop_gap if pd.notna(shop_gap) else np.nan)
    frame["overdue_ratio"] = frame["days_since_last_purchase"] / gap.where(gap > 0)
    for name in NUMERIC:  # single precision, as the model reads them (half the memory)
        frame[name] = frame[name].astype(np.float32)
    frame["acquisition_channel"] = (
        frame["acquisition_channel"].astype("string").fillna("unknown").astype("category")
    )
    return frame[[*NUMERIC, *CATEGORICAL, *(["lost"] if lapsed_rule is not None else [])]]


def _sample_params(sample: int | None) -> dict[str, int]:
    return {} if sample is None else {"sample_modulus": _SAMPLE_MODULUS, "sample_keep": sample}


def training_sample(conn: Connection, windows: int, max_examples: int = MAX_EXAMPLES) -> int | None:
    """How many of each 1,000 customer ids to learn from so that `windows` snapshots give at
    most about `max_examples` examples; None for all of them."""
    live = conn.execute(
        select(func.count()).select_from(customers).where(customers.c.merged_into.is_(None))
    ).scalar_one()
    if live * windows <= max_examples:
        return None
    return max(1, max_examples * _SAMPLE_MODULUS // (live * windows))


def active_between(conn: Connection, start: datetime, end: datetime, sample: int | None = None) -> np.ndarray:
    """Ids of customers with an activity event or an order in (start, end] (of the `sample`)."""
    event_who, order_who = events.c.customer_id, orders.c.customer_id
    in_events = [
        events.c.occurred_at > start,
        events.c.occurred_at <= end,
        events.c.channel != SYSTEM_CHANNEL,
    ]
    in_orders = [orders.c.ordered_at > start, orders.c.ordered_at <= end]
    if sample is not None:
        in_events.append(event_who % _SAMPLE_MODULUS < sample)
        in_orders.append(order_who % _SAMPLE_MODULUS < sample)
    acted = union(select(event_who).where(*in_events), select(order_who).where(*in_orders))
    return np.array([r[0] for r in conn.execute(acted)], dtype=np.int64)


def labelled(
    conn: Connection, cutoff: datetime, horizon_days: int, active_within_days: int, sample: int | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Features at `cutoff` and the label "no activity in (cutoff, cutoff + horizon]"."""
    features = store_features(conn, cutoff, active_within_days, sample=sample)
    active = active_between(conn, cutoff, cutoff + timedelta(days=horizon_days), sample)
    churned = (~features.index.isin(active)).astype(int)
    return features, churned


def _cutoffs(last: datetime, windows: int) -> list[str]:
    return [(last - timedelta(days=30 * k)).isoformat() for k in range(windows)]


def _examples(
    conn: Connection,
    last_cut: datetime,
    horizon_days: int,
    active_within_days: int,
    windows: int,
    sample: int | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Labelled examples at `windows` cut-offs a month apart ending at `last_cut`: more to
    learn from, and every label still ends by `last_cut + horizon`."""
    parts = [
        labelled(conn, last_cut - timedelta(days=30 * k), horizon_days, active_within_days, sample)
        for k in range(windows)
    ]
    return pd.concat([x for x, _ in parts], ignore_index=True), np.concatenate([y for _, y in parts])


def _p_alive_baseline(engine: Engine, cutoff: datetime, ids: pd.Index) -> np.ndarray | None:
    """1 - P(alive) from BG/NBD fitted on the orders up to the cut-off, NaN where P(alive) is
    not defined (no repeat purchase: BG/NBD's 1 there is an assumption, not a prediction, and no
    order at all); None when BG/NBD cannot be fitted."""
    summary = store_summary(engine, observation_end=cutoff, unit="day")
    if summary.empty or (summary["frequency"] > 0).sum() < 10:
        return None
    fitted = BetaGeoNBD().fit(summary["frequency"], summary["recency"], summary["T"])
    alive = fitted.probability_alive(summary["frequency"], summary["recency"], summary["T"])
    defined = p_alive_defined(fitted, summary["frequency"])
    risk = pd.Series(np.where(defined, 1.0 - alive, np.nan), index=summary.index)
    return risk.reindex(ids).to_numpy(dtype=float)


@dataclass(frozen=True)
class TrainedModel:
    model_id: int
    card: dict[str, Any]


def train_store_model(
    engine: Engine,
    *,
    horizon_days: int = 90,
    as_of: datetime | None = None,
    active_within_days: int = 365,
    training_windows: int = 3,
    random_state: int = 0,
    max_examples: int = MAX_EXAMPLES,
) -> TrainedModel:
    """Train, evaluate on the held-out period against recency and P(alive), refit on the latest
    window, and save the model with its card. `as_of` defaults to the end of the data. A large
    store learns from a fixed sample of its customers (`max_examples` examples per fit, at most)
    and is evaluated on the same sample."""
    if horizon_days < 1:
        raise InvalidInput("must be at least 1 day", "horizon_days")
    with engine.connect() as conn:
        end = as_utc(as_of) if as_of else data_end(conn)
        if end is None:
            raise InvalidInput("the store has no activity to learn from")
        test_cut = end - timedelta(days=horizon_days)
        train_cut = test_cut - timedelta(days=horizon_days)
        sample = training_sample(conn, training_windows, max_examples)
        x_train, y_train = _examples(
            conn, train_cut, horizon_days, active_within_days, training_windows, sample
        )
        x_test, y_test = labelled(conn, test_cut, horizon_days, active_within_days, sample)
    if len(x_train) < 50 or len(x_test) < 50:
        raise InvalidInput(
            f"too little history to learn from: a {horizon_days}-day horizon needs at least 50 "
            f"customers active before {train_cut:%Y-%m-%d} (found {len(x_train)}) and before "
            f"{test_cut:%Y-%m-%d} (found {len(x_test)})"
        )
    model = ChurnModel(random_state=random_state, labels=WORDS).fit(x_train, y_train)
    train_examples = len(y_train)
    del x_train, y_train  # a million customers per window: free them before the final windows
    scores = {
        "model": model.predict_proba(x_test),
        "recency": x_test["days_since_last_activity"].to_numpy(),
    }
    held_out = {name: evaluate(y_test, s) for name, s in scores.items()}
    buyers = (x_test["orders"] > 0).to_numpy()
    if 0 < y_test[buyers].sum() < buyers.sum():
        held_out["buyers_only"] = {name: evaluate(y_test[buyers], s[buyers]) for name, s in scores.items()}
    # P(alive) is defined for repeat buyers only: all three compared on those customers alone
    p_alive = _p_alive_baseline(engine, test_cut, x_test.index)
    if p_alive is not None:
        repeat = ~np.isnan(p_alive)
        if 0 < y_test[repeat].sum() < repeat.sum():
            held_out["repeat_buyers"] = {
                name: evaluate(y_test[repeat], s[repeat])
                for name, s in {**scores, "p_alive": p_alive}.items()
            }
    # the final model learns from the test window and the monthly cut-offs before it
    x_final, y_final = x_test, y_test
    if training_windows > 1:
        with engine.connect() as conn:
            x_older, y_older = _examples(
                conn,
                test_cut - timedelta(days=30),
                horizon_days,
                active_within_days,
                training_windows - 1,
                sample,
            )
        x_final = pd.concat([x_test, x_older], ignore_index=True)
        y_final = np.concatenate([y_test, y_older])
        del x_older, y_older
    final = ChurnModel(random_state=random_state, labels=WORDS).fit(x_final, y_final)
    card = {
        "source": "store",
        "label": f"no activity event and no order in the {horizon_days} days after the cut-off",
        "horizon_days": horizon_days,
        "active_within_days": active_within_days,
        "customers_sampled": "all"
        if sample is None
        else f"{sample / _SAMPLE_MODULUS:.1%} (id mod 1000 < {sample})",
        "data_end": end.isoformat(),
        "windows": {
            "train": {
                "features_at": _cutoffs(train_cut, training_windows),
                "labels_until": test_cut.isoformat(),
                "examples": train_examples,
            },
            "test": {
                "features_at": [test_cut.isoformat()],
                "labels_until": end.isoformat(),
                "examples": len(y_test),
            },
            "final": {
                "features_at": _cutoffs(test_cut, training_windows),
                "labels_until": end.isoformat(),
                "examples": len(y_final),
            },
        },
        "metrics": held_out,
        **final.summary(),
    }
    return save_model(engine, final, card, source="store", name="store", horizon_days=horizon_days)


def save_model(
    engine: Engine,
    model: ChurnModel,
    card: dict[str, Any],
    *,
    source: str,
    name: str,
    horizon_days: int | None,
) -> TrainedModel:
    """Store the model with its card (the card gains the training time)."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    now = utcnow()
    card = {**card, "trained_at": now.isoformat()}
    with engine.begin() as conn:
        model_id = conn.execute(
            insert(churn_models)
            .values(
                trained_at=now,
                source=source,
                name=name[:200],
                horizon_days=horizon_days,
                card=card,
                model=buffer.getvalue(),
            )
            .returning(churn_models.c.id)
        ).scalar_one()
    return TrainedModel(int(model_id), card)


def load_model(engine: Engine, source: str) -> tuple[int, ChurnModel, dict[str, Any]]:
    """The newest model trained on `source` (store or table)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(churn_models.c.id, churn_models.c.model, churn_models.c.card)
            .where(churn_models.c.source == source)
            .order_by(churn_models.c.id.desc())
            .limit(1)
        ).first()
    if row is None:
        hint = "clm churn train" if source == "store" else "clm churn train --table FILE --label COLUMN"
        raise NotFound(f"no churn model trained on the {source} yet: run `{hint}`")
    return int(row.id), joblib.load(io.BytesIO(row.model)), dict(row.card)


def score_store(
    engine: Engine, *, as_of: datetime | None = None, lapsed_rule: str | None = None
) -> dict[str, Any]:
    """Score every recently active customer with the newest store model and replace
    `churn_scores`: calibrated probability, band and top reasons. A customer `lapsed_rule` (the
    selected stage model's, `clm.lifecycle.service.lapsed_rule`; clm5's by default) calls
    lapsed is in band `lost` instead: already gone, not at risk."""
    model_id, model, card = load_model(engine, "store")
    with engine.connect() as conn:
        end = as_utc(as_of) if as_of else data_end(conn)
        if end is None:
            raise InvalidInput("the store has no activity to score")
        features = store_features(
            conn,
            end,
            int(card.get("active_within_days", 365)),
            lapsed_rule=lapsed_rule or DEFAULT_LAPSED_RULE,
        )
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        stamp = to_db_timestamp(utcnow(), conn.dialect.name)
        conn.execute(delete(churn_scores))
        # a slice at a time: reasons hold a Python object per customer and feature
        for start in range(0, len(features), _SLICE):
            part = features.iloc[start : start + _SLICE]
            probability = model.predict_proba(part)
            band = np.where(part["lost"].to_numpy() == 1, LOST, bands(probability))
            rows = [
                (int(cid), model_id, stamp, float(p), str(b), _json([r.as_dict() for r in why]))
                for cid, p, b, why in zip(part.index, probability, band, model.reasons(part), strict=True)
            ]
            insert_ignore_many(
                conn,
                churn_scores,
                ("customer_id", "model_id", "scored_at", "probability", "band", "reasons"),
                rows,
                ("customer_id",),
            )
            for name in band:
                counts[name] = counts.get(name, 0) + 1
    return {
        "model_id": model_id,
        "as_of": end.isoformat(),
        "customers": len(features),
        "bands": dict(sorted(counts.items())),
    }


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class ChurnRisk:
    customer_id: int
    probability: float
    band: str  # high, medium or low; or lost (already gone, past the stage model's threshold)
    reasons: list[dict[str, Any]]
    scored_at: datetime
    name: str | None = None
    email: str | None = None
    clv: float | None = None  # predicted CLV from `clm clv score`, when scored
    reachable: bool = False  # an email or phone with marketing consent for it

    @property
    def status(self) -> str:
        return "lost" if self.band == LOST else "at_risk"

    @property
    def value_at_risk(self) -> float | None:
        """Probability of churn times predicted CLV: what the shop stands to lose."""
        return None if self.clv is None else self.probability * self.clv

    def as_dict(self) -> dict[str, Any]:
        """The API's shape (and `--json`'s)."""
        return {
            "customer_id": self.customer_id,
            "name": self.name,
            "email": self.email,
            "status": self.status,
            "probability": self.probability,
            "band": self.band,
            "reasons": self.reasons,
            "clv": self.clv,
            "value_at_risk": self.value_at_risk,
            "reachable": self.reachable,
            "scored_at": self.scored_at.isoformat().replace("+00:00", "Z"),
        }


def _consented(channel: str) -> Any:
    return exists().where(
        consents.c.customer_id == customers.c.id, consents.c.channel == channel, consents.c.granted.is_(True)
    )


# A customer a message can reach: an address with marketing consent for its channel (what the
# outbox requires before it sends marketing email or SMS).
_REACHABLE = or_(
    and_(customers.c.email.is_not(None), _consented("email")),
    and_(customers.c.phone.is_not(None), _consented("sms")),
)


def _risk_query() -> Any:
    return (
        select(
            churn_scores.c.customer_id,
            churn_scores.c.probability,
            churn_scores.c.band,
            churn_scores.c.reasons,
            churn_scores.c.scored_at,
            func.trim(
                func.coalesce(customers.c.first_name, literal("", String))
                + literal(" ", String)
                + func.coalesce(customers.c.last_name, literal("", String))
            ).label("name"),
            customers.c.email,
            clv_scores.c.clv,
            case((_REACHABLE, 1), else_=0).label("reachable"),
        )
        .join(customers, customers.c.id == churn_scores.c.customer_id)
        .outerjoin(clv_scores, clv_scores.c.customer_id == churn_scores.c.customer_id)
    )


def _risk(row: Any) -> ChurnRisk:
    reasons = row.reasons
    if isinstance(reasons, str):
        import orjson

        reasons = orjson.loads(reasons)
    return ChurnRisk(
        customer_id=int(row.customer_id),
        probability=float(row.probability),
        band=row.band,
        reasons=list(reasons),
        scored_at=as_utc(row.scored_at),
        name=row.name or None,
        email=row.email,
        clv=None if row.clv is None else float(row.clv),
        reachable=bool(row.reachable),
    )


def customer_risk(engine: Engine, customer_id: int) -> ChurnRisk:
    """One customer's latest churn score with its reasons (a merged id leads to its survivor)."""
    customer_id = get_customer(engine, customer_id).id
    with engine.connect() as conn:
        row = conn.execute(_risk_query().where(churn_scores.c.customer_id == customer_id)).first()
    if row is None:
        raise NotFound(
            f"customer {customer_id} has no churn score (not scored yet, or inactive for longer "
            "than the model's window): run `clm churn score`"
        )
    return _risk(row)


def _ordered(by: str) -> tuple[Any, ...]:
    if by not in ("risk", "value"):
        raise InvalidInput("sort by risk or value", "by")
    value = (churn_scores.c.probability * func.coalesce(clv_scores.c.clv, 0.0)).desc()
    first = (
        (churn_scores.c.probability.desc(),) if by == "risk" else (value, churn_scores.c.probability.desc())
    )
    return (*first, churn_scores.c.customer_id)


def at_risk(
    engine: Engine,
    *,
    top: int = 50,
    band: str | None = None,
    by: str = "value",
    reachable_only: bool = True,
) -> list[ChurnRisk]:
    """Customers at risk (not already lost), the most predicted value at risk first
    (probability x CLV from `clm clv score`, then probability), or (`by="risk"`) the highest
    probability first; by default only those a message can still reach."""
    names = [name for name, _ in BANDS]
    if band is not None and band not in names:
        raise InvalidInput(f"{band!r} is not a band: {', '.join(names)}", "band")
    query = _risk_query().where(churn_scores.c.band != LOST).order_by(*_ordered(by)).limit(top)
    if band:
        query = query.where(churn_scores.c.band == band)
    if reachable_only:
        query = query.where(_REACHABLE)
    with engine.connect() as conn:
        return [_risk(r) for r in conn.execute(query)]


def already_lost(engine: Engine, *, top: int = 50, by: str = "value") -> list[ChurnRisk]:
    """Customers already lost by the stage model's threshold, the most predicted value first:
    for win-back, not for early warning."""
    query = _risk_query().where(churn_scores.c.band == LOST).order_by(*_ordered(by)).limit(top)
    with engine.connect() as conn:
        return [_risk(r) for r in conn.execute(query)]


def risk_summary(engine: Engine, scope: CustomerScope | None = None) -> dict[str, Any]:
    """How the latest scores split: customers per band (high, medium, low, lost) with their
    share of all scored, and how many at-risk customers a message can reach (of the customers in
    `scope` only, when given)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                churn_scores.c.band,
                func.count(),
                func.sum(case((_REACHABLE, 1), else_=0)),
                func.max(churn_scores.c.scored_at),
            )
            .join(customers, customers.c.id == churn_scores.c.customer_id)
            .where(*in_scope(churn_scores.c.customer_id, scope))
            .group_by(churn_scores.c.band)
        ).all()
    total = sum(int(n) for _, n, _, _ in rows)
    per = {band: (int(n), int(r or 0)) for band, n, r, _ in rows}
    stamps = [as_utc(t) for *_, t in rows if t is not None]
    return {
        "customers": total,
        "scored_at": max(stamps).isoformat().replace("+00:00", "Z") if stamps else None,
        "bands": {
            name: {
                "customers": per.get(name, (0, 0))[0],
                "share": per.get(name, (0, 0))[0] / total if total else 0.0,
            }
            for name in [*(n for n, _ in BANDS), LOST]
        },
        "at_risk_reachable": sum(r for band, (_, r) in per.items() if band != LOST),
        "thresholds": {name: floor for name, floor in BANDS},
    }
