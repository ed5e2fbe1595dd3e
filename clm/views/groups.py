"""Customers grouped by lifecycle stage or segment, for reports of domains that cannot read
those tables themselves (survey results by stage or segment)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from clm.core.errors import InvalidInput
from clm.lifecycle.tables import customer_stages
from clm.segments.tables import segment_members, segments


def customer_groups(by: str | None, segment: str | None = None) -> Select[Any] | None:
    """(customer_id, label) rows: each customer's stage (`by="stage"`), each segment a customer
    is in (`by="segment"`), narrowed to one segment's members when `segment` is given."""
    members = select(segment_members.c.customer_id, segments.c.name).join(
        segments, segments.c.id == segment_members.c.segment_id
    )
    if segment is not None:
        members = members.where(segments.c.name == segment)
    if by == "stage":
        stages = select(customer_stages.c.customer_id, customer_stages.c.stage)
        if segment is not None:
            stages = stages.where(
                customer_stages.c.customer_id.in_(members.with_only_columns(segment_members.c.customer_id))
            )
        return stages
    if by == "segment" or segment is not None:
        return members
    if by not in (None, "channel", "month"):
        raise InvalidInput("must be one of channel, month, stage, segment", "by")
    return None
