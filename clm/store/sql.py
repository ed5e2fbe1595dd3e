"""SQL functions whose spelling differs between SQLite and PostgreSQL, behind one name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


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


class year_month(FunctionElement[str]):
    """'YYYY-MM' of a UTC timestamp, for grouping by calendar month."""

    type = String()
    inherit_cache = True
    name = "year_month"


@compiles(year_month, "sqlite")
def _year_month_sqlite(element: year_month, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)})"


@compiles(year_month, "postgresql")
def _year_month_pg(element: year_month, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM')"
