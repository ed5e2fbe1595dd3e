"""Orders with line items, the product catalogue and marketing spend per channel."""

# the order summary follows every merge: register its rebuild wherever orders are in use
from clm.commerce import order_days as _order_days  # noqa: F401
