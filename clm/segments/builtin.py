"""The segments every shop starts with, from the seeds (003 §6.1, 004 §二.2): behavioural
segments, attribute examples and RFM-based ones. They are ordinary dynamic segments: a user
may edit or delete them; `clm segments rebuild` recreates the missing ones."""

from __future__ import annotations

from typing import NamedTuple


class Builtin(NamedTuple):
    name: str
    description: str
    where: str


BUILTINS: tuple[Builtin, ...] = (
    # 行为细分 behavioural
    Builtin(
        "active_users",
        "活跃用户 Active users: buy often or interact often "
        "(2+ orders in 90 days, or 10+ touches in 30 days).",
        "orders(last 90d) >= 2 or events(last 30d) >= 10",
    ),
    Builtin(
        "potential_customers",
        "潜在客户 Potential customers: browse a lot, buy little "
        "(5+ views in 30 days and no purchase in 90 days).",
        "events(page_view, product_view, last 30d) >= 5 and not purchased(last 90d)",
    ),
    Builtin(
        "churn_risk",
        "流失风险 Churn-risk customers: long without a purchase (twice their usual gap, at least "
        "60 days) and fewer touches in the last 30 days than in the 30 before.",
        "orders >= 1 and days_since_last_purchase > max(2 * coalesce(purchase_gap_days, "
        "shop_purchase_gap_days, 60), 60) and events(last 30d) * 2 < events(last 60d)",
    ),
    Builtin(
        "cart_abandoners",
        "Added to cart in the last 7 days without buying since.",
        "events(add_to_cart, last 7d) >= 1 and not purchased(last 7d)",
    ),
    # 属性细分 attribute examples
    Builtin("age_18_24", "Age 18–24.", "age >= 18 and age <= 24"),
    Builtin("age_25_34", "Age 25–34.", "age >= 25 and age <= 34"),
    Builtin("age_35_49", "Age 35–49.", "age >= 35 and age <= 49"),
    Builtin("age_50_plus", "Age 50 and over.", "age >= 50"),
    Builtin(
        "tier1_cities",
        "一线城市 Customers in Beijing, Shanghai, Guangzhou or Shenzhen.",
        'city in ["Beijing", "Shanghai", "Guangzhou", "Shenzhen"]',
    ),
    # RFM-based (needs `clm clv score`)
    Builtin("rfm_champions", "RFM champions: bought recently and often.", 'rfm_segment = "champions"'),
    Builtin("rfm_loyal", "RFM loyal customers.", 'rfm_segment = "loyal"'),
    Builtin(
        "rfm_at_risk",
        "RFM at risk: used to buy often, not recently.",
        'rfm_segment in ["at risk", "can\'t lose them"]',
    ),
    Builtin("rfm_hibernating", "RFM hibernating or lost.", 'rfm_segment in ["hibernating", "lost"]'),
    Builtin(
        "high_churn_risk",
        "Churn model says high risk (needs `clm churn score`).",
        'churn_band = "high"',
    ),
)
