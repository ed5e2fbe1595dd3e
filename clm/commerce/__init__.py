"""Orders with line items, the product catalogue and marketing spend per channel."""
