"""Query results as DataFrames without a Python object per value of a million rows."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Executable

SLICE = 50_000


def read_frame(
    conn: Connection,
    query: Executable,
    params: dict[str, Any] | None = None,
    *,
    numeric: Collection[str] = (),
) -> pd.DataFrame:
    """The rows of `query`, streamed a slice at a time; the `numeric` columns become floats slice
    by slice, so only one slice's Row objects are ever alive (a million rows at once cost more
    memory than the analysis after them)."""
    result = conn.execution_options(stream_results=True, yield_per=SLICE).execute(query, params or {})
    columns = list(map(str, result.keys()))
    parts = []
    for rows in result.partitions():
        part = pd.DataFrame(rows, columns=columns)
        for name in numeric:
            part[name] = pd.to_numeric(part[name], errors="coerce").astype(float)
        parts.append(part)
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=float if name in numeric else object) for name in columns})
    return pd.concat(parts, ignore_index=True)
