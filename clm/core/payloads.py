"""Request bodies that take either one item or a batch `{"<name>": [...]}`.

A callable discriminator picks the shape from the payload itself, so a bad request is
validated (and reported) only against the shape the sender meant.
"""

from __future__ import annotations

from typing import Any

from pydantic import Discriminator

# Error locations carry the chosen shape as a tag; the API's error formatter drops these.
SHAPE_TAGS = ("single", "batch")


def batch_or_single(key: str) -> Discriminator:
    """Use as `Annotated[Annotated[Batch, Tag("batch")] | Annotated[Item, Tag("single")],
    batch_or_single("items")]`: a JSON object with `key` is a batch, anything else one item."""

    def shape(value: Any) -> str:
        if isinstance(value, dict):
            return "batch" if key in value else "single"
        return "batch" if hasattr(value, key) else "single"

    return Discriminator(shape)


# Largest id a 64-bit database key can hold; larger numbers can only be "not found".
MAX_ID = 2**63 - 1
# Money columns are NUMERIC(14, 2): amounts must stay below a trillion.
MAX_AMOUNT = 999_999_999_999.0
