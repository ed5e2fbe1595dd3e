"""Experiments (campaign ROI and attribution: attribution.py).

An experiment is a `split` step: each customer's arm is a hash of (experiment, customer), so it is
random across customers and sticky for each. The goal is the journey's goal event within its
window after the customer entered. Arms are compared with the two-proportion z-test; its p-value
and the 95% interval of the difference come from the same z (unpooled standard error), so they
never disagree. The holdout, which receives nothing, is the control when there is one, so the
lift is incremental. A comparison where an arm has fewer than 10 conversions or 10
non-conversions (n·p < 10 or n·(1 − p) < 10) carries a warning: the normal approximation does
not hold there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scipy.stats import norm
from sqlalchemy import Engine, exists, func, literal, select

from clm.core.errors import NotFound
from clm.events.tables import events
from clm.journeys.attribution import within
from clm.journeys.store import version_definition
from clm.journeys.tables import enrolments, journey_versions, journeys

ALPHA = 0.05
MIN_COUNT = 10  # conversions and non-conversions each arm needs for the z-test to mean anything


@dataclass(frozen=True)
class Comparison:
    arm: str
    control: str
    lift: float  # difference in conversion rate, arm − control (percentage points / 100)
    relative_lift: float | None
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    significant: bool  # p < alpha, which is the same as: the interval excludes 0
    small_sample: bool  # an arm fails the rule of MIN_COUNT conversions and non-conversions
    warning: str | None


def two_proportion_test(
    n1: int, x1: int, n0: int, x0: int, alpha: float = ALPHA
) -> tuple[float, float, float, float]:
    """(difference p1 − p0, z, two-sided p-value, half-width of the (1−alpha) CI of the difference).

    One statistic gives both the p-value and the interval: z = (p1 − p0) / SE with the unpooled
    standard error SE = sqrt(p1(1−p1)/n1 + p0(1−p0)/n0) (the Wald test), and the interval is
    (p1 − p0) ± z_(1−alpha/2)·SE. So the interval excludes 0 exactly when p < alpha; a pooled SE
    for the test beside an unpooled one for the interval could disagree (issue 25, item 6)."""
    if min(n1, n0) == 0:
        return 0.0, 0.0, 1.0, math.inf
    p1, p0 = x1 / n1, x0 / n0
    diff = p1 - p0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    if se == 0:  # both rates are 0 or 1: the data show no spread at all
        return diff, (0.0 if diff == 0 else math.copysign(math.inf, diff)), (1.0 if diff == 0 else 0.0), 0.0
    z = diff / se
    return diff, z, float(2 * norm.sf(abs(z))), float(norm.ppf(1 - alpha / 2)) * se


def small_sample(customers: int, conversions: int) -> bool:
    """The normal approximation behind the z-test needs n·p ≥ 10 and n·(1 − p) ≥ 10 in every arm,
    i.e. at least MIN_COUNT conversions and MIN_COUNT non-conversions observed."""
    return conversions < MIN_COUNT or customers - conversions < MIN_COUNT


@dataclass(frozen=True)
class Arm:
    name: str
    customers: int
    conversions: int
    rate: float | None


@dataclass(frozen=True)
class ExperimentReport:
    experiment: str
    journey: str
    goal: str | None
    window_days: float
    arms: list[Arm]
    control: str | None
    comparisons: list[Comparison]
    method: str


def _journey_of(engine: Engine, experiment: str) -> tuple[int, str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(journey_versions.c.id, journeys.c.id.label("jid"), journeys.c.name).join(
                journeys, journeys.c.id == journey_versions.c.journey_id
            )
        ).all()
        for r in sorted(rows, key=lambda r: -r.id):
            d = version_definition(conn, r.id)
            for name, step in d.experiments:
                if name == experiment:
                    return r.jid, r.name, (d, step)
    raise NotFound(f"no journey has an experiment named {experiment!r}")


def experiment_report(engine: Engine, experiment: str) -> ExperimentReport:
    journey_id, journey, (d, step) = _journey_of(engine, experiment)
    goal, days = d.goal_event, d.goal_days
    arms_order = [*step.args["arms"], *(["holdout"] if step.args.get("holdout") else [])]
    with engine.connect() as conn:
        conversions: Any = literal(0)
        if goal:
            converted = exists().where(
                events.c.customer_id == enrolments.c.customer_id,
                events.c.type == goal,
                events.c.occurred_at >= enrolments.c.entered_at,
                within(conn.dialect.name, events.c.occurred_at, enrolments.c.entered_at, days),
            )
            conversions = func.count().filter(converted)
        rows = conn.execute(
            select(enrolments.c.variant, func.count(), conversions)
            .where(enrolments.c.journey_id == journey_id, enrolments.c.variant.in_(arms_order))
            .group_by(enrolments.c.variant)
        ).all()
    counts = {v: (int(n), int(x)) for v, n, x in rows}
    arms = [Arm(a, *counts.get(a, (0, 0)), None) for a in arms_order]
    arms = [
        Arm(a.name, a.customers, a.conversions, a.conversions / a.customers if a.customers else None)
        for a in arms
    ]
    control = "holdout" if "holdout" in arms_order else (arms_order[0] if arms_order else None)
    comparisons = []
    base = counts.get(control or "", (0, 0))
    for a in arms:
        if a.name == control or not a.customers or not base[0]:
            continue  # nothing to compare yet
        diff, z, p, half = two_proportion_test(a.customers, a.conversions, *base)
        p0 = base[1] / base[0] if base[0] else 0.0
        thin = [
            f"{arm} has {x:,} conversions and {n - x:,} non-conversions"
            for arm, n, x in ((a.name, a.customers, a.conversions), (control or "", *base))
            if small_sample(n, x)
        ]
        warning = (
            f"too few to judge: {'; '.join(thin)} (the z-test needs at least {MIN_COUNT} of each in "
            "every arm)"
            if thin
            else None
        )
        comparisons.append(
            Comparison(
                a.name,
                control or "",
                diff,
                diff / p0 if p0 else None,
                diff - half,
                diff + half,
                z,
                p,
                p < ALPHA,
                bool(thin),
                warning,
            )
        )
    return ExperimentReport(
        experiment,
        journey,
        goal,
        days,
        arms,
        control,
        comparisons,
        "two-proportion z-test (unpooled standard error), two-sided, alpha 0.05, and the 95% CI of "
        "the difference from the same z: the interval excludes 0 exactly when p < 0.05",
    )
