"""Predictive customer value: BG/NBD (or its modified form, or Pareto/NBD) for repeat purchases
and Gamma-Gamma for spend.

Own implementations on NumPy/SciPy, vectorised over customers and computed in log space.
All follow the lifelines-style protocol: `fit(...) -> self`, fitted `params_`,
`standard_errors_`, `loglik_`, `converged_`, `summary()`, then predictions per customer.

BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to
the Pareto/NBD Model", Marketing Science 24(2). Modified BG/NBD: Batislam, Denizel & Filiztekin
(2007), "Empirical validation and comparison of models for customer base analysis", IJRM 24(3).
Gamma-Gamma: Fader, Hardie & Lee (2005),
"RFM and CLV: Using Iso-Value Curves for Customer Base Analysis", JMR 42(4), and Fader &
Hardie (2013), "The Gamma-Gamma Model of Monetary Value".

Inputs per customer: `frequency` x (repeat purchases), `recency` t_x (time of the last
purchase since the first) and `T` (time since the first purchase), in one unit (days or weeks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from clm.core.errors import InvalidInput

Array = NDArray[np.float64]


def _as_arrays(*values: ArrayLike) -> list[Array]:
    return [np.asarray(v, dtype=float) for v in values]


def _compress(*columns: Array) -> tuple[list[Array], Array]:
    """Identical customers collapse into one row with a weight: many share (x, t_x, T).
    Grouped by hashing (pandas), which is linear in the number of customers."""
    counts = pd.DataFrame({str(i): c for i, c in enumerate(columns)}).value_counts(sort=False)
    unique = counts.index.to_frame(index=False).to_numpy(dtype=float)
    return [unique[:, i] for i in range(unique.shape[1])], counts.to_numpy(dtype=float)


def _distinct(*columns: Array) -> tuple[list[Array], NDArray[np.intp]]:
    """The distinct rows of the columns and, for every row, the index of its distinct row."""
    frame = pd.DataFrame({str(i): c for i, c in enumerate(columns)})
    groups = frame.groupby(list(frame.columns), sort=False)
    keys = groups.size().index.to_frame(index=False).to_numpy(dtype=float)
    return [keys[:, i] for i in range(keys.shape[1])], groups.ngroup().to_numpy()


def _standard_errors(negative_ll: Any, params: Array) -> Array:
    """Square roots of the diagonal of the inverse numerical Hessian of -LL at the optimum."""
    k = params.size
    h = 1e-4 * np.maximum(np.abs(params), 1e-2)
    hess = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            value = (
                negative_ll(params + ei + ej)
                - negative_ll(params + ei - ej)
                - negative_ll(params - ei + ej)
                + negative_ll(params - ei - ej)
            ) / (4 * h[i] * h[j])
            hess[i, j] = hess[j, i] = value
    try:
        variance = np.diag(np.linalg.inv(hess))
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    return np.sqrt(np.where(variance > 0, variance, np.nan))


@dataclass
class _Fit:
    params: dict[str, float]
    standard_errors: dict[str, float]
    loglik: float
    converged: bool
    iterations: int
    message: str
    warnings: list[str] = field(default_factory=list)


def _maximise(names: tuple[str, ...], negative_ll: Any, start: Array, gradient: Any = None) -> _Fit:
    """Minimise -LL over log-parameters (so they stay positive).

    With an analytic `gradient` of -LL, L-BFGS does it in a few dozen evaluations (what makes a
    million customers fit in seconds); without, Nelder-Mead then a BFGS polish."""

    def objective(log_params: Array) -> float:
        value = negative_ll(np.exp(log_params))
        return float(value) if np.isfinite(value) else 1e300

    if gradient is not None:

        def with_jac(log_params: Array) -> tuple[float, Array]:
            params = np.exp(log_params)
            value = negative_ll(params)
            if not np.isfinite(value):
                return 1e300, np.zeros_like(params)
            return float(value), gradient(params) * params  # chain rule for log-parameters

        best = optimize.minimize(
            with_jac,
            np.log(start),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 2_000, "ftol": 1e-13, "gtol": 1e-7},
        )
        converged, iterations = bool(best.success), int(best.nit)
        params = np.exp(best.x)
        se = _standard_errors_from_gradient(gradient, params)
    else:
        first = optimize.minimize(
            objective,
            np.log(start),
            method="Nelder-Mead",
            options={"maxiter": 20_000, "xatol": 1e-8, "fatol": 1e-10},
        )
        polished = optimize.minimize(objective, first.x, method="BFGS", options={"gtol": 1e-6})
        best = polished if polished.fun <= first.fun else first
        converged = bool(first.success or polished.success)
        iterations = int(first.nit + getattr(polished, "nit", 0))
        params = np.exp(best.x)
        se = _standard_errors(lambda p: negative_ll(p), params)
    return _Fit(
        params=dict(zip(names, (float(p) for p in params), strict=True)),
        standard_errors=dict(zip(names, (float(s) for s in se), strict=True)),
        loglik=float(-best.fun),
        converged=converged,
        iterations=iterations,
        message=str(best.message),
    )


def _standard_errors_from_gradient(gradient: Any, params: Array) -> Array:
    """Standard errors from the Hessian of -LL by central differences of its analytic gradient."""
    k = params.size
    h = 1e-5 * np.maximum(np.abs(params), 1e-3)
    hess = np.empty((k, k))
    for i in range(k):
        step = np.eye(k)[i] * h[i]
        hess[i] = (gradient(params + step) - gradient(params - step)) / (2 * h[i])
    hess = (hess + hess.T) / 2
    try:
        variance = np.diag(np.linalg.inv(hess))
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    return np.sqrt(np.where(variance > 0, variance, np.nan))


class _Model:
    params_: dict[str, float]
    standard_errors_: dict[str, float]
    loglik_: float
    converged_: bool
    iterations_: int
    warnings_: list[str]
    name = ""

    def _store(self, fit: _Fit, n: int) -> None:
        self.params_ = fit.params
        self.standard_errors_ = fit.standard_errors
        self.loglik_ = fit.loglik
        self.converged_ = fit.converged
        self.iterations_ = fit.iterations
        self.n_customers_ = n
        self.message_ = fit.message

    def _require_fit(self) -> None:
        if not hasattr(self, "params_"):
            raise InvalidInput(f"fit the {self.name} model first", "model")

    def summary(self) -> dict[str, Any]:
        self._require_fit()
        return {
            "model": self.name,
            "params": dict(self.params_),
            "standard_errors": dict(self.standard_errors_),
            "loglik": self.loglik_,
            "converged": self.converged_,
            "iterations": self.iterations_,
            "customers": self.n_customers_,
            "warnings": list(self.warnings_),
        }


class _BGNBDLikelihood:
    """-LL of BG/NBD and its analytic gradient, fast for millions of customers.

    LL_i = lnΓ(r+x) − lnΓ(r) + r ln α + lnB(a, b+x) − lnB(a, b)
           + ln[(α+T)^−(r+x) + 1{x>0} · a/(b+x−1) · (α+t_x)^−(r+x)]        (FHL 2005, eq. 6)
    The terms in x alone are computed once per distinct x (there are few) and gathered; only
    two logarithms and a log-sum-exp per customer depend on (t_x, T)."""

    def __init__(self, x: Array, tx: Array, T: Array, weights: Array) -> None:
        self.values, self.index = np.unique(x, return_inverse=True)
        self.x, self.weights, self.repeat = x, weights, x > 0
        self.tx, self.T = tx, T
        self.n = float(weights.sum())
        self._key: tuple[float, ...] | None = None
        self._cache: dict[str, Any] = {}

    def _terms(self, params: Array) -> dict[str, Any]:
        key = tuple(float(v) for v in params)
        if key == self._key:
            return self._cache
        r, alpha, a, b = params
        v, i = self.values, self.index
        log_t = np.log(alpha + self.T)
        log_tx = np.log(alpha + self.tx)
        rx = r + self.x
        stays = -rx * log_t
        leaves = np.where(
            self.repeat, np.log(a) - np.log(np.maximum(b + self.x - 1, 1e-300)) - rx * log_tx, -np.inf
        )
        total = np.logaddexp(stays, leaves)
        w_leave = np.exp(leaves - total)  # share of the "dropped out after the last purchase" term
        per_x = special.gammaln(r + v) + special.gammaln(b + v) - special.gammaln(a + b + v)
        const = -special.gammaln(r) + r * np.log(alpha) + special.gammaln(a + b) - special.gammaln(b)
        ll = float(np.sum(self.weights * (per_x[i] + total))) + self.n * const
        self._key, self._cache = (
            key,
            {"ll": ll, "log_t": log_t, "log_tx": log_tx, "rx": rx, "w_leave": w_leave, "params": params},
        )
        return self._cache

    def negative(self, params: Array) -> float:
        return -self._terms(np.asarray(params, dtype=float))["ll"]

    def negative_gradient(self, params: Array) -> Array:
        c = self._terms(np.asarray(params, dtype=float))
        r, alpha, a, b = c["params"]
        v, i, w = self.values, self.index, self.weights
        wl = c["w_leave"]
        ws = 1.0 - wl
        digamma = special.digamma
        d_r = float(np.sum(w * (digamma(r + v)[i] - ws * c["log_t"] - wl * c["log_tx"]))) + self.n * (
            np.log(alpha) - digamma(r)
        )
        d_alpha = (
            float(np.sum(w * c["rx"] * -(ws / (alpha + self.T) + wl / (alpha + self.tx))))
            + self.n * r / alpha
        )
        d_a = float(np.sum(w * (wl / a - digamma(a + b + v)[i]))) + self.n * digamma(a + b)
        inv_gap = np.where(self.repeat, 1.0 / np.maximum(b + self.x - 1, 1e-300), 0.0)
        d_b = float(np.sum(w * (digamma(b + v)[i] - digamma(a + b + v)[i] - wl * inv_gap))) + self.n * (
            digamma(a + b) - digamma(b)
        )
        return -np.array([d_r, d_alpha, d_a, d_b])


class BetaGeoNBD(_Model):
    """BG/NBD: purchases at rate λ ~ Gamma(r, α) while alive; after each purchase the customer
    drops out with probability p ~ Beta(a, b)."""

    name = "bgnbd"

    @staticmethod
    def log_likelihood_terms(params: ArrayLike, x: Array, tx: Array, T: Array) -> Array:
        """Per-customer log-likelihood (FHL 2005, eq. 6), in log space."""
        r, alpha, a, b = np.asarray(params, dtype=float)
        base = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        stays = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
        repeat = x > 0
        leaves = np.full_like(x, -np.inf)
        leaves[repeat] = (
            special.betaln(a + 1, b + x[repeat] - 1)
            - special.betaln(a, b)
            - (r + x[repeat]) * np.log(alpha + tx[repeat])
        )
        return base + np.logaddexp(stays, leaves)

    def fit(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> BetaGeoNBD:
        x, tx, t_obs = _as_arrays(frequency, recency, T)
        self.warnings_ = _check_rft(x, tx, t_obs)
        (ux, utx, ut), weights = _compress(x, tx, t_obs)
        likelihood = _BGNBDLikelihood(ux, utx, ut, weights)
        scale = float(np.mean(t_obs)) if t_obs.size else 1.0
        self._store(
            _maximise(
                ("r", "alpha", "a", "b"),
                likelihood.negative,
                np.array([1.0, scale, 1.0, 1.0]),
                gradient=likelihood.negative_gradient,
            ),
            x.size,
        )
        return self

    def _ab(self) -> tuple[float, float, float, float]:
        self._require_fit()
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """P(alive | x, t_x, T) = 1 / (1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x))  (FHL 2005, eq. 11)."""
        r, alpha, a, b = self._ab()
        x, tx, t_obs = _as_arrays(frequency, recency, T)
        log_odds = np.full_like(x, -np.inf)
        repeat = x > 0
        log_odds[repeat] = (
            np.log(a)
            - np.log(b + x[repeat] - 1)
            + (r + x[repeat]) * (np.log(alpha + t_obs[repeat]) - np.log(alpha + tx[repeat]))
        )
        return np.exp(-np.logaddexp(0.0, log_odds))

    def expected_purchases(self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """E[Y(t) | x, t_x, T]: expected purchases in the next t time units (FHL 2005, eq. 10)."""
        x, tx, t_obs = _as_arrays(frequency, recency, T)
        return self.expected_purchases_if_alive(t, x, t_obs) * self.probability_alive(x, tx, t_obs)

    def expected_purchases_if_alive(self, t: float, frequency: ArrayLike, T: ArrayLike) -> Array:
        """E[Y(t) | alive, x, T]; it does not depend on t_x, so customers sharing (x, T) share
        it: the costly hypergeometric function is evaluated once per distinct pair."""
        r, alpha, a, b = self._ab()
        x, t_obs = np.broadcast_arrays(*_as_arrays(frequency, T))
        shape = x.shape
        (ux, ut), inverse = _distinct(x.ravel(), t_obs.ravel())
        hyper = special.hyp2f1(r + ux, b + ux, a + b + ux - 1, t / (alpha + ut + t))
        first = (a + b + ux - 1) / (a - 1)
        second = 1 - np.exp((r + ux) * (np.log(alpha + ut) - np.log(alpha + ut + t))) * hyper
        return (first * second)[inverse].reshape(shape)

    def expected_purchases_new_customer(self, t: ArrayLike) -> Array:
        """E[X(t)] for a customer just acquired (FHL 2005, eq. 7)."""
        r, alpha, a, b = self._ab()
        t = np.asarray(t, dtype=float)
        hyper = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyper)


class ModifiedBetaGeoNBD(_Model):
    """Modified BG/NBD (Batislam, Denizel & Filiztekin 2007): as BG/NBD, but a customer may also
    drop out right after the first purchase, so after every purchase, the first included, they
    leave with probability p ~ Beta(a, b). One-time buyers then have a P(alive) below 1."""

    name = "mbgnbd"

    @staticmethod
    def log_likelihood_terms(params: ArrayLike, x: Array, tx: Array, T: Array) -> Array:
        """LL_i = lnΓ(r+x) − lnΓ(r) + r ln α + lnB(a, b+x+1) − lnB(a, b)
        + ln[(α+T)^−(r+x) + a/(b+x) (α+t_x)^−(r+x)]  (Batislam et al. 2007)."""
        r, alpha, a, b = np.asarray(params, dtype=float)
        base = (
            special.gammaln(r + x)
            - special.gammaln(r)
            + r * np.log(alpha)
            + special.betaln(a, b + x + 1)
            - special.betaln(a, b)
        )
        stays = -(r + x) * np.log(alpha + T)
        leaves = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + tx)
        return base + np.logaddexp(stays, leaves)

    def fit(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> ModifiedBetaGeoNBD:
        x, tx, t_obs = _as_arrays(frequency, recency, T)
        self.warnings_ = _check_rft(x, tx, t_obs)
        (ux, utx, ut), weights = _compress(x, tx, t_obs)

        def negative_ll(params: Array) -> float:
            with np.errstate(all="ignore"):
                return -float(np.sum(weights * self.log_likelihood_terms(params, ux, utx, ut)))

        scale = float(np.mean(t_obs)) if t_obs.size else 1.0
        self._store(
            _maximise(("r", "alpha", "a", "b"), negative_ll, np.array([1.0, scale, 1.0, 1.0])), x.size
        )
        return self

    def _ab(self) -> tuple[float, float, float, float]:
        self._require_fit()
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """P(alive | x, t_x, T) = 1 / (1 + a/(b+x) ((α+T)/(α+t_x))^(r+x))  (Batislam et al. 2007)."""
        r, alpha, a, b = self._ab()
        x, tx, t_obs = _as_arrays(frequency, recency, T)
        log_odds = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + t_obs) - np.log(alpha + tx))
        return np.exp(-np.logaddexp(0.0, log_odds))

    def expected_purchases(self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """E[Y(t) | x, t_x, T] = (a+b+x)/(a−1) [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x+1; a+b+x;
        t/(α+T+t))] · P(alive)  (Batislam et al. 2007)."""
        r, alpha, a, b = self._ab()
        x, tx, t_obs = _as_arrays(frequency, recency, T)
        z = t / (alpha + t_obs + t)
        log_ratio = np.log(alpha + t_obs) - np.log(alpha + t_obs + t)  # ln(1 − z)
        with np.errstate(all="ignore"):
            direct = 1 - np.exp((r + x) * log_ratio) * special.hyp2f1(r + x, b + x + 1, a + b + x, z)
            # Euler's transformation of the same ₂F₁ (its (1−z)^(c−a−b) folds into the power):
            # finite where the direct form overflows (large r + x), and the other way round
            euler = 1 - np.exp((a - 1) * log_ratio) * special.hyp2f1(a + b - r, a - 1, a + b + x, z)
        if a + b > _CONCENTRATED:
            # a fit at the edge of the space (a, b → ∞, seen on small shops): Beta(a, b) is then a
            # point at p = a/(a+b), and in ₂F₁'s Euler integral the Beta(b+x+1, a−1) weight sits
            # at its mean, so ₂F₁ → (1 − z (b+x+1)/(a+b+x))^−(r+x) (relative error ~1/(a+b)),
            # where scipy's series gives inf or NaN
            mean = (b + x + 1) / (a + b + x)
            direct = 1 - np.exp((r + x) * (log_ratio - np.log1p(-z * mean)))
        with np.errstate(all="ignore"):
            # r, α → ∞ (a fit whose purchase rates are all alike, r/α each): ₂F₁(r+x, ·; ·; z)
            # with (r+x) z fixed becomes Kummer's ₁F₁ (the confluent limit, error ~1/r)
            confluent = 1 - np.exp((r + x) * log_ratio) * special.hyp1f1(b + x + 1, a + b + x, (r + x) * z)
        exact = np.where(np.isfinite(direct), direct, euler)
        if_alive = (a + b + x) / (a - 1) * np.where(np.isfinite(exact), exact, confluent)
        return if_alive * self.probability_alive(x, tx, t_obs)


_CONCENTRATED = 1e7  # a + b past which Beta(a, b) is treated as a point (BG/NBD expected purchases)


def p_alive_defined(
    model: BetaGeoNBD | ModifiedBetaGeoNBD | ParetoNBD, frequency: ArrayLike
) -> NDArray[np.bool_]:
    """Where the model's P(alive) carries information. BG/NBD lets a customer drop out only after
    a repeat purchase, so for x = 0 it answers 1 by assumption: defined only for x ≥ 1. The
    modified BG/NBD and Pareto/NBD describe every customer with a first purchase."""
    x = np.asarray(frequency, dtype=float)
    if isinstance(model, BetaGeoNBD):
        return x >= 1
    return np.ones(x.shape, dtype=bool)


class ParetoNBD(_Model):
    """Pareto/NBD: purchases at rate λ ~ Gamma(r, α) while alive; lifetimes exponential with
    rate μ ~ Gamma(s, β) (Schmittlein, Morrison & Colombo 1987)."""

    name = "pareto"

    @staticmethod
    def log_likelihood_terms(params: ArrayLike, x: Array, tx: Array, T: Array) -> Array:
        """Per-customer log-likelihood, Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD
        Model and Related Expressions", eq. 22, with the Gaussian hypergeometric terms in log space."""
        r, alpha, s, beta = np.asarray(params, dtype=float)
        n = r + s + x
        if alpha >= beta:
            big, b2 = alpha, s + 1
        else:
            big, b2 = beta, r + x
        z_tx = np.abs(alpha - beta) / (big + tx)
        z_t = np.abs(alpha - beta) / (big + T)
        log_a_tx = np.log(special.hyp2f1(n, b2, n + 1, z_tx)) - n * np.log(big + tx)
        log_a_t = np.log(special.hyp2f1(n, b2, n + 1, z_t)) - n * np.log(big + T)
        # A0 = exp(log_a_tx) - exp(log_a_t) > 0 because t_x <= T
        log_a0 = log_a_tx + np.log1p(-np.exp(np.minimum(log_a_t - log_a_tx, 0.0)))
        base = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        died = np.log(s) - np.log(n) + log_a0
        return base + np.logaddexp(alive, died)

    def fit(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> ParetoNBD:
        x, tx, t_obs = _as_arrays(frequency, recency, T)
        self.warnings_ = _check_rft(x, tx, t_obs)
        (ux, utx, ut), weights = _compress(x, tx, t_obs)

        def negative_ll(params: Array) -> float:
            with np.errstate(all="ignore"):
                return -float(np.sum(weights * self.log_likelihood_terms(params, ux, utx, ut)))

        scale = float(np.mean(t_obs))
        self._store(
            _maximise(("r", "alpha", "s", "beta"), negative_ll, np.array([0.5, scale, 0.5, scale])), x.size
        )
        return self

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """P(alive | x, t_x, T) = exp(-(r+x) ln(α+T) - s ln(β+T) - LL_i + base)  (FH 2005 note, eq. 18)."""
        self._require_fit()
        p = self.params_
        r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
        x, tx, t_obs = _as_arrays(frequency, recency, T)
        base = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x) * np.log(alpha + t_obs) - s * np.log(beta + t_obs)
        return np.exp(base + alive - self.log_likelihood_terms((r, alpha, s, beta), x, tx, t_obs))

    def expected_purchases(self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """E[Y(t) | x, t_x, T] = P(alive) (r+x)(β+T) / ((α+T)(s-1)) [1 - ((β+T)/(β+T+t))^(s-1)]  (eq. 20)."""
        self._require_fit()
        p = self.params_
        r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
        x, tx, t_obs = _as_arrays(frequency, recency, T)
        ratio = (r + x) * (beta + t_obs) / ((alpha + t_obs) * (s - 1))
        return (
            self.probability_alive(x, tx, t_obs)
            * ratio
            * (1 - ((beta + t_obs) / (beta + t_obs + t)) ** (s - 1))
        )


class GammaGamma(_Model):
    """Gamma-Gamma spend model: a customer's transaction values are Gamma(p, ν) around their own
    mean, and ν ~ Gamma(q, γ) across customers. Fitted on repeat buyers only (x > 0), whose
    average spend `monetary` is over their x repeat purchases."""

    name = "gamma_gamma"

    @staticmethod
    def log_likelihood_terms(params: ArrayLike, x: Array, m: Array) -> Array:
        """Fader & Hardie (2013), eq. 3, for the average m of x transactions."""
        p, q, v = np.asarray(params, dtype=float)
        return (
            special.gammaln(p * x + q)
            - special.gammaln(p * x)
            - special.gammaln(q)
            + q * np.log(v)
            + (p * x - 1) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(x * m + v)
        )

    def fit(self, frequency: ArrayLike, monetary: ArrayLike) -> GammaGamma:
        x, m = _as_arrays(frequency, monetary)
        self.warnings_ = []
        if np.any(m[x > 0] <= 0):
            self.warnings_.append("customers with zero or negative average spend were left out")
        keep = (x > 0) & (m > 0)
        if keep.sum() < 3:
            raise InvalidInput(
                "Gamma-Gamma needs repeat buyers with positive spend (fewer than 3 found)", "monetary"
            )
        (ux, um), weights = _compress(x[keep], m[keep])

        log_m, log_x = np.log(um), np.log(ux)

        def negative_ll(params: Array) -> float:
            return -float(np.sum(weights * self.log_likelihood_terms(params, ux, um)))

        def negative_gradient(params: Array) -> Array:
            # derivatives of eq. 3 in p, q and γ
            p, q, v = params
            px = p * ux
            log_total = np.log(ux * um + v)
            both = special.digamma(px + q)
            d_p = np.sum(weights * ux * (both - special.digamma(px) + log_m + log_x - log_total))
            d_q = np.sum(weights * (both - special.digamma(q) + np.log(v) - log_total))
            d_v = np.sum(weights * (q / v - (px + q) / (ux * um + v)))
            return -np.array([d_p, d_q, d_v])

        self._store(
            _maximise(
                ("p", "q", "v"),
                negative_ll,
                np.array([1.0, 1.0, float(np.mean(m[keep]))]),
                gradient=negative_gradient,
            ),
            int(keep.sum()),
        )
        return self

    def expected_average_spend(self, frequency: ArrayLike, monetary: ArrayLike) -> Array:
        """E[M | x, m̄] = (q - 1)/(p x + q - 1) · γ p/(q - 1) + p x/(p x + q - 1) · m̄; the population
        mean for customers without repeat purchases."""
        self._require_fit()
        p, q, v = self.params_["p"], self.params_["q"], self.params_["v"]
        x, m = _as_arrays(frequency, monetary)
        population = v * p / (q - 1)
        weight = p * x / (p * x + q - 1)
        return np.where(x > 0, (1 - weight) * population + weight * np.where(x > 0, m, 0.0), population)


def _check_rft(x: Array, tx: Array, t_obs: Array) -> list[str]:
    """Refuse data the model cannot describe; warn about data it describes poorly."""
    if x.size == 0:
        raise InvalidInput("no customers to fit", "frequency")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(tx)) and np.all(np.isfinite(t_obs))):
        raise InvalidInput("frequency, recency and T must be finite numbers", "frequency")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise InvalidInput("frequency counts repeat purchases: whole numbers from 0", "frequency")
    if np.any(tx < 0) or np.any(tx > t_obs + 1e-9):
        raise InvalidInput(
            "recency must lie between 0 and T (the last purchase cannot be after the end)", "recency"
        )
    if np.any((x == 0) & (tx > 0)):
        raise InvalidInput("a customer without repeat purchases has recency 0", "recency")
    warnings = []
    if not np.any(x > 0):
        raise InvalidInput("no repeat buyers: the dropout process cannot be estimated", "frequency")
    if np.mean(x > 0) < 0.05:
        warnings.append(f"only {np.mean(x > 0):.1%} of customers bought again: estimates will be uncertain")
    return warnings


def discounted_clv(
    model: BetaGeoNBD | ModifiedBetaGeoNBD | ParetoNBD,
    spend: Array,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    horizon: float,
    steps: int,
    discount_rate: float,
    margin: float,
) -> Array:
    """Σ_k (E[Y(t_k)] - E[Y(t_{k-1})]) · spend · margin / (1 + d)^k over `steps` equal steps
    to `horizon` (in the model's time unit); `discount_rate` is per step."""
    if steps < 1 or horizon <= 0:
        raise InvalidInput("the horizon needs at least one step of positive length", "horizon")
    grid = np.linspace(0.0, horizon, steps + 1)
    previous = np.zeros(np.asarray(frequency).shape, dtype=float)
    total = np.zeros_like(previous)
    if isinstance(model, BetaGeoNBD):
        # P(alive) once; the alive-conditional expectation per step (shared by equal (x, T))
        alive = model.probability_alive(frequency, recency, T)
        for k, t in enumerate(grid[1:], start=1):
            cumulative = model.expected_purchases_if_alive(t, frequency, T)
            total += (cumulative - previous) / (1 + discount_rate) ** k
            previous = cumulative
        return total * alive * spend * margin
    for k, t in enumerate(grid[1:], start=1):
        cumulative = model.expected_purchases(t, frequency, recency, T)
        total += (cumulative - previous) * spend * margin / (1 + discount_rate) ** k
        previous = cumulative
    return total
