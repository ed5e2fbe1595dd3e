"""Tables of the analytics domain: the latest value and churn scores of each customer, and the
trained churn models."""

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, LargeBinary, String, Table

from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

clv_scores = Table(
    "clv_scores",
    metadata,
    Column("customer_id", PKType, ForeignKey("customers.id"), primary_key=True),
    Column("scored_at", UTCDateTime, nullable=False),
    Column("model", String(32), nullable=False),
    Column("horizon_days", Float, nullable=False),
    # NULL where the model says nothing about it (BG/NBD: no repeat purchase yet)
    Column("p_alive", Float),
    Column("expected_purchases", Float, nullable=False),
    Column("expected_spend", Float, nullable=False),
    Column("clv", Float, nullable=False),
    # RFM quintile scores (5 best) and the named RFM segment, from the same order summary
    Column("rfm_r", Integer),
    Column("rfm_f", Integer),
    Column("rfm_m", Integer),
    Column("rfm_segment", String(32)),
)

# A trained churn model with its model card (data window, features, metrics); the newest row
# of a source is the one in use. The model is a joblib pickle written by CLM itself.
churn_models = Table(
    "churn_models",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("trained_at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # store, or table (an imported customer table)
    Column("name", String(200), nullable=False),
    Column("horizon_days", Integer),
    Column("card", JSONType, nullable=False),
    Column("model", LargeBinary, nullable=False),
)

# The latest churn score of each customer of the store, with its reasons.
churn_scores = Table(
    "churn_scores",
    metadata,
    Column("customer_id", PKType, ForeignKey("customers.id"), primary_key=True),
    Column("model_id", PKType, ForeignKey("churn_models.id"), nullable=False),
    Column("scored_at", UTCDateTime, nullable=False),
    Column("probability", Float, nullable=False),
    Column("band", String(16), nullable=False),
    Column("reasons", JSONType, nullable=False),
    Index("ix_churn_scores_probability", "probability"),
)

# Product association rules ("bought X → also bought Y"), counted over buyers, rebuilt by
# `clm recommend build`; per-customer recommendations read them instead of every order.
product_associations = Table(
    "product_associations",
    metadata,
    Column("antecedent", String(64), primary_key=True),
    Column("consequent", String(64), primary_key=True),
    Column("together", Integer, nullable=False),  # buyers of both
    Column("support", Float, nullable=False),  # together / buyers
    Column("confidence", Float, nullable=False),  # together / buyers of the antecedent
    Column("lift", Float, nullable=False),  # confidence / share of buyers of the consequent
    Column("built_at", UTCDateTime, nullable=False),
)

# How many customers bought each product (popularity), from the same build.
product_buyers = Table(
    "product_buyers",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("buyers", Integer, nullable=False),
    Column("customers", Integer, nullable=False),  # all buyers of anything, for shares
    Column("built_at", UTCDateTime, nullable=False),
)
