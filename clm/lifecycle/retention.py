"""The shifted-beta-geometric (sBG) retention model for subscription-style cohorts.

Fader & Hardie (2007), "How to Project Customer Retention", Journal of Interactive Marketing
21(1): each customer renews every period with their own probability 1 - θ, and θ varies across
customers as Beta(α, β). From the survivors of one cohort, period by period, the model gives
the retention curve beyond the data and the expected remaining lifetime of a survivor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, Field
from scipy import optimize, special

from clm.core.errors import InvalidInput


def _survivors(survivors: ArrayLike) -> NDArray[np.float64]:
    s = np.asarray(survivors, dtype=float)
    if s.ndim != 1 or s.size < 3:
        raise InvalidInput(
            "give at least three counts: the cohort at the start and two later periods", "survivors"
        )
    if not np.all(np.isfinite(s)) or np.any(s < 0) or s[0] <= 0:
        raise InvalidInput("counts must be non-negative numbers, the first one positive", "survivors")
    if np.any(np.diff(s) > 0):
        raise InvalidInput("survivors can only go down from one period to the next", "survivors")
    if s[-1] == s[0]:
        raise InvalidInput("nobody left the cohort: retention cannot be estimated", "survivors")
    return s


def log_likelihood(alpha: float, beta: float, survivors: ArrayLike) -> float:
    """LL = Σ_t (S_{t-1} - S_t) ln P(T = t) + S_n ln S(n)   (Fader & Hardie 2007, eq. 7)."""
    s = np.asarray(survivors, dtype=float)
    t = np.arange(1, s.size)
    lost = s[:-1] - s[1:]
    # P(T = t) = B(α + 1, β + t - 1) / B(α, β);  S(t) = B(α, β + t) / B(α, β)
    log_p = special.betaln(alpha + 1, beta + t - 1) - special.betaln(alpha, beta)
    log_survive = special.betaln(alpha, beta + t[-1]) - special.betaln(alpha, beta)
    return float(np.sum(lost * log_p) + s[-1] * log_survive)


@dataclass(frozen=True)
class Projection:
    period: int
    survival: float
    survivors: float
    retention_rate: float
    observed: float | None


class ShiftedBetaGeometric:
    """sBG with the lifelines-style protocol: `fit(survivors) -> self`, then `params_`,
    `standard_errors_`, `loglik_`, `converged_`, `summary()` and projections."""

    def fit(self, survivors: ArrayLike) -> ShiftedBetaGeometric:
        s = _survivors(survivors)

        def negative(log_params: NDArray[np.float64]) -> float:
            a, b = np.exp(log_params)
            return -log_likelihood(a, b, s)

        # search in log space so α, β stay positive; start from a few points, keep the best
        best: Any = None
        for start in ((0.0, 0.0), (-1.0, 1.0), (1.0, 2.0)):
            result = optimize.minimize(
                negative,
                np.array(start),
                method="Nelder-Mead",
                options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000},
            )
            if best is None or result.fun < best.fun:
                best = result
        alpha, beta = (float(v) for v in np.exp(best.x))
        self.survivors_ = s
        self.params_ = {"alpha": alpha, "beta": beta}
        self.loglik_ = float(-best.fun)
        self.converged_ = bool(best.success)
        self.iterations_ = int(best.nit)
        self.standard_errors_ = self._standard_errors(alpha, beta, s)
        return self

    @staticmethod
    def _standard_errors(alpha: float, beta: float, s: NDArray[np.float64]) -> dict[str, float | None]:
        """From the inverse of the observed information (numerical Hessian of -LL)."""
        x = np.array([alpha, beta])
        h = 1e-4 * np.maximum(x, 1e-3)
        hess = np.empty((2, 2))

        def f(p: NDArray[np.float64]) -> float:
            return -log_likelihood(p[0], p[1], s)

        for i in range(2):
            for j in range(2):
                ei, ej = np.eye(2)[i] * h[i], np.eye(2)[j] * h[j]
                hess[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                    4 * h[i] * h[j]
                )
        try:
            cov = np.linalg.inv(hess)
        except np.linalg.LinAlgError:
            return {"alpha": None, "beta": None}
        var = np.diag(cov)
        return {k: float(np.sqrt(v)) if v > 0 else None for k, v in zip(("alpha", "beta"), var, strict=True)}

    def _ab(self) -> tuple[float, float]:
        if not hasattr(self, "params_"):
            raise InvalidInput("fit the model first", "model")
        return self.params_["alpha"], self.params_["beta"]

    def survival(self, t: ArrayLike) -> NDArray[np.float64]:
        """S(t) = B(α, β + t) / B(α, β): the share of the cohort still there after t periods."""
        a, b = self._ab()
        t = np.asarray(t, dtype=float)
        return np.exp(special.betaln(a, b + t) - special.betaln(a, b))

    def retention_rate(self, t: ArrayLike) -> NDArray[np.float64]:
        """r_t = S(t) / S(t - 1) = (β + t - 1) / (α + β + t - 1): it rises as the weak leave."""
        a, b = self._ab()
        t = np.asarray(t, dtype=float)
        return (b + t - 1) / (a + b + t - 1)

    def project(self, periods: int) -> list[Projection]:
        """Survival and survivors for periods 0 … `periods`, next to what was observed."""
        s = self.survivors_
        t = np.arange(0, periods + 1)
        surv = self.survival(t)
        rates = np.concatenate(([1.0], self.retention_rate(t[1:])))
        return [
            Projection(
                int(k),
                float(surv[k]),
                float(surv[k] * s[0]),
                float(rates[k]),
                float(s[k]) if k < s.size else None,
            )
            for k in t
        ]

    def expected_remaining_lifetime(self, survived: int, discount_rate: float = 0.0) -> float:
        """Expected further periods a customer who has survived `survived` periods stays,
        each period discounted by 1 / (1 + d):  Σ_{k≥1} S(n+k)/S(n) (1+d)^-k
        = 2F1(1, β+n; α+β+n; 1/(1+d)) - 1  (Fader & Hardie 2010, DERL, without the current period).
        Undiscounted it is (β + n) / (α - 1), infinite when α ≤ 1."""
        a, b = self._ab()
        n = float(survived)
        if discount_rate < 0:
            raise InvalidInput("the discount rate cannot be negative", "discount_rate")
        if discount_rate == 0:
            return (b + n) / (a - 1) if a > 1 else float("inf")
        x = 1.0 / (1.0 + discount_rate)
        return float(special.hyp2f1(1.0, b + n, a + b + n, x) - 1.0)

    def summary(self) -> dict[str, Any]:
        return {
            "model": "sBG",
            "params": dict(self.params_),
            "standard_errors": dict(self.standard_errors_),
            "loglik": self.loglik_,
            "converged": self.converged_,
            "iterations": self.iterations_,
            "periods_observed": int(self.survivors_.size - 1),
        }


class ProjectionOut(BaseModel):
    period: int
    survival: float
    survivors: float
    retention_rate: float
    observed: float | None


class RetentionReport(BaseModel):
    model: str = "sBG"
    params: dict[str, float]
    standard_errors: dict[str, float | None]
    loglik: float
    converged: bool
    projection: list[ProjectionOut]
    discount_rate: float
    expected_remaining_periods: float = Field(
        ...,
        description="For a customer still there at the last observed period, discounted at `discount_rate`.",
    )
    expected_remaining_periods_undiscounted: float | None = Field(
        ..., description="(β + n) / (α - 1); null (infinite) when α ≤ 1."
    )


def parse_survivors(text: str) -> list[float]:
    """`1000,869,743` → [1000.0, 869.0, 743.0]; the CLI's and the API's form of a cohort."""
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise InvalidInput("a comma-separated list of numbers, e.g. 1000,869,743", "survivors")


def project_retention(survivors: ArrayLike, periods: int = 12, discount_rate: float = 0.1) -> RetentionReport:
    """Fit sBG to one cohort's survivors and project it `periods` periods from the start."""
    model = ShiftedBetaGeometric().fit(survivors)
    observed = int(model.survivors_.size - 1)
    periods = max(periods, observed)
    undiscounted = model.expected_remaining_lifetime(observed, 0.0)
    return RetentionReport(
        params=model.params_,
        standard_errors=model.standard_errors_,
        loglik=model.loglik_,
        converged=model.converged_,
        projection=[ProjectionOut(**vars(p)) for p in model.project(periods)],
        discount_rate=discount_rate,
        expected_remaining_periods=model.expected_remaining_lifetime(observed, discount_rate),
        expected_remaining_periods_undiscounted=None if np.isinf(undiscounted) else undiscounted,
    )
