"""Bulk import of customer profiles: upsert by any identity, row by row rejection report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from clm.core.errors import InvalidInput
from clm.core.files import DataFile
from clm.core.imports import ChunkOutcome, ImportReport, run_transactional_import
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customers

_TRUE = {"1", "true", "yes", "y", "t", "granted", "opt-in", "optin"}
_FALSE = {"0", "false", "no", "n", "f", "withdrawn", "denied", "opt-out", "optout"}
_FIELDS = set(CustomerIn.model_fields)


def parse_flag(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"{value!r} is not yes/no", field)


def customer_from_row(row: dict[str, Any]) -> CustomerIn:
    """A flat file row → CustomerIn: `consent_<channel>` columns become consents and columns
    that are not profile fields become custom attributes (`attr.` prefix optional)."""
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    consents: dict[str, bool] = {}
    for key, value in row.items():
        if key.startswith("consent_") and key != "consent_source":
            consents[key.removeprefix("consent_")] = parse_flag(value, key)
        elif key == "attributes" and isinstance(value, str):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise InvalidInput("is not valid JSON", "attributes")
            if not isinstance(parsed, dict):
                raise InvalidInput("must be a JSON object", "attributes")
            attributes.update(parsed)
        elif key in _FIELDS and key not in ("consents",):
            fields[key] = value
        else:
            attributes[key.removeprefix("attr.")] = value
    if isinstance(fields.get("attributes"), dict):
        attributes = {**fields.pop("attributes"), **attributes}
    if isinstance(fields.get("consents"), dict):
        consents = {**fields.pop("consents"), **consents}
    return CustomerIn.model_validate({**fields, "attributes": attributes, "consents": consents})


def import_customers(
    engine: Engine,
    data: DataFile,
    *,
    actor: str = "import",
    chunk_size: int = 5_000,
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    def store(conn: Connection, batch: list[CustomerIn]) -> ChunkOutcome:
        resolution = upsert_customers(conn, batch, actor=actor)
        return ChunkOutcome(
            accepted=len(batch),
            counters={"customers_created": len(resolution.created), "merges": len(resolution.merges)},
            customer_ids=set(resolution.customer_ids),
        )

    return run_transactional_import(
        "customers",
        engine,
        data,
        customer_from_row,
        store,
        chunk_size=chunk_size,
        rejections_path=rejections_path,
        progress=progress,
    )
