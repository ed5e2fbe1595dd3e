"""Reports over some customers only (an acquisition channel, a segment's members): the restriction
is a SELECT of customer ids that each report adds to its own query as `customer_id IN (…)`, so the
filtering happens in the database, set-based, whatever the number of customers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select

from clm.customers.tables import customers

UNKNOWN_CHANNEL = "unknown"  # what reports call a customer without an acquisition channel


@dataclass(frozen=True)
class CustomerScope:
    """Only the customers whose id `ids` (a one-column SELECT) returns. `channel` and `segment`
    say what the restriction is, for figures that are not kept per customer: marketing spend is
    recorded per channel, so CAC is defined within a channel but not within a segment."""

    ids: Select[Any]
    channel: str | None = None
    segment: str | None = None

    def holds(self, customer_id: Any) -> ColumnElement[bool]:
        """`customer_id IN (the scope's ids)`, for a report's WHERE clause."""
        return customer_id.in_(self.ids)


def acquisition_channel() -> ColumnElement[str]:
    """A customer's acquisition channel as reports group it (`unknown` when none was recorded)."""
    return func.coalesce(customers.c.acquisition_channel, UNKNOWN_CHANNEL)


def channel_customers(channel: str) -> Select[Any]:
    """The ids of the customers acquired through `channel` (`unknown`: none recorded)."""
    if channel == UNKNOWN_CHANNEL:
        return select(customers.c.id).where(acquisition_channel() == channel)
    return select(customers.c.id).where(customers.c.acquisition_channel == channel)


def in_scope(customer_id: Any, scope: CustomerScope | None) -> list[ColumnElement[bool]]:
    """The WHERE conditions that keep a report to `scope` (none when every customer counts)."""
    return [] if scope is None else [scope.holds(customer_id)]


__all__ = ["UNKNOWN_CHANNEL", "CustomerScope", "acquisition_channel", "channel_customers", "in_scope"]
