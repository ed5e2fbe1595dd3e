"""The customers a report is filtered to (an acquisition channel, a segment, or both), for
reports of domains that cannot read segment memberships themselves (the overview's KPIs, funnel,
flows, cohorts, churn bands, NPS/CSAT) and the filter's choices."""

from __future__ import annotations

from sqlalchemy import Engine, select

from clm.core.errors import InvalidInput
from clm.customers.scope import CustomerScope, acquisition_channel, channel_customers
from clm.segments.tables import segment_members, segments
from clm.store.engine import reading

MAX_FILTER_LENGTH = 100


def customer_scope(engine: Engine, channel: str | None, segment: str | None) -> CustomerScope | None:
    """The customers of `channel` who are (now) members of `segment`; None when neither is given.
    An unknown segment is an error (a typo should not show an empty shop); an unknown channel is
    simply a channel without customers."""
    channel, segment = (channel or None), (segment or None)
    if channel is None and segment is None:
        return None
    for field, value in (("channel", channel), ("segment", segment)):
        if value is not None and len(value) > MAX_FILTER_LENGTH:
            raise InvalidInput(f"at most {MAX_FILTER_LENGTH} characters", field)
    ids = channel_customers(channel) if channel is not None else None
    if segment is not None:
        with reading(engine) as conn:
            segment_id = conn.execute(select(segments.c.id).where(segments.c.name == segment)).scalar()
        if segment_id is None:
            raise InvalidInput(f"no segment named {segment!r}", "segment")
        members = select(segment_members.c.customer_id).where(segment_members.c.segment_id == segment_id)
        ids = members if ids is None else members.where(segment_members.c.customer_id.in_(ids))
    assert ids is not None
    return CustomerScope(ids=ids, channel=channel, segment=segment)


def scope_choices(engine: Engine) -> tuple[list[str], list[str]]:
    """The acquisition channels customers came through and the segments' names, sorted: the
    overview's two filter drop-downs."""
    channel = acquisition_channel()
    with reading(engine) as conn:
        channels = [c for (c,) in conn.execute(select(channel).distinct().order_by(channel))]
        names = [n for (n,) in conn.execute(select(segments.c.name).order_by(segments.c.name))]
    return channels, names


__all__ = ["customer_scope", "scope_choices"]
