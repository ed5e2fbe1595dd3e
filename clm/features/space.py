"""The field space of stage rules and segments: features, profile fields, custom attributes
and windowed functions over a customer's events and orders, for the condition compiler."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select

from clm.commerce.tables import orders
from clm.conditions import Typed
from clm.conditions.ast import Call, Field, Filter, Literal, Window
from clm.customers.tables import customers
from clm.events.schemas import SYSTEM_CHANNEL
from clm.events.tables import events
from clm.features.query import AS_OF, FEATURES, PROFILE_TEXT_FIELDS, counted_order, timestamp_param
from clm.store.sql import json_number, json_text


class CustomerSpace:
    """The field space of stage rules: features, profile fields, custom attributes and
    windowed functions over the customer's events and orders.

    `row` maps feature names to SQL columns of the features row being evaluated (a subquery or
    the customer_features table); profile fields come from `customers`, joined by the caller.
    Times are bound parameters: `:as_of`, and `:since_<N>d` for each window a rule uses
    (`window_params` gives their values)."""

    def __init__(self, row: Any) -> None:
        self.row = row
        self.windows: set[int] = set()
        self._kinds = {f.name: f.kind for f in FEATURES}

    def window_params(self, as_of: datetime) -> dict[str, datetime]:
        return {f"since_{d}d": as_of - timedelta(days=d) for d in self.windows}

    def names(self) -> list[str]:
        return [*self._kinds, *PROFILE_TEXT_FIELDS, "attr.<name>"]

    def field(self, name: str) -> Typed | None:
        if name in self._kinds:
            return Typed(self.row[name], self._kinds[name])
        if name in PROFILE_TEXT_FIELDS:
            return Typed(customers.c[name], "text")
        if name.startswith("attr.") and len(name) > 5:
            return Typed(json_text(customers.c.attributes, name[5:]), "text")
        return None

    def function(self, call: Call, compile_arg: Any, fail: Any) -> Typed | None:
        if call.fn == "events":
            return self._events(call, fail)
        if call.fn == "purchased":
            return self._purchased(call, fail)
        if call.fn == "number":
            return self._number(call, fail)
        return None

    def _number(self, call: Call, fail: Any) -> Typed:
        """number(attr.NAME): a custom attribute as a number (null when it is not one)."""
        arg = call.args[0] if len(call.args) == 1 else None
        if not isinstance(arg, Field) or not arg.name.startswith("attr.") or len(arg.name) <= 5:
            raise fail("number() takes one custom attribute, e.g. number(attr.points) > 100", call.pos)
        return Typed(json_number(customers.c.attributes, arg.name[5:]), "number")

    def _window(self, call: Call, args: Sequence[Any], fail: Any) -> Any:
        windows = [a for a in args if isinstance(a, Window)]
        if len(windows) > 1:
            raise fail(f"{call.fn}() takes one window", windows[1].pos)
        if not windows:
            return None
        self.windows.add(windows[0].days)
        return timestamp_param(f"since_{windows[0].days}d")

    def event_conditions(self, call: Call, fail: Any) -> list[Any]:
        """The WHERE terms of `events(type [, type…] [, last Nd] [, key = value…])`, without the
        customer: the caller correlates them or groups by customer."""
        types: list[str] = []
        filters: list[Filter] = []
        for arg in call.args:
            if isinstance(arg, Field):
                types.append(arg.name)
            elif isinstance(arg, Literal) and isinstance(arg.value, str):
                types.append(arg.value)
            elif isinstance(arg, Filter):
                filters.append(arg)
            elif not isinstance(arg, Window):
                raise fail("events() takes event types, a window (`last 14d`) and property filters", call.pos)
        since = self._window(call, call.args, fail)
        conds = [events.c.occurred_at <= AS_OF]
        # without named types, every activity event counts (derived system events are not activity)
        conds.append(events.c.type.in_(types) if types else events.c.channel != SYSTEM_CHANNEL)
        if since is not None:
            conds.append(events.c.occurred_at > since)
        for f in filters:
            if isinstance(f.value, bool) or f.value is None:
                raise fail("a property filter compares with a string or a number", f.pos)
            value = json_text(events.c.properties, f.key)
            wanted = str(f.value)
            conds.append(value == wanted if f.op == "=" else or_(value.is_(None), value != wanted))
        return conds

    def _events(self, call: Call, fail: Any) -> Typed:
        """events(type [, type…] [, last Nd] [, key = value…]): how many such events."""
        conds = [events.c.customer_id == self.row["customer_id"], *self.event_conditions(call, fail)]
        count = select(func.count()).where(*conds).correlate_except(events).scalar_subquery()
        return Typed(count, "number")

    def _purchased(self, call: Call, fail: Any) -> Typed:
        """purchased([last Nd]): whether the customer has a counted order (in the window)."""
        if any(not isinstance(a, Window) for a in call.args):
            raise fail("purchased() takes only a window, e.g. purchased(last 60d)", call.pos)
        at = AS_OF
        conds = [
            orders.c.customer_id == self.row["customer_id"],
            orders.c.ordered_at <= at,
            counted_order(at),
        ]
        since = self._window(call, call.args, fail)
        if since is not None:
            conds.append(orders.c.ordered_at > since)
        return Typed(exists().where(*conds).correlate_except(orders), "bool")
