"""Request bodies that take either one item or a batch `{"<name>": [...]}`.

A callable discriminator picks the shape from the payload itself, so a bad request is
validated (and reported) only against the shape the sender meant.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Discriminator

from clm.core.timeutil import from_store_time

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


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _text_not_number(kind: str, example: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        # Pydantic would read 0, 0.5 or "1700000000" as seconds since 1970: a number sent where
        # a date belongs is far more often a mistake than a Unix time, so it is refused.
        number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        if number or (isinstance(value, str) and _NUMBER.fullmatch(value)):
            raise ValueError(f"expected a {kind} in ISO 8601 form such as {example}, not a number")
        return value

    return check


# The date and date-time of every API body field and query parameter: ISO 8601 text (or a
# date/datetime object from Python callers), never a bare number. A date-time without a zone is
# in the store's time zone (`CLM_DEFAULT_TIMEZONE`), as in files; it comes out aware, in UTC.
IsoDate = Annotated[date, BeforeValidator(_text_not_number("date", "2026-11-01"))]
IsoDateTime = Annotated[
    datetime,
    BeforeValidator(_text_not_number("date and time", "2026-11-01T10:05:00+08:00")),
    AfterValidator(from_store_time),
]
