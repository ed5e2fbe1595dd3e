"""Cross-sell and upsell recommendations from what customers bought together.

Association rules are counted over buyers, not single baskets: X → Y has
  support    = buyers of both / all buyers,
  confidence = buyers of both / buyers of X   ("bought with X by 23% of its buyers"),
  lift       = confidence / (buyers of Y / all buyers)   (> 1: more likely than by chance)
(Agrawal, Imieliński & Swami 1993). A customer's score for Y combines the rules from everything
they own as a noisy-or, 1 − Π(1 − confidence(X → Y)), over rules with lift > 1 and enough
buyers, with Y's share of buyers as the rule from nothing (so popularity fills in where no rule
applies). Upsell: a pricier product in a category the customer already buys scores at least its
share of that category's buyers, times `upsell_weight`. All of it is sparse matrix algebra over
the customer × product matrix, so scoring many customers at once is a matrix product.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse


class AssociationRecommender:
    """fit(owned pairs) → rules_, scores(owned matrix) → customer × product scores.

    `min_together`: a rule needs at least this many buyers of both products (None: 0.1% of
    buyers, at least 2). Products are indexed by `skus_`; `buyers_[j]` is how many bought j."""

    def __init__(
        self, min_together: int | None = None, min_lift: float = 1.0, upsell_weight: float = 0.5
    ) -> None:
        self.min_together = min_together
        self.min_lift = min_lift
        self.upsell_weight = upsell_weight

    def fit(
        self, owned: pd.DataFrame, catalog: pd.DataFrame | None = None, *, skus: list[str] | None = None
    ) -> AssociationRecommender:
        """`owned`: one row per (customer_id, sku) bought. `catalog` (sku, category, price) enables
        upsell; `skus` fixes the product index (else the products in `owned`)."""
        pairs = owned[["customer_id", "sku"]].drop_duplicates()
        self.skus_ = list(skus) if skus is not None else sorted(pairs["sku"].unique().tolist())
        self.index_ = {s: i for i, s in enumerate(self.skus_)}
        matrix = self.matrix(pairs)
        self.customers_ = int((np.asarray(matrix.sum(axis=1)).ravel() > 0).sum())
        together = (matrix.T @ matrix).tocsr()
        self.buyers_ = together.diagonal().astype(np.int64)
        together.setdiag(0)
        together.eliminate_zeros()
        self.together_ = together
        n = max(self.customers_, 1)
        threshold = self.min_together if self.min_together is not None else max(2, int(np.ceil(0.001 * n)))
        coo = together.tocoo()
        confidence = coo.data / self.buyers_[coo.row]
        lift = confidence / (self.buyers_[coo.col] / n)
        keep = (coo.data >= threshold) & (lift > self.min_lift)
        self.rules_ = pd.DataFrame(
            {
                "antecedent": np.array(self.skus_, dtype=object)[coo.row[keep]],
                "consequent": np.array(self.skus_, dtype=object)[coo.col[keep]],
                "together": coo.data[keep].astype(np.int64),
                "support": coo.data[keep] / n,
                "confidence": confidence[keep],
                "lift": lift[keep],
            }
        ).sort_values(["antecedent", "confidence"], ascending=[True, False], ignore_index=True)
        self._prepare(catalog)
        return self

    @classmethod
    def from_rules(
        cls, rules: pd.DataFrame, buyers: pd.Series, customers: int, catalog: pd.DataFrame | None = None
    ) -> AssociationRecommender:
        """Rebuild a fitted recommender from stored rules and popularity (no orders needed)."""
        model = cls()
        model.skus_ = sorted(set(buyers.index) | set(rules["antecedent"]) | set(rules["consequent"]))
        model.index_ = {s: i for i, s in enumerate(model.skus_)}
        model.buyers_ = np.array([int(buyers.get(s, 0)) for s in model.skus_], dtype=np.int64)
        model.customers_ = customers
        model.rules_ = rules.reset_index(drop=True)
        model._prepare(catalog)
        return model

    def _prepare(self, catalog: pd.DataFrame | None) -> None:
        p = len(self.skus_)
        rows = np.array([self.index_[s] for s in self.rules_["antecedent"]], dtype=np.int64)
        cols = np.array([self.index_[s] for s in self.rules_["consequent"]], dtype=np.int64)
        conf = self.rules_["confidence"].to_numpy(dtype=float)
        self.confidence_ = sparse.csr_matrix((conf, (rows, cols)), shape=(p, p))
        # log(1 - c) summed over owned antecedents gives the noisy-or in one product
        self._log_miss = sparse.csr_matrix(
            (np.log1p(-np.minimum(conf, 1 - 1e-9)), (rows, cols)), shape=(p, p)
        )
        self.step_up_ = sparse.csr_matrix((p, p))
        self.share_ = np.zeros(p)
        self.available_ = np.ones(p, dtype=bool)
        if catalog is None or catalog.empty:
            return
        info = catalog.set_index("sku").reindex(self.skus_)
        category = info["category"].fillna("").to_numpy(dtype=object)
        price = info["price"].to_numpy(dtype=float)
        same = (category[:, None] == category[None, :]) & (category[:, None] != "")
        pricier = price[None, :] > price[:, None]
        self.step_up_ = sparse.csr_matrix(same & pricier)
        cat_buyers = pd.Series(self.buyers_, index=range(p)).groupby(category).transform("sum").to_numpy()
        self.share_ = np.where(cat_buyers > 0, self.buyers_ / np.maximum(cat_buyers, 1), 0.0)
        if "available" in info:
            self.available_ = info["available"].fillna(False).to_numpy(dtype=bool)

    def matrix(self, pairs: pd.DataFrame, customer_ids: list[int] | None = None) -> sparse.csr_matrix:
        """The 0/1 customer × product matrix of `pairs` (rows in the order of `customer_ids`)."""
        pairs = pairs[pairs["sku"].isin(self.index_)]
        if customer_ids is None:
            codes, _ = pd.factorize(pairs["customer_id"], sort=True)
            n = int(codes.max()) + 1 if len(codes) else 0
        else:
            position = pd.Series(np.arange(len(customer_ids)), index=customer_ids)
            codes = position.reindex(pairs["customer_id"]).to_numpy()
            n = len(customer_ids)
        cols = pairs["sku"].map(self.index_).to_numpy()
        data = np.ones(len(pairs), dtype=np.float64)
        matrix = sparse.csr_matrix((data, (codes, cols)), shape=(n, len(self.skus_)))
        matrix.data[:] = 1.0  # duplicates add up; ownership is 0/1
        return matrix

    def scores(self, owned: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """(cross-sell scores, upsell scores), each customers × products; owned and unavailable
        products score -inf so they are never recommended."""
        cross = 1.0 - np.exp((owned @ self._log_miss).toarray())
        up = ((owned @ self.step_up_).toarray() > 0) * (self.share_ * self.upsell_weight)
        blocked = (owned.toarray() > 0) | ~self.available_[None, :]
        cross[blocked] = -np.inf
        up[blocked] = -np.inf
        return cross, up

    def combined(self, owned: sparse.csr_matrix) -> np.ndarray:
        """The ranking score: the rules' noisy-or with the empty rule ∅ → Y (Y's share of
        buyers) as one more piece of evidence, so popular products still rank where no rule
        speaks, or the upsell score if higher."""
        cross, up = self.scores(owned)
        base = self.buyers_ / max(self.customers_, 1)
        score = np.maximum(1.0 - (1.0 - np.maximum(cross, 0.0)) * (1.0 - base), up)
        score[np.isneginf(cross)] = -np.inf
        return score

    def top(self, owned: sparse.csr_matrix, n: int) -> np.ndarray:
        """Indices of the n best products per customer (best first)."""
        return _top(self.combined(owned), n)

    def popular(self, owned: sparse.csr_matrix, n: int) -> np.ndarray:
        """The baseline: the n most-bought products each customer does not own."""
        score = np.tile(self.buyers_.astype(float), (owned.shape[0], 1))
        score[(owned.toarray() > 0) | ~self.available_[None, :]] = -np.inf
        return _top(score, n)


def _top(score: np.ndarray, n: int) -> np.ndarray:
    n = min(n, score.shape[1])
    if n == 0:
        return np.empty((score.shape[0], 0), dtype=np.int64)
    part = np.argpartition(-score, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(score, part, axis=1), axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    # a product scoring -inf (owned, unavailable) or 0 (no evidence) is no recommendation
    valid = np.take_along_axis(score, best, axis=1) > 0
    return np.where(valid, best, -1)


def hit_rate(top: np.ndarray, held_out: list[set[int]]) -> float:
    """Share of customers with at least one held-out product among their recommendations."""
    if not held_out:
        return float("nan")
    hits = sum(1 for row, truth in zip(top, held_out, strict=True) if truth & set(row[row >= 0].tolist()))
    return hits / len(held_out)
