"""The field space of segments: everything stage rules see, plus the lifecycle stage, value and
churn scores, consent and other segments, with a record of which data each condition reads.

A segment is evaluated over `customers` with the other sources left-joined only when the
condition uses them (`SegmentSpace.joined`). Times relative to now (`days_since_…`, windows)
are computed against `:as_of` at evaluation, not taken from the last stage run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import exists, func, literal, not_, select, true
from sqlalchemy.sql.elements import ColumnElement

from clm.analytics.tables import churn_scores, clv_scores
from clm.commerce.tables import order_items, orders, products
from clm.conditions import Typed
from clm.conditions.ast import Call, Field, Filter, Literal, Window
from clm.conditions.compiler import COMPARE
from clm.customers.tables import consents, customers
from clm.events.tables import events
from clm.features import AS_OF, PROFILE_TEXT_FIELDS, CustomerSpace, counted_order
from clm.lifecycle.tables import customer_features, customer_stages
from clm.segments.tables import segment_members
from clm.store.sql import days_between, json_text

# Kinds of data a condition can depend on; ingestion reports which of them it changed.
PROFILE, CONSENT, ORDERS, FEATURES_KIND, STAGE, SCORES = (
    "profile",
    "consent",
    "orders",
    "features",
    "stage",
    "scores",
)
ANY_EVENT = "event:*"

# Features recomputed from stored timestamps at evaluation time, so they never go stale.
_SINCE = {
    "days_since_first_seen": "first_seen_at",
    "days_since_last_activity": "last_activity_at",
    "days_since_last_purchase": "last_purchase_at",
}
_NOT_NULL = {c.name for c in customer_features.columns if not c.nullable}
_MORE_TEXT = ("email", "phone", "external_id", "first_name", "last_name")
_VALUE_FIELDS = {
    "clv": "clv",
    "p_alive": "p_alive",
    "expected_purchases": "expected_purchases",
    "expected_spend": "expected_spend",
    "rfm_r": "rfm_r",
    "rfm_f": "rfm_f",
    "rfm_m": "rfm_m",
}
_ORDER_FILTERS = {"sku": order_items.c.sku, "category": products.c.category}
CONSENT_CHANNELS = ("email", "sms", "push", "phone", "whatsapp", "wechat", "wecom", "mail")


def _feature_row() -> dict[str, Any]:
    """Feature columns of `customer_features`; counts read 0 for a customer not yet evaluated."""
    row: dict[str, Any] = {}
    for column in customer_features.columns:
        if column.name in _NOT_NULL and column.name not in ("customer_id", "as_of"):
            row[column.name] = func.coalesce(column, 0)
        else:
            row[column.name] = column
    for name, stamp in _SINCE.items():
        row[name] = days_between(AS_OF, customer_features.c[stamp])
    row["customer_id"] = customers.c.id
    return row


class SegmentSpace(CustomerSpace):
    """Features, profile fields, `attr.*`, `stage`, RFM and CLV scores, `churn_risk`,
    `consent.<channel>`, and the functions `events`, `purchased`, `orders`, `spent`,
    `in_segment`. After compiling, `depends` holds the data kinds read and `joined` the tables
    to left-join onto `customers`."""

    def __init__(
        self, segment_ids: Callable[[str], int | None] | None = None, *, set_based: bool = False
    ) -> None:
        super().__init__(_feature_row())
        self.set_based = set_based
        self.depends: set[str] = set()
        self.joined: set[str] = set()
        self.segment_ids = segment_ids or (lambda name: None)

    def names(self) -> list[str]:
        return [
            *super().names(),
            *_MORE_TEXT,
            "stage",
            "rfm_segment",
            *_VALUE_FIELDS,
            "churn_risk",
            "churn_band",
            *(f"consent.{c}" for c in CONSENT_CHANNELS),
        ]

    def field(self, name: str) -> Typed | None:
        if name in self._kinds:
            self.depends.add(PROFILE if name == "age" else FEATURES_KIND)
            self.joined.add("features")
            return Typed(self.row[name], self._kinds[name])
        if name in PROFILE_TEXT_FIELDS or name in _MORE_TEXT:
            self.depends.add(PROFILE)
            return Typed(customers.c[name], "text")
        if name.startswith("attr.") and len(name) > 5:
            self.depends.add(PROFILE)
            return Typed(json_text(customers.c.attributes, name[5:]), "text")
        if name == "stage":
            self.depends.add(STAGE)
            self.joined.add("stage")
            return Typed(customer_stages.c.stage, "text")
        if name in _VALUE_FIELDS or name == "rfm_segment":
            self.depends.add(SCORES)
            self.joined.add("value")
            if name == "rfm_segment":
                return Typed(clv_scores.c.rfm_segment, "text")
            return Typed(clv_scores.c[_VALUE_FIELDS[name]], "number")
        if name in ("churn_risk", "churn_band"):
            self.depends.add(SCORES)
            self.joined.add("churn")
            if name == "churn_band":
                return Typed(churn_scores.c.band, "text")
            return Typed(churn_scores.c.probability, "number")
        if name.startswith("consent.") and len(name) > 8:
            self.depends.add(CONSENT)
            granted = exists().where(
                consents.c.customer_id == customers.c.id,
                consents.c.channel == name[8:].lower(),
                consents.c.granted == true(),
            )
            return Typed(granted.correlate_except(consents), "bool")
        return None

    def function(self, call: Call, compile_arg: Any, fail: Any) -> Typed | None:
        if call.fn == "events":
            self._event_depends(call)
            return super().function(call, compile_arg, fail)
        if call.fn in ("purchased", "orders", "spent"):
            self.depends.add(ORDERS)
            return self._orders(call, fail)
        if call.fn == "in_segment":
            return self._in_segment(call, fail)
        if call.fn == "number":
            self.depends.add(PROFILE)
            return super().function(call, compile_arg, fail)
        return None

    def order_conditions(self, call: Call, fail: Any) -> list[ColumnElement[bool]]:
        """The WHERE terms of purchased / orders / spent ([last Nd] [, sku = "…"] [, category = "…"]),
        without the customer: counted orders in the window, with such items."""
        filters: list[Filter] = []
        for arg in call.args:
            if isinstance(arg, Filter):
                if arg.key not in _ORDER_FILTERS or arg.op != "=" or not isinstance(arg.value, str):
                    raise fail(f'{call.fn}() filters items by sku = "…" or category = "…"', arg.pos)
                filters.append(arg)
            elif not isinstance(arg, Window):
                raise fail(f"{call.fn}() takes a window (`last 60d`) and sku/category filters", call.pos)
        at = AS_OF
        conds: list[ColumnElement[bool]] = [orders.c.ordered_at <= at, counted_order(at)]
        since = self._window(call, call.args, fail)
        if since is not None:
            conds.append(orders.c.ordered_at > since)
        if filters:
            item = select(literal(1)).select_from(
                order_items.outerjoin(products, products.c.sku == order_items.c.sku)
            )
            item = item.where(
                order_items.c.order_pk == orders.c.id,
                *(_ORDER_FILTERS[f.key] == f.value for f in filters),
            )
            conds.append(exists(item.correlate(orders)))
        return conds

    def _orders(self, call: Call, fail: Any) -> Typed:
        """purchased(…) → bool, orders(…) → how many, spent(…) → their total."""
        conds = [orders.c.customer_id == customers.c.id, *self.order_conditions(call, fail)]
        if call.fn == "purchased":
            return Typed(exists().where(*conds).correlate_except(orders), "bool")
        if call.fn == "orders":
            count = select(func.count()).where(*conds).correlate_except(orders).scalar_subquery()
            return Typed(count, "number")
        total = select(func.coalesce(func.sum(orders.c.total), 0.0)).where(*conds)
        return Typed(total.correlate_except(orders).scalar_subquery(), "number")

    def compare_count(self, call: Call, op: str, value: float, fail: Any) -> ColumnElement[bool] | None:
        """`events(…) >= 3` or `orders(…) = 0` for every customer at once: one grouped pass over
        the matching events or orders, joined as a semi-join (or an anti-join when customers
        without any such row also match), instead of a count per customer. Only when
        `set_based`; a re-check of a few customers keeps the per-customer form."""
        if not self.set_based or call.fn not in ("events", "orders") or op not in COMPARE:
            return None
        if call.fn == "events":
            self._event_depends(call)
            conds, key = self.event_conditions(call, fail), events.c.customer_id
        else:
            self.depends.add(ORDERS)
            conds, key = self.order_conditions(call, fail), orders.c.customer_id
        test = COMPARE[op](func.count(), value)
        grouped = select(key).where(*conds).group_by(key)
        if COMPARE[op](0, value):
            # customers with none of them match too: NOT EXISTS a group that fails the test
            # (an anti-join; NOT IN would need the whole list in memory on PostgreSQL)
            failing = grouped.having(not_(test)).subquery("failing")
            return not_(exists(select(literal(1)).select_from(failing).where(failing.c[0] == customers.c.id)))
        return customers.c.id.in_(grouped.having(test))

    def _event_depends(self, call: Call) -> None:
        types = [a.name for a in call.args if isinstance(a, Field)]
        types += [str(a.value) for a in call.args if isinstance(a, Literal) and isinstance(a.value, str)]
        self.depends.update({f"event:{t}" for t in types} if types else {ANY_EVENT})

    def _in_segment(self, call: Call, fail: Any) -> Typed:
        """in_segment("name"): whether the customer is a member of that segment now."""
        if len(call.args) != 1 or not isinstance(call.args[0], Literal | Field):
            raise fail('in_segment() takes one segment name, e.g. in_segment("vip")', call.pos)
        arg = call.args[0]
        name = str(arg.value if isinstance(arg, Literal) else arg.name)
        segment_id = self.segment_ids(name)
        if segment_id is None:
            raise fail(f"no segment named {name!r}", arg.pos)
        self.depends.add(f"segment:{name}")
        member = exists().where(
            segment_members.c.segment_id == segment_id, segment_members.c.customer_id == customers.c.id
        )
        return Typed(member.correlate_except(segment_members), "bool")

    def source(self) -> Any:
        """`customers` with the tables the compiled condition reads left-joined on."""
        joined: Any = customers
        if "features" in self.joined:
            joined = joined.outerjoin(customer_features, customer_features.c.customer_id == customers.c.id)
        if "stage" in self.joined:
            joined = joined.outerjoin(customer_stages, customer_stages.c.customer_id == customers.c.id)
        if "value" in self.joined:
            joined = joined.outerjoin(clv_scores, clv_scores.c.customer_id == customers.c.id)
        if "churn" in self.joined:
            joined = joined.outerjoin(churn_scores, churn_scores.c.customer_id == customers.c.id)
        return joined


def affected(depends: Sequence[str], changed: set[str]) -> bool:
    """Whether a segment reading `depends` must be re-checked after changes of kind `changed`.

    Any event or order also changes the customer's features and possibly stage (ingestion
    re-evaluates stages first); a profile change can move the stage too."""
    expanded = set(changed)
    if any(k.startswith("event:") for k in changed):
        expanded |= {FEATURES_KIND, STAGE, ANY_EVENT}
    if ORDERS in changed or PROFILE in changed:
        expanded |= {FEATURES_KIND, STAGE}
    return bool(expanded & set(depends))
