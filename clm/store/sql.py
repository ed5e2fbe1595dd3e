"""SQL functions and statements whose spelling differs between SQLite and PostgreSQL, behind one name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Integer, Select, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from clm.core.timeutil import store_zone
from clm.core.timeutil import zone as _zone


class strpos(FunctionElement[int]):
    """1-based position of `needle` in `haystack`, 0 when absent."""

    type = Integer()
    inherit_cache = True
    name = "strpos"


@compiles(strpos, "sqlite")
def _strpos_sqlite(element: strpos, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(strpos, "postgresql")
def _strpos_pg(element: strpos, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


class _zoned(FunctionElement[Any]):
    """A function of a UTC timestamp read in a time zone (default: the store's,
    `CLM_DEFAULT_TIMEZONE`). The zone is written into the SQL as a literal and is part of the
    statement's cache key, so the same expression in SELECT and GROUP BY is one expression to
    PostgreSQL, and a changed setting compiles anew."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012
        *FunctionElement._traverse_internals,
        ("zone", InternalTraversal.dp_string),
    ]

    def __init__(self, moment: Any, zone: str | None = None) -> None:
        self.zone = store_zone().key if zone is None else _zone(zone).key
        super().__init__(moment)


def _local_sqlite(element: _zoned, compiler: Any, **kw: Any) -> str:
    """The local wall time as SQLite text ('YYYY-MM-DD HH:MM:SS'), by `clm_local_time`, which
    the engine registers on every SQLite connection (SQLite has no time zone database)."""
    ts = compiler.process(element.clauses, **kw)
    if element.zone == "UTC":
        return ts
    return f"clm_local_time({ts}, '{element.zone}')"


def _local_pg(element: _zoned, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} AT TIME ZONE '{element.zone}')"


def local_time_sqlite(stored: Any, zone_name: str) -> str | None:
    """`clm_local_time(ts, zone)` for SQLite: a stored UTC timestamp as the zone's wall time."""
    if stored is None:
        return None
    moment = datetime.fromisoformat(str(stored)).replace(tzinfo=UTC).astimezone(_zone(zone_name))
    return moment.replace(tzinfo=None).isoformat(sep=" ")


class year_month(_zoned):
    """'YYYY-MM' of a UTC timestamp in the store's time zone, for grouping by calendar month."""

    type = String()
    inherit_cache = True
    name = "year_month"


@compiles(year_month, "sqlite")
def _year_month_sqlite(element: year_month, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m', {_local_sqlite(element, compiler, **kw)})"


@compiles(year_month, "postgresql")
def _year_month_pg(element: year_month, compiler: Any, **kw: Any) -> str:
    return f"to_char({_local_pg(element, compiler, **kw)}, 'YYYY-MM')"


class days_between(FunctionElement[float]):
    """Days (fractional) from `earlier` to `later`: later - earlier, NULL if either is NULL."""

    type = Float()
    inherit_cache = True
    name = "days_between"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"(julianday({later}) - julianday({earlier}))"


@compiles(days_between, "postgresql")
def _days_between_pg(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"(EXTRACT(EPOCH FROM (CAST({later} AS TIMESTAMPTZ) - CAST({earlier} AS TIMESTAMPTZ))) / 86400.0)"


class day_number(_zoned):
    """The store's calendar day of a timestamp (in `CLM_DEFAULT_TIMEZONE`) as a whole number of
    days since 1970-01-01: cheap to group by ("purchases on the same day") and to subtract."""

    type = Integer()
    inherit_cache = True
    name = "day_number"


@compiles(day_number, "sqlite")
def _day_number_sqlite(element: day_number, compiler: Any, **kw: Any) -> str:
    # julianday + 0.5 is the Julian day number counted from midnight; 2440588 is 1970-01-01
    return f"(CAST(julianday({_local_sqlite(element, compiler, **kw)}) + 0.5 AS INTEGER) - 2440588)"


@compiles(day_number, "postgresql")
def _day_number_pg(element: day_number, compiler: Any, **kw: Any) -> str:
    return f"(CAST({_local_pg(element, compiler, **kw)} AS DATE) - DATE '1970-01-01')"


class _extreme(FunctionElement[Any]):
    """Largest/smallest of the arguments, ignoring NULLs (NULL only when all are NULL)."""

    inherit_cache = True
    sqlite_name = ""
    pg_name = ""


class greatest(_extreme):
    inherit_cache = True
    name = "greatest"
    sqlite_name = "max"
    pg_name = "GREATEST"


class least(_extreme):
    inherit_cache = True
    name = "least"
    sqlite_name = "min"
    pg_name = "LEAST"


@compiles(greatest, "sqlite")
@compiles(least, "sqlite")
def _extreme_sqlite(element: _extreme, compiler: Any, **kw: Any) -> str:
    args = [compiler.process(c, **kw) for c in element.clauses]
    if len(args) == 1:
        return args[0]
    # SQLite's scalar max()/min() return NULL if any argument is NULL; PostgreSQL's GREATEST and
    # LEAST skip NULLs. Give every argument the first non-NULL of the others as a fallback.
    fallbacks = [
        f"coalesce({', '.join([a, *(b for j, b in enumerate(args) if j != i)])})" for i, a in enumerate(args)
    ]
    return f"{element.sqlite_name}({', '.join(fallbacks)})"


@compiles(greatest, "postgresql")
@compiles(least, "postgresql")
def _extreme_pg(element: _extreme, compiler: Any, **kw: Any) -> str:
    return f"{element.pg_name}({compiler.process(element.clauses, **kw)})"


class json_object(FunctionElement[Any]):
    """A JSON object from alternating key, value arguments (json_object / jsonb_build_object)."""

    inherit_cache = True
    name = "json_object"


@compiles(json_object, "sqlite")
def _json_object_sqlite(element: json_object, compiler: Any, **kw: Any) -> str:
    return f"json_object({compiler.process(element.clauses, **kw)})"


@compiles(json_object, "postgresql")
def _json_object_pg(element: json_object, compiler: Any, **kw: Any) -> str:
    return f"jsonb_build_object({compiler.process(element.clauses, **kw)})"


class month_number(_zoned):
    """Months since year 0 of a timestamp in the store's time zone (year * 12 + month - 1), for
    month differences."""

    type = Integer()
    inherit_cache = True
    name = "month_number"


@compiles(month_number, "sqlite")
def _month_number_sqlite(element: month_number, compiler: Any, **kw: Any) -> str:
    ts = _local_sqlite(element, compiler, **kw)
    return f"(CAST(strftime('%Y', {ts}) AS INTEGER) * 12 + CAST(strftime('%m', {ts}) AS INTEGER) - 1)"


@compiles(month_number, "postgresql")
def _month_number_pg(element: month_number, compiler: Any, **kw: Any) -> str:
    ts = _local_pg(element, compiler, **kw)
    return f"(CAST(EXTRACT(YEAR FROM {ts}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {ts}) AS INTEGER) - 1)"


def _sqlite_json_path(key_sql: str) -> str:
    # '$."key"' built in SQL from the bound key, so the statement stays cacheable
    return f"""('$."' || replace({key_sql}, '"', '\\"') || '"')"""


class json_text(FunctionElement[str]):
    """A top-level property of a JSON column as text (NULL when absent); the key is a bound value."""

    type = String()
    inherit_cache = True
    name = "json_text"


@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: Any, **kw: Any) -> str:
    column, key = element.clauses
    path = _sqlite_json_path(compiler.process(key, **kw))
    return f"CAST(json_extract({compiler.process(column, **kw)}, {path}) AS TEXT)"


@compiles(json_text, "postgresql")
def _json_text_pg(element: json_text, compiler: Any, **kw: Any) -> str:
    column, key = element.clauses
    return f"(CAST({compiler.process(column, **kw)} AS JSONB) ->> {compiler.process(key, **kw)})"


class json_number(FunctionElement[float]):
    """A top-level numeric property of a JSON column; NULL when absent or not a number."""

    type = Float()
    inherit_cache = True
    name = "json_number"


@compiles(json_number, "sqlite")
def _json_number_sqlite(element: json_number, compiler: Any, **kw: Any) -> str:
    column, key = element.clauses
    col = compiler.process(column, **kw)
    path = _sqlite_json_path(compiler.process(key, **kw))
    return f"(CASE WHEN json_type({col}, {path}) IN ('integer', 'real') THEN json_extract({col}, {path}) END)"


@compiles(json_number, "postgresql")
def _json_number_pg(element: json_number, compiler: Any, **kw: Any) -> str:
    column, key = element.clauses
    value = f"(CAST({compiler.process(column, **kw)} AS JSONB) -> {compiler.process(key, **kw)})"
    return (
        f"(CASE WHEN jsonb_typeof({value}) = 'number' THEN CAST({value} #>> '{{}}' AS DOUBLE PRECISION) END)"
    )


class whole(FunctionElement[int]):
    """The integer part of a number (truncated toward zero on both databases)."""

    type = Integer()
    inherit_cache = True
    name = "whole"


@compiles(whole, "sqlite")
def _whole_sqlite(element: whole, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@compiles(whole, "postgresql")
def _whole_pg(element: whole, compiler: Any, **kw: Any) -> str:
    return f"CAST(trunc({compiler.process(element.clauses, **kw)}) AS BIGINT)"


class month_day(FunctionElement[str]):
    """'MM-DD' of a date or timestamp, for anniversaries (birthdays, signup days)."""

    type = String()
    inherit_cache = True
    name = "month_day"


@compiles(month_day, "sqlite")
def _month_day_sqlite(element: month_day, compiler: Any, **kw: Any) -> str:
    return f"strftime('%m-%d', {compiler.process(element.clauses, **kw)})"


@compiles(month_day, "postgresql")
def _month_day_pg(element: month_day, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'MM-DD')"


class create_temp_table_as(Executable, ClauseElement):
    """`CREATE TEMPORARY TABLE name ON COMMIT DROP AS SELECT …` (PostgreSQL).

    Why: PostgreSQL plans no parallel workers for the SELECT of an `INSERT … SELECT`, but it
    does for `CREATE TABLE … AS`; a big SELECT written to a temporary table first and then
    inserted from it can use every core."""

    inherit_cache = False
    _traverse_internals = [("query", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, name: str, query: Select[Any]) -> None:
        self.name = name
        self.query = query


@compiles(create_temp_table_as, "postgresql")
def _create_temp_table_as_pg(element: create_temp_table_as, compiler: Any, **kw: Any) -> str:
    return f"CREATE TEMPORARY TABLE {element.name} ON COMMIT DROP AS {compiler.process(element.query, **kw)}"


class in_ids(ColumnElement[bool]):
    """`column IN :name` for a list of integer ids given at execution (`{name: [1, 2, …]}`).

    Why: an expanding IN renders one placeholder per id, so on PostgreSQL every call is a new
    statement text, re-split by psycopg (no cache past 4,096 characters), re-planned by the
    server, and never prepared. There it becomes `column = ANY(:name)` with the ids as one
    array: the same text for any list, prepared after a few calls. SQLite keeps the IN."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a condition in WHERE as it is (no "= 1" on SQLite)
    _traverse_internals = [  # noqa: RUF012
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Any, name: str = "scope") -> None:
        self.column = column
        self.ids = bindparam(name, expanding=True, type_=BigInteger())


@compiles(in_ids)
def _in_ids(element: in_ids, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.in_(element.ids), **kw))


@compiles(in_ids, "postgresql")
def _in_ids_pg(element: in_ids, compiler: Any, **kw: Any) -> str:
    as_array = bindparam(element.ids.key, type_=ARRAY(BigInteger()))
    return str(compiler.process(element.column == any_(as_array), **kw))
