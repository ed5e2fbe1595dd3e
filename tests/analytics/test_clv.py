"""BG/NBD and Gamma-Gamma against the published CDNOW results and simulated data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clm.analytics.clv import BetaGeoNBD, GammaGamma, ModifiedBetaGeoNBD, ParetoNBD
from clm.core.errors import InvalidInput

# CDNOW: 2,357 customers who first bought in the first quarter of 1997, observed for 39 weeks
# (x = repeat purchases, t_x = week of the last, T = weeks observed, zbar = average repeat spend).
# The file is the summary shipped with the `lifetimes` package (0.11.3, datasets/).
CDNOW = pd.read_csv(Path(__file__).parent / "data" / "cdnow_summary.csv")


@pytest.fixture(scope="module")
def bgnbd():
    return BetaGeoNBD().fit(CDNOW.x, CDNOW.t_x, CDNOW["T"])


def test_bgnbd_reproduces_fader_hardie_lee_2005(bgnbd):
    """FHL (2005), Marketing Science 24(2), section 5: r = 0.243, α = 4.414, a = 0.793,
    b = 2.426, LL = -9582.4."""
    p = bgnbd.params_
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(bgnbd.loglik_, 1) == -9582.4
    assert bgnbd.converged_ and all(np.isfinite(v) and v > 0 for v in bgnbd.standard_errors_.values())


def test_bgnbd_per_customer_expectations(bgnbd):
    """FHL (2005), section 5: a customer with x = 2, t_x = 30.43, T = 38.86 is expected to make
    1.226 purchases in the next 39 weeks."""
    assert round(float(bgnbd.expected_purchases(39, 2, 30.43, 38.86)), 3) == 1.226
    alive = bgnbd.probability_alive([0, 2, 2], [0, 30.43, 5.0], [38.86, 38.86, 38.86])
    assert alive[0] == 1.0 and 0 < alive[2] < alive[1] < 1  # an early last purchase means less alive
    # the expected purchases of new customers grow with time and equal E[X(t)] of the whole data
    grow = bgnbd.expected_purchases_new_customer([13, 26, 39])
    assert np.all(np.diff(grow) > 0)


def test_pareto_nbd_reproduces_the_published_fit():
    """Fader, Hardie & Lee (2005), Marketing Science 24(2), section 5 (the Pareto/NBD benchmark
    of the BG/NBD paper): r = 0.55, α = 10.58, s = 0.61, β = 11.67, LL = -9595.0."""
    model = ParetoNBD().fit(CDNOW.x, CDNOW.t_x, CDNOW["T"])
    p = model.params_
    assert (round(p["r"], 2), round(p["alpha"], 2), round(p["s"], 2), round(p["beta"], 2)) == (
        0.55,
        10.58,
        0.61,
        11.67,
    )
    assert round(model.loglik_, 1) == -9595.0
    alive = model.probability_alive([2, 2], [30.43, 5.0], [38.86, 38.86])
    assert 0 < alive[1] < alive[0] < 1
    assert model.expected_purchases(39, 2, 30.43, 38.86)[()] > 0


def test_modified_bgnbd_reproduces_btydplus_on_cdnow():
    """Batislam, Denizel & Filiztekin (2007) on CDNOW as fitted by BTYDplus (`mbgcnbd`, k = 1):
    r = 0.525, α = 6.183, a = 0.891, b = 1.614. Unlike BG/NBD, a one-time buyer may be gone."""
    model = ModifiedBetaGeoNBD().fit(CDNOW.x, CDNOW.t_x, CDNOW["T"])
    p = model.params_
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == (
        0.525,
        6.183,
        0.891,
        1.614,
    )
    assert model.converged_ and all(np.isfinite(v) and v > 0 for v in model.standard_errors_.values())
    alive = model.probability_alive([0, 0, 2, 2], [0, 0, 30.43, 5.0], [1.0, 38.86, 38.86, 38.86])
    # 1 / (1 + a/b · ((α+T)/α)^r) for x = 0: below 1, and lower the longer they have been quiet
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    assert alive[1] == pytest.approx(1 / (1 + a / b * ((alpha + 38.86) / alpha) ** r))
    assert 0 < alive[1] < alive[0] < 1 and 0 < alive[3] < alive[2] < 1
    # E[Y(t)] is P(alive) times the alive-conditional expectation, rising with the horizon
    grow = model.expected_purchases(np.array([13.0, 26.0, 39.0]), 2, 30.43, 38.86)
    assert np.all(np.diff(grow) > 0) and 0 < grow[-1] < 2


def test_p_alive_is_defined_where_the_model_says_something():
    from clm.analytics.clv import p_alive_defined

    x = np.array([0, 1, 3])
    assert p_alive_defined(BetaGeoNBD(), x).tolist() == [False, True, True]
    assert p_alive_defined(ModifiedBetaGeoNBD(), x).tolist() == [True, True, True]
    assert p_alive_defined(ParetoNBD(), x).tolist() == [True, True, True]


def test_gamma_gamma_reproduces_the_published_spend_model():
    """FHL (2005) JMR 42(4) / Fader & Hardie (2013): p = 6.25, q = 3.74, γ = 15.44 on the 946
    CDNOW repeat buyers (lifetimes reports γ = 15.447; the paper truncates)."""
    gg = GammaGamma().fit(CDNOW.x, CDNOW.zbar)
    p = gg.params_
    assert (round(p["p"], 2), round(p["q"], 2)) == (6.25, 3.74) and abs(p["v"] - 15.44) < 0.01
    assert gg.n_customers_ == 946
    spend = gg.expected_average_spend([0, 1, 10], [0, 50.0, 50.0])
    population = p["v"] * p["p"] / (p["q"] - 1)
    assert spend[0] == pytest.approx(population) and population < spend[1] < spend[2] < 50


def simulate_bgnbd(n, r, alpha, a, b, horizon, rng):
    """Customers drawn from the BG/NBD story itself: Gamma rates, Beta dropout after purchases."""
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        bought = t[idx] <= horizon
        done = idx[~bought]
        alive[done] = False
        buyers = idx[bought]
        x[buyers] += 1
        tx[buyers] = t[buyers]
        drop = rng.random(buyers.size) < p[buyers]
        alive[buyers[drop]] = False
    return x, tx, np.full(n, horizon)


def test_bgnbd_recovers_simulated_parameters_at_a_million_customers():
    truth = {"r": 0.5, "alpha": 8.0, "a": 0.8, "b": 2.5}
    x, tx, T = simulate_bgnbd(1_000_000, *truth.values(), horizon=52.0, rng=np.random.default_rng(3))
    model = BetaGeoNBD().fit(x, tx, T)
    assert model.converged_
    for name, value in truth.items():
        # within 3 standard errors, and the standard errors are small at this size
        assert abs(model.params_[name] - value) < 3 * model.standard_errors_[name], name
        assert model.standard_errors_[name] < 0.02 * value, name


def test_analytic_gradient_matches_finite_differences():
    from scipy import optimize

    from clm.analytics.clv import _BGNBDLikelihood

    x, tx, T = simulate_bgnbd(3_000, 0.5, 8.0, 0.8, 2.5, horizon=52.0, rng=np.random.default_rng(4))
    likelihood = _BGNBDLikelihood(x, tx, T, np.ones_like(x))
    params = np.array([0.6, 7.0, 0.9, 2.0])
    assert -likelihood.negative(params) == pytest.approx(
        BetaGeoNBD.log_likelihood_terms(params, x, tx, T).sum()
    )
    numeric = optimize.approx_fprime(params, likelihood.negative, 1e-6)
    np.testing.assert_allclose(likelihood.negative_gradient(params), numeric, rtol=1e-4)


@pytest.mark.parametrize(
    ("x", "tx", "T", "words"),
    [
        ([0, 0], [0, 0], [10, 10], "no repeat buyers"),
        ([1, 2], [5, 12], [10, 10], "recency must lie between 0 and T"),
        ([1, -1], [5, 0], [10, 10], "whole numbers"),
        ([0, 1], [3, 2], [10, 10], "without repeat purchases has recency 0"),
    ],
)
def test_data_the_model_cannot_fit_is_refused_clearly(x, tx, T, words):
    with pytest.raises(InvalidInput, match=words):
        BetaGeoNBD().fit(x, tx, T)


def test_gamma_gamma_needs_positive_spend():
    with pytest.raises(InvalidInput, match="positive spend"):
        GammaGamma().fit([1, 2, 0], [-5, 0, 3])
    model = GammaGamma().fit([1, 2, 3, 1, 2], [10, -1, 12, 9, 11])
    assert "negative" in model.warnings_[0]


def test_the_cli_reproduces_the_published_fit_from_raw_transactions(capsys):
    """From CDNOW_sample.txt (the 2,357-customer sample's purchases, lifetimes 0.11.3 datasets/),
    calibrating on 1997-01-01 … 1997-09-30 in weeks, as in FHL (2005)."""
    import json

    from clm.cli import main

    path = Path(__file__).parent / "data" / "CDNOW_sample.txt"
    args = [
        "clv",
        "fit",
        "--transactions",
        str(path),
        "--customer-col",
        "0",
        "--date-col",
        "2",
        "--amount-col",
        "4",
    ]
    assert main([*args, "--calibration-end", "1997-09-30", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    p, spend = out["params"], out["spend"]
    assert out["model"] == "bgnbd" and out["customers"] == 2357
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(out["loglik"], 1) == -9582.4
    assert (round(spend["p"], 2), round(spend["q"], 2), round(spend["v"], 2)) == (6.25, 3.74, 15.44)
    assert "transactions after the calibration end" in out["warnings"][0]
    assert main([*args, "--calibration-end", "1997-09-30", "--model", "pareto", "--json"]) == 0
    pareto = json.loads(capsys.readouterr().out)
    assert pareto["model"] == "pareto" and round(pareto["loglik"], 1) == -9595.0
    assert main([*args, "--model", "mbg"]) == 1
    assert "supported models" in capsys.readouterr().err


def test_discounted_clv_adds_up_discounted_purchases(bgnbd):
    from clm.analytics.clv import discounted_clv

    x, tx, T = np.array([2.0, 0.0]), np.array([30.43, 0.0]), np.array([38.86, 38.86])
    spend = np.array([20.0, 20.0])
    undiscounted = discounted_clv(bgnbd, spend, x, tx, T, horizon=52, steps=12, discount_rate=0.0, margin=0.5)
    assert undiscounted == pytest.approx(bgnbd.expected_purchases(52, x, tx, T) * 20 * 0.5)
    discounted = discounted_clv(bgnbd, spend, x, tx, T, horizon=52, steps=12, discount_rate=0.01, margin=0.5)
    assert np.all(discounted < undiscounted) and np.all(discounted > 0)


def test_clv_score_writes_every_buyer(engine, db_url, capsys, client, personas):
    from sqlalchemy import select

    from clm.analytics.tables import clv_scores
    from clm.cli import main
    from tests.lifecycle.conftest import Shop

    shop = Shop(engine)
    shop.products(("A", "misc", 10, 6))
    rng = np.random.default_rng(5)
    revenue = cost = 0.0
    once = set()
    for c in range(60):
        shop.customer(f"k{c}", "2025-01-01")
        days = np.sort(rng.choice(300, size=int(rng.integers(1, 6)), replace=False))
        if days.size == 1:
            once.add(shop.ids[f"k{c}"])
        for d in days:
            shop.order(f"k{c}", str(np.datetime64("2025-01-02") + int(d)), 10.0 + c % 7)
            revenue, cost = revenue + 10.0 + c % 7, cost + 6.0
    assert main(["--db", db_url, "clv", "score", "--json"]) == 0
    result = __import__("json").loads(capsys.readouterr().out)
    assert result["customers"] == 60 and result["total_clv"] > 0
    assert result["margin"] == pytest.approx(1 - cost / revenue)  # the shop's own margin
    with engine.connect() as conn:
        rows = conn.execute(select(clv_scores)).all()
    assert len(rows) == 60 and all(r.clv >= 0 and r.expected_spend > 0 for r in rows)
    # BG/NBD says nothing about P(alive) before a repeat purchase: NULL, not a fill value of 1
    assert 0 < len(once) < 60 and all((r.p_alive is None) == (r.customer_id in once) for r in rows)
    assert all(0 < r.p_alive < 1 for r in rows if r.p_alive is not None)
    assert result["p_alive_customers"] == 60 - len(once)
    h = personas.headers("vic")
    one_timer, repeat = min(once), min(r.customer_id for r in rows if r.customer_id not in once)
    assert client.get(f"/api/v1/analytics/clv/customers/{one_timer}", headers=h).json()["p_alive"] is None
    assert 0 < client.get(f"/api/v1/analytics/clv/customers/{repeat}", headers=h).json()["p_alive"] < 1
    # a condition on p_alive is not true where it is undefined; `is null` finds those customers
    from clm.segments.service import preview

    repeaters = {r.customer_id for r in rows if r.p_alive is not None}
    assert preview(engine, "p_alive >= 0 or p_alive < 0").count == len(repeaters)
    assert preview(engine, "p_alive is null and clv >= 0").count == len(once)
    assert preview(engine, "not p_alive >= 0.5 and clv >= 0").count == len(once) + sum(
        r.p_alive < 0.5 for r in rows if r.p_alive is not None
    )
    # the modified BG/NBD describes one-time buyers too
    assert main(["--db", db_url, "clv", "score", "--model", "mbgnbd", "--json"]) == 0
    capsys.readouterr()
    with engine.connect() as conn:
        modified = conn.execute(select(clv_scores.c.customer_id, clv_scores.c.p_alive)).all()
    assert len(modified) == 60 and all(0 < p < 1 for _, p in modified)


def test_gamma_gamma_gradient_drives_the_fit_to_the_same_optimum():
    """The analytic gradient gives the same fit as a derivative-free search on the same data."""
    from clm.analytics.clv import _maximise

    rng = np.random.default_rng(8)
    x = rng.integers(1, 8, 3_000).astype(float)
    nu = rng.gamma(4.0, 1 / 15.0, x.size)
    m = rng.gamma(6.0 * x, 1 / (nu * x))  # the mean of x Gamma(6, ν) values
    fitted = GammaGamma().fit(x, m)

    def negative_ll(params):
        return -float(np.sum(GammaGamma.log_likelihood_terms(params, x, m)))

    slow = _maximise(("p", "q", "v"), negative_ll, np.array([1.0, 1.0, float(m.mean())]))
    for name in ("p", "q", "v"):
        assert fitted.params_[name] == pytest.approx(slow.params[name], rel=1e-4)
    assert fitted.loglik_ == pytest.approx(slow.loglik, abs=1e-6)


def test_migration_clears_the_fill_value_of_one_time_buyers(database_url):
    """Migration 0014: a stored BG/NBD P(alive) of exactly 1 (only a one-time buyer gets it)
    becomes NULL; other values and other models' scores stay."""
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy import insert, select, text

    from clm.analytics.tables import clv_scores
    from clm.customers.tables import customers
    from clm.migrations import upgrade
    from clm.store.engine import make_engine
    from tests.conftest import with_search_path

    schema = f"clm_mig_{uuid.uuid4().hex[:8]}"
    owner = make_engine(database_url)
    if owner.dialect.name == "postgresql":
        with owner.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        engine = make_engine(with_search_path(database_url, schema))
    else:
        engine = make_engine(database_url.replace("clm-test.db", f"{schema}.db"))
    try:
        upgrade(engine, "0013")
        now = datetime(2026, 12, 1, tzinfo=UTC)
        rows = [("bgnbd", 1.0), ("bgnbd", 0.4), ("pareto", 1.0)]
        with engine.begin() as conn:
            for i, (model, alive) in enumerate(rows, start=1):
                conn.execute(insert(customers).values(id=i, created_at=now, updated_at=now))
                conn.execute(
                    insert(clv_scores).values(
                        customer_id=i,
                        scored_at=now,
                        model=model,
                        horizon_days=365.0,
                        p_alive=alive,
                        expected_purchases=1.0,
                        expected_spend=10.0,
                        clv=5.0,
                    )
                )
        upgrade(engine, "0014")
        with engine.connect() as conn:
            stored = conn.execute(select(clv_scores.c.p_alive).order_by(clv_scores.c.customer_id)).scalars()
            assert list(stored) == [None, 0.4, 1.0]
    finally:
        engine.dispose()
        if owner.dialect.name == "postgresql":
            with owner.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        owner.dispose()


def test_modified_bgnbd_expected_purchases_stay_finite_where_the_direct_form_overflows():
    """E[Y(t)] holds ₂F₁(r+x, b+x+1; a+b+x; z), which overflows for large r + x (a fit on a small
    shop gave r ≈ 207; the score then failed on a NULL). Euler's transformation of the same
    function is used there; where both forms are finite they agree."""
    from clm.analytics.clv import ModifiedBetaGeoNBD

    def model(r, alpha, a, b):
        m = ModifiedBetaGeoNBD()
        m.params_ = {"r": r, "alpha": alpha, "a": a, "b": b}
        return m

    x, tx, T = np.arange(6.0), np.zeros(6), np.array([300, 250, 200, 100, 20, 5.0])
    tx = np.minimum(T, 3.0 * x)
    overflowing = model(206.9639058, 5.09689986, 0.31518058, 1.29848252).expected_purchases(365, x, tx, T)
    # (a customer long silent at such a high rate is almost surely gone: near 0, still a number)
    assert np.all(np.isfinite(overflowing)) and np.all(overflowing >= 0) and overflowing[-1] > 1
    # the published CDNOW fit (BTYDplus): both forms finite, the same numbers either way
    cdnow = model(0.525, 6.183, 0.891, 1.614)
    from scipy import special

    z = 39 / (6.183 + T + 39)
    direct = 1 - ((6.183 + T) / (6.183 + T + 39)) ** (0.525 + x) * special.hyp2f1(
        0.525 + x, 1.614 + x + 1, 0.891 + 1.614 + x, z
    )
    by_hand = (0.891 + 1.614 + x) / (0.891 - 1) * direct * cdnow.probability_alive(x, tx, T)
    np.testing.assert_allclose(cdnow.expected_purchases(39, x, tx, T), by_hand, rtol=1e-9)


def test_modified_bgnbd_expected_purchases_stay_finite_when_the_fit_reaches_the_edge_of_its_space():
    """A small shop's fit can run a and b off to 1e26 (no sign of heterogeneous dropout), or r and
    α off to 1e11 (every purchase rate alike): scipy's ₂F₁ is then inf/NaN in both of its forms
    (and `clv score` failed on NOT NULL). The concentrated-Beta and the confluent (₁F₁) limits
    take over; they agree with the exact series where that still works and are continuous at
    the switch."""
    from clm.analytics.clv import _CONCENTRATED, ModifiedBetaGeoNBD

    x, tx, t_obs = np.array([0.0, 1, 3, 4]), np.array([0.0, 50, 200, 280]), np.array([700.0, 650, 600, 706])

    def expected(r: float, alpha: float, a: float, b: float) -> np.ndarray:
        model = ModifiedBetaGeoNBD()
        model.params_ = {"r": r, "alpha": alpha, "a": a, "b": b}
        return model.expected_purchases(91.25, x, tx, t_obs)

    exact = expected(0.8, 78.0, 1.15e6, 1.8e6)  # below the switch: scipy's series
    edge = expected(0.8, 78.0, 1.15e26, 1.8e26)
    assert np.all(np.isfinite(edge)) and np.allclose(edge, exact, rtol=1e-5)
    share = 1.15 / 2.95
    below = expected(0.8, 78.0, share * _CONCENTRATED * 0.999, (1 - share) * _CONCENTRATED * 0.999)
    above = expected(0.8, 78.0, share * _CONCENTRATED * 1.001, (1 - share) * _CONCENTRATED * 1.001)
    assert np.allclose(below, above, rtol=1e-6)
    rate = 0.01436  # r/α, purchases per day
    series = expected(1e6, 1e6 / rate, 4595.5, 8233.8)
    limit = expected(1.77e11, 1.77e11 / rate, 4595.5, 8233.8)
    assert np.all(np.isfinite(limit)) and np.allclose(limit, series, rtol=2e-3)
