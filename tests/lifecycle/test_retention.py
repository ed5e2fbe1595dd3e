"""The shifted-beta-geometric model against published results and simulated data."""

import numpy as np
import pytest

from clm.core.errors import InvalidInput
from clm.lifecycle.retention import ShiftedBetaGeometric, log_likelihood, project_retention

# Fader & Hardie (2007), "How to Project Customer Retention", Journal of Interactive Marketing
# 21(1), 76-90: the "high end" customers of their worked example, survivors over 7 years, and
# the maximum-likelihood estimates printed there: α = 0.668, β = 3.806, LL = -1611.2.
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


def test_reproduces_the_published_high_end_fit():
    model = ShiftedBetaGeometric().fit(HIGH_END)
    assert round(model.params_["alpha"], 3) == 0.668
    assert round(model.params_["beta"], 3) == 3.806
    assert round(model.loglik_, 1) == -1611.2
    assert model.converged_ and all(se and se > 0 for se in model.standard_errors_.values())
    # the fitted curve stays close to the data it was fitted on
    projected = [p.survivors for p in model.project(7)]
    assert np.max(np.abs(np.array(projected) - HIGH_END)) < 20


def test_retention_rates_rise_and_survival_is_consistent():
    model = ShiftedBetaGeometric().fit(HIGH_END)
    a, b = model.params_["alpha"], model.params_["beta"]
    t = np.arange(1, 20)
    rates = model.retention_rate(t)
    assert np.all(np.diff(rates) > 0)
    assert np.allclose(model.survival(t) / model.survival(t - 1), rates)
    assert rates[0] == pytest.approx(b / (a + b))
    assert log_likelihood(a, b, HIGH_END) == pytest.approx(model.loglik_)


def test_expected_remaining_lifetime_matches_the_series_it_sums():
    model = ShiftedBetaGeometric().fit(HIGH_END)
    n, d = 7, 0.1
    k = np.arange(1, 5000)
    series = np.sum(model.survival(n + k) / model.survival(n) * (1 + d) ** -k)
    assert model.expected_remaining_lifetime(n, d) == pytest.approx(series, rel=1e-9)
    assert model.expected_remaining_lifetime(n, 0.0) == float("inf")  # α < 1: the mean is unbounded


def test_recovers_the_parameters_of_simulated_cohorts():
    rng = np.random.default_rng(7)
    alpha, beta, n, periods = 1.4, 3.0, 200_000, 12
    theta = rng.beta(alpha, beta, n)
    lifetimes = rng.geometric(theta)  # the period in which each customer leaves (1, 2, …)
    survivors = [int(np.sum(lifetimes > t)) for t in range(periods + 1)]
    model = ShiftedBetaGeometric().fit(survivors)
    se = model.standard_errors_
    assert abs(model.params_["alpha"] - alpha) < 3 * se["alpha"]
    assert abs(model.params_["beta"] - beta) < 3 * se["beta"]
    undiscounted = model.expected_remaining_lifetime(periods, 0.0)
    assert undiscounted == pytest.approx((model.params_["beta"] + periods) / (model.params_["alpha"] - 1))


@pytest.mark.parametrize(
    ("survivors", "words"),
    [
        ([1000, 900], "at least three"),
        ([1000, 900, 950], "only go down"),
        ([100, 100, 100], "nobody left"),
        ([0, 0, 0], "first one positive"),
    ],
)
def test_unusable_cohorts_are_refused_with_a_reason(survivors, words):
    with pytest.raises(InvalidInput, match=words):
        ShiftedBetaGeometric().fit(survivors)


def test_projection_report_extends_past_the_data():
    report = project_retention(HIGH_END, periods=12, discount_rate=0.1)
    assert (
        len(report.projection) == 13
        and report.projection[7].observed == 491
        and report.projection[12].observed is None
    )
    assert report.expected_remaining_periods_undiscounted is None and report.expected_remaining_periods > 0
