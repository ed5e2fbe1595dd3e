"""Bulk import of customer profiles: upsert by any identity, row by row rejection report.

Cells are read as people write them (`clm.core.values`): dates such as `1990/5/12` or
`1990年5月12日`, yes/no as 是/否, times without a zone in the store's time zone. A bad cell in an
optional field (a birthday, a city too long, a consent that is neither yes nor no) leaves that
field out with a warning and keeps the row; a bad identity, or none, rejects the row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection, Engine

from clm.core.errors import InvalidInput
from clm.core.files import DataFile
from clm.core.imports import Checked, ChunkOutcome, ImportReport, describe_error, run_transactional_import
from clm.core.person_names import split_full_name
from clm.core.settings import settings
from clm.core.values import parse_local_date, parse_local_datetime, parse_yes_no
from clm.customers.schemas import CONSENT_CHANNELS, CustomerIn
from clm.customers.service import upsert_customers

_FIELDS = set(CustomerIn.model_fields)
# Fields a row is kept without, with a warning, when their cell is bad; any other bad cell
# (an identity, a consent source) rejects the row.
PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "birthday",
    "gender",
    "city",
    "region",
    "country",
    "timezone",
    "occupation",
    "acquisition_channel",
    "acquisition_campaign",
    "first_seen_at",
)
OPTIONAL_FIELDS = frozenset({*PROFILE_FIELDS, "attributes", "consents"})
_GENDERS = {"男": "male", "女": "female", "m": "male", "f": "female", "男性": "male", "女性": "female"}


def parse_flag(value: object, field: str) -> bool:
    """Yes or no as people write it (是/否, Y/N, 1/0, …; see `clm.core.values`)."""
    return parse_yes_no(value, field)


# A whole name in one column (a Chinese export's 姓名, once mapped): split into family and given
# name, unless the row has those columns too.
FULL_NAME_COLUMNS = frozenset({"name", "full_name"})


def customer_from_row(row: dict[str, Any], tz: ZoneInfo | None = None) -> CustomerIn | Checked[CustomerIn]:
    """A flat file row → CustomerIn: `consent_<channel>` columns become consents and columns
    that are not profile fields become custom attributes (`attr.` prefix optional). Times
    without a zone are in `tz` (default: the store's time zone)."""
    tz = tz or ZoneInfo(settings().default_timezone)
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    consents: dict[str, bool] = {}
    warnings: list[str] = []
    full_name = ""
    for key, value in row.items():
        try:
            if key.startswith("consent_") and key != "consent_source":
                channel = key.removeprefix("consent_")
                if channel not in CONSENT_CHANNELS:
                    raise InvalidInput(f"unknown consent channel; use {', '.join(CONSENT_CHANNELS)}", key)
                consents[channel] = parse_flag(value, key)
            elif key == "attributes" and isinstance(value, str):
                try:
                    parsed = orjson.loads(value)
                except orjson.JSONDecodeError:
                    raise InvalidInput("is not valid JSON", "attributes")
                if not isinstance(parsed, dict):
                    raise InvalidInput("must be a JSON object", "attributes")
                attributes.update(parsed)
            elif key == "birthday" and not isinstance(value, dict):
                fields[key] = parse_local_date(value, key)
            elif key == "first_seen_at":
                fields[key] = parse_local_datetime(value, tz, key)
            elif key in FULL_NAME_COLUMNS and isinstance(value, str):
                full_name = value
            elif key == "gender" and isinstance(value, str):
                fields[key] = _GENDERS.get(value.strip().lower(), value)
            elif key in _FIELDS and key not in ("consents",):
                fields[key] = value
            else:
                attributes[key.removeprefix("attr.")] = value
        except InvalidInput as exc:
            if not (key in OPTIONAL_FIELDS or key.startswith("consent_")):
                raise
            warnings.append(describe_error(exc))
    if full_name.strip() and not (fields.get("first_name") or fields.get("last_name")):
        family, given = split_full_name(full_name)
        fields["last_name"], fields["first_name"] = family or None, given or None
    if isinstance(fields.get("attributes"), dict):
        attributes = {**fields.pop("attributes"), **attributes}
    if isinstance(fields.get("consents"), dict):
        consents = {**fields.pop("consents"), **consents}
    values = {**fields, "attributes": attributes, "consents": consents}
    try:
        customer = CustomerIn.model_validate(values)
    except ValidationError as exc:
        customer = _without_bad_optional(values, exc, warnings)
    return Checked(customer, warnings) if warnings else customer


def _without_bad_optional(values: dict[str, Any], exc: ValidationError, warnings: list[str]) -> CustomerIn:
    """The profile without the optional fields Pydantic refused, each named in `warnings`; the
    error as it is when a refused field is not optional."""
    bad = {str(err["loc"][0]) if err["loc"] else "" for err in exc.errors()}
    if not bad <= OPTIONAL_FIELDS:
        raise exc
    warnings.append(describe_error(exc))
    return CustomerIn.model_validate({k: v for k, v in values.items() if k not in bad})


def import_customers(
    engine: Engine,
    data: DataFile,
    *,
    actor: str = "import",
    chunk_size: int = 5_000,
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    tz = ZoneInfo(settings().default_timezone)

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
        lambda row: customer_from_row(row, tz),
        store,
        chunk_size=chunk_size,
        rejections_path=rejections_path,
        progress=progress,
    )
