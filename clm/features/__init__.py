"""Per-customer behavioural features as of any moment, computed set-based in SQL.

Stages (lifecycle), churn scores (analytics) and segments all read the same features, so they
live below those domains: profiles -> features -> stages / segments / scores (DESIGN.md)."""

from clm.features.query import (
    AS_OF,
    FEATURES,
    PROFILE_TEXT_FIELDS,
    RECENT_DAYS,
    SYSTEM_CHANNEL,
    Feature,
    counted_order,
    feature_params,
    feature_query,
    plan_for_everyone,
    purchase_gaps_query,
    refunded_order,
)
from clm.features.space import CustomerSpace

__all__ = [
    "AS_OF",
    "FEATURES",
    "PROFILE_TEXT_FIELDS",
    "RECENT_DAYS",
    "SYSTEM_CHANNEL",
    "CustomerSpace",
    "Feature",
    "counted_order",
    "feature_params",
    "feature_query",
    "plan_for_everyone",
    "purchase_gaps_query",
    "refunded_order",
]
